using TorchSharp;
using TorchSharp.Modules;
using Hici.Models;
using static TorchSharp.torch;

namespace Hici.I3;

/// <summary>Keys and values of the compressed memory for one attention layer, [B, H, S, h_d] each (computed once per chunk).</summary>
public sealed record MemoryKv(Tensor K, Tensor V) : IDisposable
{
    public void Dispose() { K.Dispose(); V.Dispose(); }
}

/// <summary>
/// Keys/values of the current chunk's earlier tokens for incremental decoding: preallocated [B, H, W, h_d] and
/// filled in place, so a chunk never grows a tensor by concatenation.
/// </summary>
public sealed class ChunkKvCache : ILayerState
{
    public Tensor K { get; }
    public Tensor V { get; }
    public long Length { get; private set; }

    public ChunkKvCache(long batch, int heads, int window, int headDim, ScalarType dtype, Device device)
    {
        K = torch.zeros([batch, heads, window, headDim], dtype: dtype, device: device);
        V = torch.zeros([batch, heads, window, headDim], dtype: dtype, device: device);
    }

    /// <summary>Writes the new keys/values after the cached ones and returns views of everything cached so far.</summary>
    public (Tensor K, Tensor V) Append(Tensor k, Tensor v)
    {
        long n = k.shape[2];
        if (Length + n > K.shape[2]) throw new InvalidOperationException($"chunk KV cache overflow ({Length} + {n} > {K.shape[2]})");
        using (torch.no_grad())
        {
            K.narrow(2, Length, n).copy_(k);
            V.narrow(2, Length, n).copy_(v);
        }
        Length += n;
        return (K.narrow(2, 0, Length), V.narrow(2, 0, Length));
    }

    public void Reset() => Length = 0;
    public void Dispose() { K.Dispose(); V.Dispose(); }
}

/// <summary>
/// Pre-LN transformer block whose attention reads [memory ; chunk tokens]: queries come from the chunk tokens
/// only; the memory (compressed history, no positions) goes through the same LN1 and K/V projections as tokens
/// and is visible to every query, with ln α added to its logits (the compression warmup gate); chunk columns
/// are causal (bottom-right aligned when earlier tokens of the chunk are cached). Then a 4× GELU FFN.
/// </summary>
public sealed class MemoryAttentionBlock : nn.Module
{
    public LayerNorm ln1, ln2;
    public Linear qkv, proj, fc1, fc2;

    public int Heads { get; }
    public int HeadDim { get; }

    public MemoryAttentionBlock(I3Config cfg, Device device) : base(nameof(MemoryAttentionBlock))
    {
        int d = cfg.DModel;
        Heads = cfg.Heads;
        HeadDim = d / Heads;
        ln1 = nn.LayerNorm(d, cfg.LayerNormEps, device: device);
        ln2 = nn.LayerNorm(d, cfg.LayerNormEps, device: device);
        qkv = nn.Linear(d, 3L * d, hasBias: true, device: device);
        proj = nn.Linear(d, d, hasBias: true, device: device);
        fc1 = nn.Linear(d, (long)cfg.FfnMult * d, hasBias: true, device: device);
        fc2 = nn.Linear((long)cfg.FfnMult * d, d, hasBias: true, device: device);
        RegisterComponents();
    }

    /// <summary>Memory keys/values for memory rows <paramref name="mem"/> [B, S, d].</summary>
    public MemoryKv MemoryKeys(Tensor mem)
    {
        using var scope = torch.NewDisposeScope();
        var kv = qkv.call(ln1.call(mem)).chunk(3, -1);
        return new MemoryKv(Heads_(kv[1]).MoveToOuterDisposeScope(), Heads_(kv[2]).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// x [B, T, d]: new chunk tokens; <paramref name="mem"/>: memory keys/values or null; <paramref name="alpha"/> ∈ (0, 1]
    /// (memory is ignored when it is 0); <paramref name="cache"/>: the chunk's earlier tokens (appended to), or null for a whole chunk.
    /// </summary>
    public Tensor Run(Tensor x, MemoryKv? mem, double alpha, ChunkKvCache? cache)
    {
        using var scope = torch.NewDisposeScope();
        long B = x.shape[0], T = x.shape[1];
        var parts = qkv.call(ln1.call(x)).chunk(3, -1);
        var q = Heads_(parts[0]);
        var k = Heads_(parts[1]);
        var v = Heads_(parts[2]);
        long cached = cache?.Length ?? 0;
        if (cache is not null) (k, v) = cache.Append(k, v);
        bool useMem = mem is not null && alpha > 0;
        long S = useMem ? mem!.K.shape[2] : 0;
        if (useMem) { k = torch.cat([mem!.K, k], 2); v = torch.cat([mem.V, v], 2); }
        // A whole chunk without memory is plain causal attention (the fast path; top-left = bottom-right here).
        var o = S == 0 && cached == 0
            ? nn.functional.scaled_dot_product_attention(q, k, v, is_casual: T > 1)
            : nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: Mask(T, cached, S, alpha, x.dtype, x.device));
        o = o.transpose(1, 2).reshape(B, T, -1);
        x = x + proj.call(o);
        x = x + fc2.call(nn.functional.gelu(fc1.call(ln2.call(x))));
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>Additive mask [T, S + cached + T]: ln α on memory columns, −∞ on chunk columns after the query.</summary>
    internal static Tensor Mask(long T, long cached, long S, double alpha, ScalarType dtype, Device device)
    {
        var t = torch.arange(T, device: device).unsqueeze(1) + cached;
        var j = torch.arange(cached + T, device: device).unsqueeze(0);
        var chunk = torch.zeros([T, cached + T], dtype: dtype, device: device).masked_fill(j > t, double.NegativeInfinity);
        if (S == 0) return chunk;
        var memCols = torch.full([T, S], Math.Log(alpha), dtype: dtype, device: device);
        return torch.cat([memCols, chunk], 1);
    }

    private Tensor Heads_(Tensor t) => SplitHeads(t, Heads, HeadDim);

    /// <summary>[B, T, H·h_d] → [B, H, T, h_d] (also for the compressor's cross-attention).</summary>
    internal static Tensor SplitHeads(Tensor t, int heads, int headDim) => t.view(t.shape[0], t.shape[1], heads, headDim).transpose(1, 2);
}
