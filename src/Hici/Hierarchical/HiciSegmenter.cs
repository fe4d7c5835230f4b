namespace Hici.Hierarchical;

/// <summary>A segmenter's random state: the generator's word and the ratio of the last draw.</summary>
public readonly record struct SegmenterState(ulong Rng, double CurrentMixedRatio);

/// <summary>
/// The segment-length rule of the reference (group size in forward_flashattn_hierarchical for training, forward_flashattn_hierarchical_inference for inference). One instance belongs to a
/// model and is shared by all its layers, because with mixed ratios layer 0 draws the ratio and later layers
/// reuse it. The draws come from a seeded SplitMix64 generator whose state <see cref="GetState"/> /
/// <see cref="SetState"/> save and restore, so a resumed training run draws what the uninterrupted run drew
/// (System.Random cannot expose its state).
/// </summary>
public sealed class HiciSegmenter
{
    private readonly HiciConfig _cfg;
    private readonly bool _sftRule;
    private ulong _rng;
    private double _currentMixedRatio;

    /// <param name="sftRule">training segments by <see cref="SftSegmentSize"/> (supervised fine-tuning) instead of the pre-training rule</param>
    public HiciSegmenter(HiciConfig cfg, ulong seed = 0, bool sftRule = false)
    {
        _cfg = cfg;
        _sftRule = sftRule;
        _rng = seed;
        _currentMixedRatio = cfg.MixedSegmentRatios is { Count: > 0 } r ? r[0] : cfg.SegmentRatio;
    }

    public SegmenterState GetState() => new(_rng, _currentMixedRatio);

    public void SetState(SegmenterState state)
    {
        _rng = state.Rng;
        _currentMixedRatio = state.CurrentMixedRatio;
    }

    /// <summary>SplitMix64 (Steele, Lea, Flood 2014): one 64-bit word of state, full period.</summary>
    private ulong NextWord()
    {
        ulong z = _rng += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, n) by Lemire's multiply-shift (bias below 2^-32 for small n).</summary>
    private int NextIndex(int n) => (int)(((NextWord() >> 32) * (ulong)n) >> 32);

    /// <summary>The ratio drawn by the last layer-0 call in mixed-ratio training.</summary>
    public double CurrentMixedRatio => _currentMixedRatio;

    /// <summary>
    /// Segment length S for the training forward. Mixed ratios apply only when <paramref name="training"/>;
    /// layer 0 draws a new one. Throws a <see cref="HiciException"/> when T is not a multiple of S (the
    /// reference's view raises there).
    /// </summary>
    public int TrainingSegmentSize(int seqLen, int layerIdx = 0, bool training = false)
    {
        if (seqLen < 1) throw new HiciException($"HiCI: sequence length must be >= 1 (got {seqLen})");
        if (training && _sftRule) return SftSegmentSize(seqLen);
        int s;
        if (training && _cfg.MixedSegmentRatios is { Count: > 0 } ratios)
        {
            if (layerIdx == 0) _currentMixedRatio = ratios[NextIndex(ratios.Count)];
            s = (int)(seqLen * _currentMixedRatio);
        }
        else if (_cfg.SegmentSize is { } fixedSize)
        {
            s = fixedSize;
            if (seqLen < s) s = seqLen;
        }
        else
        {
            s = (int)(seqLen * _cfg.SegmentRatio);
        }
        s = Math.Max(1, s);
        if (seqLen % s != 0)
            throw new HiciException(
                $"HiCI training forward: sequence length {seqLen} is not a multiple of the segment length {s} " +
                $"({RuleText(training)}); the training forward does not pad. Use a length divisible by {s}, " +
                "another segment rule, or the inference forward (which pads the last segment)");
        return s;
    }

    /// <summary>
    /// The SFT segment rule of the reference's llama_attn_hici_sft.py → forward_flashattn_hierarchical (its module
    /// constant group_size_ratio = 1), made for SFT samples of any length: a length that is a multiple of 4096 is one
    /// segment; otherwise the divisor of T in [10, T/2] closest to T (the largest proper divisor T/p, p the smallest
    /// prime factor of T; the lower bound is 1 when T &lt; 10 and the upper bound T when T &lt; 20), or T itself (one
    /// segment) when T has none (e.g. a prime). So the segment count follows the arithmetic of each sample's length:
    /// an even length gives 2 segments, an odd multiple of 3 gives 3, 4096·k gives 1. Never needs padding.
    /// </summary>
    public static int SftSegmentSize(int seqLen)
    {
        if (seqLen < 1) throw new HiciException($"HiCI: sequence length must be >= 1 (got {seqLen})");
        const int groupSizeRatio = 1;                       // llama_attn_hici_sft.py: group_size_ratio = 1
        int target = seqLen * groupSizeRatio;
        if (seqLen % 4096 == 0) return target;
        int min = target >= 10 ? 10 : 1, max = seqLen >= 20 ? seqLen / 2 : seqLen;
        int best = -1;
        for (int d = 1; (long)d * d <= seqLen; d++)
        {
            if (seqLen % d != 0) continue;
            foreach (int c in new[] { d, seqLen / d })
                if (c >= min && c <= max && (best < 0 || Math.Abs(c - target) < Math.Abs(best - target))) best = c;
        }
        return best < 0 ? seqLen : best;
    }

    /// <summary>Segment length S for the inference forward (no divisibility needed: the forward pads).</summary>
    public int InferenceSegmentSize(int seqLen)
    {
        if (seqLen < 1) throw new HiciException($"HiCI: sequence length must be >= 1 (got {seqLen})");
        if (_cfg.InferenceSingleSegment) return seqLen;
        int s = _cfg.SegmentSize ?? (int)(seqLen * _cfg.SegmentRatio);
        if (seqLen < s) s = seqLen;
        return Math.Max(1, s);
    }

    private string RuleText(bool training) =>
        training && _cfg.MixedSegmentRatios is { Count: > 0 } ? $"mixed ratio {_currentMixedRatio}"
        : _cfg.SegmentSize is { } f ? $"segment_size {f}"
        : $"segment_ratio {_cfg.SegmentRatio}";
}
