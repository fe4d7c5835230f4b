using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.DualChunk;

/// <summary>
/// The position frames of ChunkLlamaRotaryEmbedding._set_cos_sin_cache (chunkllama_attn_replace.py), with c =
/// chunk_len, S = chunk_size and f the position divisor: keys and intra-chunk queries at (p mod c)/f,
/// successive-chunk queries at min(p mod c + c, S)/f, inter-chunk queries at min(2c − 1, S)/f. The reference
/// tabulates these per position; here only the rows a call needs are computed (a full table for a 40960-token
/// Qwen3 chunk would cost ~57 MB per layer), through <see cref="RotaryEmbedding.Tables(Tensor, ScalarType, long?)"/>
/// of the config without rope_scaling: inv_freq is the plain 1/θ^(2i/d), the reference ignores every
/// rope_scaling type except through f.
/// </summary>
public sealed class DualChunkRotary : IDisposable
{
    private readonly DualChunkSettings _s;
    private readonly ModelConfig _plain;
    private RotaryEmbedding? _rope;      // built on the device of the first call (layers are built on the meta device)
    private Device? _ropeDevice;

    public DualChunkRotary(ModelConfig cfg, DualChunkSettings s)
    {
        _s = s;
        _plain = cfg with { RopeScaling = null };
    }

    /// <summary>In-chunk offsets p mod c of absolute positions [start, start+n) (int64).</summary>
    public Tensor Offsets(long start, long n, Device device) =>
        torch.arange(start, start + n, dtype: ScalarType.Int64, device: device).remainder(_s.ChunkLen);

    /// <summary>Keys and intra-chunk queries.</summary>
    public RopeTables Intra(Tensor offsets, double scale, ScalarType dtype) => Tables(offsets, scale, dtype);

    /// <summary>Successive-chunk queries: min(offset + c, S).</summary>
    public RopeTables Successive(Tensor offsets, double scale, ScalarType dtype)
    {
        using var shifted = (offsets + _s.ChunkLen).clamp_max(_s.ChunkSize);
        return Tables(shifted, scale, dtype);
    }

    /// <summary>Inter-chunk queries: one row, the successive position of offset c − 1.</summary>
    public RopeTables Inter(Device device, double scale, ScalarType dtype)
    {
        using var p = torch.tensor(new long[] { Math.Min(2L * _s.ChunkLen - 1, _s.ChunkSize) }, device: device);
        return Tables(p, scale, dtype);
    }

    /// <summary>cos/sin [n, d] of integer positions divided by f, in float32, times <paramref name="scale"/>
    /// (mscale), then cast to the activation dtype — the order of the reference's table build and lookup.</summary>
    private RopeTables Tables(Tensor positions, double scale, ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        if (_rope is null || _ropeDevice != positions.device)
        {
            _rope?.Dispose();
            (_rope, _ropeDevice) = (new RotaryEmbedding(_plain, positions.device), positions.device);
        }
        using var t = positions.to(ScalarType.Float32) / _s.ScalingFactor;   // fractional for f ≠ 1
        var (cos, sin) = _rope.Tables(t, ScalarType.Float32, sequenceLength: 0);   // no rope_scaling here: the length is unused
        if (scale != 1.0) { cos = cos * scale; sin = sin * scale; }
        return new RopeTables(cos.to(dtype).MoveToOuterDisposeScope(), sin.to(dtype).MoveToOuterDisposeScope());
    }

    public void Dispose() => _rope?.Dispose();
}
