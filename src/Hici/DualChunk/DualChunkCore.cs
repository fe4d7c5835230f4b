using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.DualChunk;

/// <summary>
/// The attention math of <see cref="DualChunkAttention"/> on projected heads: rotation in the three query
/// frames, the partial attentions, their merge, and the mscale state of one layer.
/// </summary>
public sealed class DualChunkCore : IDisposable
{
    private readonly DualChunkRotary _rotary;
    /// <summary>Sticky mscale: the longest kv length this layer has seen, at least max_position_embeddings.</summary>
    private long _longestSeen;

    public DualChunkSettings Settings { get; }
    /// <summary>True (default): a prefill's partial attentions run libtorch's flash kernel (<see cref="LseAttention"/>);
    /// false forces the float32 tiles (the benchmark's before/after).</summary>
    public bool UseFlash { get; set; } = true;

    public DualChunkCore(ModelConfig cfg, DualChunkSettings settings)
    {
        Settings = settings;
        _rotary = new DualChunkRotary(cfg, settings);
        _longestSeen = cfg.MaxPositionEmbeddings;
    }

    public void Dispose() => _rotary.Dispose();

    /// <summary>
    /// q [B, H, L, d] and k, v [B, Hkv, L, d] of the new tokens at positions [start, start+L), not rotated
    /// (after Qwen3's q_norm/k_norm); the keys are rotated here and appended to <paramref name="cache"/>.
    /// mask: bool [B, start+L], true = a real token (null = none padded). Returns [B, H, L, d].
    /// </summary>
    public Tensor Attend(Tensor q, Tensor k, Tensor v, long start, LayerKvCache? cache, Tensor? mask)
    {
        using var scope = torch.NewDisposeScope();
        long l = q.shape[2], total = start + l;
        if (cache is null && start != 0) throw new HiciException("dual chunk attention: positions after 0 need the KV cache of the earlier ones");
        var (keyScale, queryScale) = Scales(total);
        var dtype = q.dtype;
        var device = q.device;
        k = RotaryEmbedding.Apply(k, _rotary.Intra(_rotary.Offsets(start, l, device), keyScale, dtype));
        var (keys, values) = cache is null ? (k, v) : cache.Append(k, v, start);

        int c = Settings.ChunkLen;
        var outs = new List<Tensor>();
        for (long p0 = start; p0 < total;)
        {
            long chunk = p0 / c, begin = chunk * c, p1 = Math.Min(total, begin + c);
            using var step = torch.NewDisposeScope();
            var qs = q.narrow(2, p0 - start, p1 - p0);
            var offsets = _rotary.Offsets(p0, p1 - p0, device);
            var parts = new List<(Tensor O, Tensor Lse)>
            {
                Part(RotaryEmbedding.Apply(qs, _rotary.Intra(offsets, queryScale, dtype)), keys, values, begin, p1 - begin, true, mask),
            };
            if (chunk >= 1)
                parts.Add(Part(RotaryEmbedding.Apply(qs, _rotary.Successive(offsets, queryScale, dtype)), keys, values, begin - c, c, false, mask));
            if (chunk >= 2)
                parts.Add(Part(RotaryEmbedding.Apply(qs, _rotary.Inter(device, queryScale, dtype)), keys, values, 0, begin - c, false, mask));
            var o = parts.Count == 1 ? parts[0].O : Merge(parts, prefill: start == 0);
            outs.Add(o.MoveToOuterDisposeScope());
            p0 = p1;
        }
        return (outs.Count == 1 ? outs[0] : torch.cat(outs, 2)).MoveToOuterDisposeScope();
    }

    private (Tensor O, Tensor Lse) Part(Tensor q, Tensor keys, Tensor values, long from, long count, bool causal, Tensor? mask) =>
        LseAttention.Attend(q, keys.narrow(2, from, count), values.narrow(2, from, count), causal, mask?.narrow(1, from, count), UseFlash);

    /// <summary>
    /// merge_attn_outputs: weights softmax_j(lse_j) in float32. In a prefill the products are formed in place
    /// in the output dtype, with the weights rounded to bfloat16 first in the Llama version; a decoding call
    /// mirrors the reference's single softmax over all three key ranges, so it merges in float32.
    /// </summary>
    private Tensor Merge(List<(Tensor O, Tensor Lse)> parts, bool prefill)
    {
        var outs = torch.stack(parts.Select(p => p.O));                   // [J, B, H, n, d]
        var lse = torch.stack(parts.Select(p => p.Lse));                  // [J, B, H, n], float32
        var w = (lse - lse.amax(new long[] { 0 }, keepdim: true)).exp();
        w = (w / w.sum(0, keepdim: true)).nan_to_num(0.0).unsqueeze(-1); // a row no key reaches (padding) gets 0
        if (!prefill) return (outs.to(ScalarType.Float32) * w).sum(0, keepdim: false).to(outs.dtype);
        if (Settings.Bf16MergeWeights) w = w.to(ScalarType.BFloat16);
        return outs.mul_(w).sum(0, keepdim: false);
    }

    /// <summary>(mscale on the key tables, mscale on the query tables) for a call whose keys end at <paramref name="kvLength"/>.
    /// The two are equal for every mode the reference has; kept apart so the key frame stays explicit.</summary>
    private (double Key, double Query) Scales(long kvLength)
    {
        switch (Settings.Mscale)
        {
            case DualChunkMscale.Sticky:
                _longestSeen = Math.Max(_longestSeen, kvLength);
                double m = Settings.MscaleAt(_longestSeen);
                return (m, m);
            default:
                return (1.0, 1.0);
        }
    }
}
