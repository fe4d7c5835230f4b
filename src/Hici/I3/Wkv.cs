using TorchSharp;
using static TorchSharp.torch;

namespace Hici.I3;

/// <summary>
/// Carried WKV state (a, b, p) per batch row and channel, each [B, d] float32: it stands for the weighted
/// value sum A = a·e^p and the weight sum B = b·e^p, with p the largest log-weight in those sums (so the
/// triple is canonical and two computations can be compared field by field). Fresh: a = b = 0, p = P_NEG.
/// </summary>
public sealed record WkvState(Tensor A, Tensor B, Tensor P);

/// <summary>
/// RWKV-4 WKV, per batch row and channel, with per-channel log-decay w = −exp(time_decay) and bonus u = time_first:
/// <code>
/// wkv_t = (e^{p+t·w}·a + Σ_{i&lt;t} e^{(t−1−i)w + k_i}·v_i + e^{u+k_t}·v_t) / (e^{p+t·w}·b + Σ_{i&lt;t} e^{(t−1−i)w + k_i} + e^{u+k_t})
/// </code>
/// computed two ways that are exact re-expressions of each other: <see cref="Recurrent"/> (token by token,
/// max-shifted as in RWKV-LM's wkv_cuda.cu; for generation) and <see cref="Chunked"/> (blocks of Q tokens in
/// parallel, a log-space [Q, Q] weight matrix with a row max; for training and prefill). Both run in float32
/// (or float64 in exactness tests) and return the output and the new state; neither mutates its inputs.
/// </summary>
public static class Wkv
{
    /// <summary>Finite "minus infinity" for p: never −∞, so no inf − inf appears.</summary>
    public const double PNeg = -1e30;

    public static WkvState Fresh(long batch, long channels, ScalarType dtype = ScalarType.Float32, Device? device = null) =>
        new(torch.zeros(batch, channels, dtype: dtype, device: device),
            torch.zeros(batch, channels, dtype: dtype, device: device),
            torch.full(batch, channels, PNeg, dtype: dtype, device: device));

    /// <summary>Sequential stable recurrence. k, v: [B, T, d]; w (= −exp(time_decay)), u: [d].</summary>
    public static (Tensor Out, WkvState State) Recurrent(Tensor k, Tensor v, Tensor w, Tensor u, WkvState state)
    {
        using var scope = torch.NewDisposeScope();
        long T = k.shape[1];
        Tensor a = state.A, b = state.B, p = state.P;
        var outs = new Tensor[T];
        for (long t = 0; t < T; t++)
        {
            var kt = k.select(1, t);
            var vt = v.select(1, t);
            var uk = u + kt;
            var q = torch.maximum(p, uk);
            var e1 = (p - q).exp();
            var e2 = (uk - q).exp();
            outs[t] = (e1 * a + e2 * vt) / (e1 * b + e2);
            var pw = p + w;
            var q2 = torch.maximum(pw, kt);
            var f1 = (pw - q2).exp();
            var f2 = (kt - q2).exp();
            a = f1 * a + f2 * vt;
            b = f1 * b + f2;
            p = q2;
        }
        var y = torch.stack(outs, 1);
        return (y.MoveToOuterDisposeScope(), new WkvState(a.MoveToOuterDisposeScope(), b.MoveToOuterDisposeScope(), p.MoveToOuterDisposeScope()));
    }

    /// <summary>
    /// Block-parallel form: blocks of <paramref name="blockSize"/> tokens in order, carrying (a, b, p); inside a block
    /// every output is one softmax-like weighted sum over a [n, n] log-weight matrix (elementwise per channel, reduced
    /// over i). The row maxima and the exit p are detached: outputs do not depend on them, and with p detached the exit a
    /// is the derivative-carrying factor of A = a·e^p, so gradients stay exact. The decays are never factored as
    /// e^{tw}·e^{−(i+1)w}: with |w| up to ~150 that overflows even for small blocks.
    /// </summary>
    public static (Tensor Out, WkvState State) Chunked(Tensor k, Tensor v, Tensor w, Tensor u, WkvState state, int blockSize)
    {
        if (blockSize <= 0) throw new ArgumentOutOfRangeException(nameof(blockSize));
        using var scope = torch.NewDisposeScope();
        long T = k.shape[1];
        Tensor a = state.A, b = state.B, p = state.P;
        var outs = new List<Tensor>();
        var masks = new Dictionary<long, (Tensor Dist, Tensor Past, Tensor Diag)>();
        for (long start = 0; start < T; start += blockSize)
        {
            long n = Math.Min(blockSize, T - start);
            if (!masks.TryGetValue(n, out var mk)) masks[n] = mk = Masks(n, k.dtype, k.device);
            var kb = k.narrow(1, start, n);                                   // [B, n, d]
            var vb = v.narrow(1, start, n);
            // D[t, i] = (t−1−i)·w below the diagonal, u on it, P_NEG above; Λ = D + k_i.
            var decay = mk.Dist.unsqueeze(-1) * w;                           // [n, n, d]
            var lam = torch.where(mk.Past.unsqueeze(-1), decay + kb.unsqueeze(1),
                torch.where(mk.Diag.unsqueeze(-1), (u + kb).unsqueeze(1), torch.tensor(PNeg, k.dtype, k.device)));   // [B, n, n, d]
            var tIdx = torch.arange(n, dtype: k.dtype, device: k.device).unsqueeze(-1);   // [n, 1]
            var lamS = p.unsqueeze(1) + tIdx * w;                            // [B, n, d]
            var m = torch.maximum(lam.amax([2]), lamS).detach();             // [B, n, d]
            var e = (lam - m.unsqueeze(2)).exp();                           // [B, n, n, d]
            var eS = (lamS - m).exp();
            var num = (e * vb.unsqueeze(1)).sum(2) + eS * a.unsqueeze(1);
            var den = e.sum(2) + eS * b.unsqueeze(1);
            outs.Add(num / den);
            // exit state
            var mu = (n - 1 - tIdx) * w + kb;                                // [B, n, d]
            var muS = p + n * w;                                             // [B, d]
            var p2 = torch.maximum(mu.amax([1]), muS).detach();
            var em = (mu - p2.unsqueeze(1)).exp();
            var eSm = (muS - p2).exp();
            a = eSm * a + (em * vb).sum(1);
            b = eSm * b + em.sum(1);
            p = p2;
        }
        var y = outs.Count == 1 ? outs[0] : torch.cat(outs, 1);
        return (y.MoveToOuterDisposeScope(), new WkvState(a.MoveToOuterDisposeScope(), b.MoveToOuterDisposeScope(), p.MoveToOuterDisposeScope()));
    }

    private static (Tensor Dist, Tensor Past, Tensor Diag) Masks(long n, ScalarType dtype, Device device)
    {
        var t = torch.arange(n, device: device).unsqueeze(1);
        var i = torch.arange(n, device: device).unsqueeze(0);
        return ((t - 1 - i).to(dtype), i < t, i == t);
    }
}
