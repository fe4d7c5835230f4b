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
    /// Block-parallel form: the T tokens are cut into blocks of Q = <paramref name="blockSize"/>. All blocks are computed at
    /// once: inside a block every output is a weighted sum over a log-space [Q, Q] weight matrix (elementwise per
    /// channel, reduced over i) with a row maximum; each block's own contribution to the carried state is summarised the
    /// same way; a short scan over the T/Q blocks (a few [B, d] operations each) gives every block's incoming state,
    /// which is then merged into its outputs. A last partial block is one more call. The maxima and the exit p are
    /// detached: outputs do not depend on them, and with p detached the exit a is the derivative-carrying factor of
    /// A = a·e^p, so gradients stay exact. The decays are never factored as e^{tw}·e^{−(i+1)w}: with |w| up to ~150
    /// that overflows even for small blocks.
    /// </summary>
    public static (Tensor Out, WkvState State) Chunked(Tensor k, Tensor v, Tensor w, Tensor u, WkvState state, int blockSize)
    {
        if (blockSize <= 0) throw new ArgumentOutOfRangeException(nameof(blockSize));
        using var scope = torch.NewDisposeScope();
        long T = k.shape[1], Q = Math.Min(blockSize, T), full = T / Q * Q;
        var (y, st) = Blocks(k.narrow(1, 0, full), v.narrow(1, 0, full), w, u, state, Q);
        if (full < T)
        {
            var (y2, st2) = Blocks(k.narrow(1, full, T - full), v.narrow(1, full, T - full), w, u, st, T - full);
            y = torch.cat([y, y2], 1);
            st = st2;
        }
        return (y.MoveToOuterDisposeScope(), new WkvState(st.A.MoveToOuterDisposeScope(), st.B.MoveToOuterDisposeScope(), st.P.MoveToOuterDisposeScope()));
    }

    /// <summary>T a multiple of Q: all blocks in parallel, then the scan over blocks.</summary>
    private static (Tensor Out, WkvState State) Blocks(Tensor k, Tensor v, Tensor w, Tensor u, WkvState state, long Q)
    {
        long B = k.shape[0], T = k.shape[1], d = k.shape[2], nb = T / Q;
        var kb = k.reshape(B, nb, Q, d);
        var vb = v.reshape(B, nb, Q, d);
        var (dist, past, diag) = Masks(Q, k.dtype, k.device);
        // Λ[t, i] = (t−1−i)·w + k_i below the diagonal, u + k_t on it, P_NEG above: [B, nb, Q(t), Q(i), d]
        var lam = torch.where(past.unsqueeze(-1), dist.unsqueeze(-1) * w + kb.unsqueeze(2),
            torch.where(diag.unsqueeze(-1), (u + kb).unsqueeze(2), torch.tensor(PNeg, k.dtype, k.device)));
        var mIn = lam.amax([3]).detach();                                   // [B, nb, Q, d]
        var e = (lam - mIn.unsqueeze(3)).exp();
        var numIn = (e * vb.unsqueeze(2)).sum(3);
        var denIn = e.sum(3);
        // each block's own contribution to the state after it: μ_i = (Q−1−i)·w + k_i
        var tIdx = torch.arange(Q, dtype: k.dtype, device: k.device).unsqueeze(-1);   // [Q, 1]
        var mu = (Q - 1 - tIdx) * w + kb;                                  // [B, nb, Q, d]
        var pBlk = mu.amax([2]).detach();                                  // [B, nb, d]
        var em = (mu - pBlk.unsqueeze(2)).exp();
        var aBlk = (em * vb).sum(2);
        var bBlk = em.sum(2);
        // scan: the state entering every block (few, small operations)
        var ins = new (Tensor A, Tensor B, Tensor P)[nb];
        Tensor a = state.A, b = state.B, p = state.P;
        var qw = w * Q;
        for (long j = 0; j < nb; j++)
        {
            ins[j] = (a, b, p);
            var pd = p + qw;
            var pj = pBlk.select(1, j);
            var p2 = torch.maximum(pd, pj).detach();
            var f1 = (pd - p2).exp();
            var f2 = (pj - p2).exp();
            a = f1 * a + f2 * aBlk.select(1, j);
            b = f1 * b + f2 * bBlk.select(1, j);
            p = p2;
        }
        var aIn = torch.stack(ins.Select(x => x.A).ToArray(), 1).unsqueeze(2);   // [B, nb, 1, d]
        var bIn = torch.stack(ins.Select(x => x.B).ToArray(), 1).unsqueeze(2);
        var pIn = torch.stack(ins.Select(x => x.P).ToArray(), 1).unsqueeze(2);
        var lamS = pIn + tIdx * w;                                          // [B, nb, Q, d]
        var m = torch.maximum(mIn, lamS).detach();
        var cIn = (mIn - m).exp();
        var cS = (lamS - m).exp();
        var y = (cIn * numIn + cS * aIn) / (cIn * denIn + cS * bIn);
        return (y.reshape(B, T, d), new WkvState(a, b, p));
    }

    private static (Tensor Dist, Tensor Past, Tensor Diag) Masks(long n, ScalarType dtype, Device device)
    {
        var t = torch.arange(n, device: device).unsqueeze(1);
        var i = torch.arange(n, device: device).unsqueeze(0);
        return ((t - 1 - i).to(dtype), i < t, i == t);
    }
}
