using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>cos/sin tables for the positions of one forward call, shape [L, head_dim], in the activation dtype.</summary>
public sealed record RopeTables(Tensor Cos, Tensor Sin);

/// <summary>
/// Rotary position embedding (rotate-half convention, as HF Llama/Qwen3). Not an nn.Module: it has no
/// weights and HF does not save <c>inv_freq</c>, so it must not appear in the state dict.
/// inv_freq and the angles are float32 (as HF computes them with autocast off); only cos/sin are cast
/// to the activation dtype, because bf16 angles at position 4000 would be off by whole radians.
/// </summary>
public sealed class RotaryEmbedding : IDisposable
{
    private readonly ModelConfig _cfg;
    private readonly Device _device;
    private readonly Tensor _invFreq;   // float32 [head_dim/2], for the default/linear/llama3 cases

    public RotaryEmbedding(ModelConfig cfg, Device device)
    {
        _cfg = cfg;
        _device = device;
        _invFreq = ComputeInvFreq(cfg, seqLen: null, device).DetachFromDisposeScope();
    }

    public int Dim => _cfg.HeadDim;

    /// <summary>
    /// Tables for positions [start, start+length). <paramref name="sequenceLength"/> is the length dynamic
    /// NTK scales for (default start+length, HF's max(position_ids)+1).
    /// </summary>
    public RopeTables Tables(long start, long length, ScalarType dtype, long? sequenceLength = null)
    {
        using var pos = torch.arange(start, start + length, dtype: ScalarType.Int64, device: _device);
        return Tables(pos, dtype, Math.Max(start + length, sequenceLength ?? 0));
    }

    /// <summary>
    /// Tables [L, head_dim] for arbitrary int64 <paramref name="positionIds"/> [L] (HF position_ids; e.g. the
    /// intra-/inter-chunk positions of dual chunk attention; float32 positions are taken as they are, e.g.
    /// DCA's offsets divided by the linear factor). <paramref name="sequenceLength"/>: the length
    /// dynamic NTK scales for (default max(positionIds) + 1, as HF).
    /// </summary>
    public RopeTables Tables(Tensor positionIds, ScalarType dtype, long? sequenceLength = null)
    {
        if (positionIds.dim() != 1) throw new ArgumentException($"position ids must be 1-D (got [{string.Join(", ", positionIds.shape)}])");
        // HF caches the grown inv_freq across calls; we recompute it per call from the length alone, which
        // equals HF for any single forward and keeps the result independent of call history.
        long seqLen = sequenceLength ?? (positionIds.numel() == 0 ? 0 : positionIds.max().item<long>() + 1);
        bool dynamic = _cfg.RopeScaling?.Type == "dynamic" && seqLen > _cfg.MaxPositionEmbeddings;
        using var invDyn = dynamic ? ComputeInvFreq(_cfg, seqLen, _device) : null;
        var inv = invDyn ?? _invFreq;

        using var pos = positionIds.to(ScalarType.Float32, _device);
        using var freqs = pos.unsqueeze(1) * inv.unsqueeze(0);           // [L, d/2], one exact product each, like HF's matmul
        using var emb = torch.cat(new[] { freqs, freqs }, dim: -1);       // [L, d]
        using var cos = emb.cos();
        using var sin = emb.sin();
        return new RopeTables(cos.to(dtype), sin.to(dtype));
    }

    /// <summary>HF's ROPE_INIT_FUNCTIONS for default / linear / dynamic / llama3 (attention_factor is 1 for all).</summary>
    public static Tensor ComputeInvFreq(ModelConfig cfg, long? seqLen, Device device)
    {
        using var scope = torch.NewDisposeScope();
        int dim = cfg.HeadDim;
        double theta = cfg.RopeTheta;
        var rs = cfg.RopeScaling;
        if (rs?.Type == "dynamic")
        {
            long maxPos = cfg.MaxPositionEmbeddings;
            long s = Math.Max(seqLen ?? maxPos, maxPos);
            theta *= Math.Pow(rs.Factor * s / maxPos - (rs.Factor - 1), (double)dim / (dim - 2));
        }
        var exponent = torch.arange(0, dim, 2, dtype: ScalarType.Int64, device: device).to(ScalarType.Float32) / dim;
        var inv = 1.0f / torch.pow(theta, exponent);
        switch (rs?.Type)
        {
            case null or "default" or "dynamic":
                break;
            case "linear":
                // HF divides inv_freq (not the positions) by the factor; equal up to rounding.
                inv = inv / rs.Factor;
                break;
            case "llama3":
                inv = Llama3(inv, rs, cfg);
                break;
            default:
                throw new HiciException($"rope_scaling type '{rs.Type}' is not supported (supported: linear, dynamic, llama3)");
        }
        return inv.MoveToOuterDisposeScope();
    }

    /// <summary>HF _compute_llama3_parameters: long wavelengths are divided by factor, short ones kept, the band between blended.</summary>
    private static Tensor Llama3(Tensor inv, RopeScaling rs, ModelConfig cfg)
    {
        double factor = rs.Factor, low = rs.LowFreqFactor, high = rs.HighFreqFactor;
        double oldCtx = rs.OriginalMaxPositionEmbeddings ?? throw new HiciException("rope_scaling llama3 needs original_max_position_embeddings");
        double lowFreqWavelen = oldCtx / low;
        double highFreqWavelen = oldCtx / high;
        var wavelen = 2 * Math.PI / inv;
        var invLlama = torch.where(wavelen > lowFreqWavelen, inv / factor, inv);
        var smooth = (oldCtx / wavelen - low) / (high - low);
        var smoothed = (1 - smooth) * invLlama / factor + smooth * invLlama;
        var isMedium = (wavelen >= highFreqWavelen).logical_and(wavelen <= lowFreqWavelen);
        return torch.where(isMedium, smoothed, invLlama);
    }

    /// <summary>q·cos + rotate_half(q)·sin for x of shape [B, H, L, d]; tables broadcast over B and H.</summary>
    public static Tensor Apply(Tensor x, RopeTables t)
    {
        using var scope = torch.NewDisposeScope();
        long half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = torch.cat(new[] { -x2, x1 }, dim: -1);
        return (x * t.Cos + rotated * t.Sin).MoveToOuterDisposeScope();
    }

    public void Dispose() => _invFreq.Dispose();
}
