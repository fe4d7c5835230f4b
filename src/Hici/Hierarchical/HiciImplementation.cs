using Hici.IO;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Hierarchical;

/// <summary>
/// The options of attention "hici": the HiCI hyper-parameters, whether HiCI runs (false: the modules are
/// held and loaded but plain full attention runs — the reference's paper perplexities with HiCI weights
/// loaded), and the seed of the model's segmenter (mixed segment ratios in training).
/// </summary>
/// <param name="SftSegments">training segments by the SFT rule (<see cref="HiciSegmenter.SftSegmentSize"/>)</param>
public sealed record HiciAttentionOptions(HiciConfig Config, bool Run = true, ulong SegmenterSeed = 0, bool SftSegments = false)
{
    /// <summary>The HiCI options of a model config, or null when it does not hold HiCI modules.</summary>
    public static HiciAttentionOptions? Of(ModelConfig cfg) => cfg.Attention.Options as HiciAttentionOptions;

    /// <summary>The setting that runs HiCI with <paramref name="config"/> (<paramref name="run"/> false: held, not run).</summary>
    public static AttentionSetting Setting(HiciConfig config, bool run = true, ulong segmenterSeed = 0) =>
        new(HiciImplementation.Id, new HiciAttentionOptions(config, run, segmenterSeed));
}

/// <summary>Attention "hici": <see cref="HiciAttention"/> layers sharing one seeded <see cref="HiciSegmenter"/>.</summary>
public sealed class HiciImplementation : AttentionImplementation
{
    public const string Id = "hici";
    public override string Name => Id;
    public override string Summary => "HiCI: segment-local attention plus local and global memory slots (needs the HiCI weights)";

    private static HiciAttentionOptions Options(ModelConfig cfg) => HiciAttentionOptions.Of(cfg)
        ?? throw new HiciException("attention 'hici' needs a HiCI config (hici_config.json beside the checkpoint, or the HiCI flags)");

    public override object? ValidateOptions(object? options, ModelConfig cfg)
    {
        var o = options switch
        {
            HiciAttentionOptions h => h,
            HiciConfig c => new HiciAttentionOptions(c),
            null => throw new HiciException("attention 'hici' needs a HiCI config (hici_config.json beside the checkpoint, or the HiCI flags)"),
            _ => throw new HiciException($"attention 'hici' takes HiciAttentionOptions (got {options.GetType().Name})"),
        };
        return o with { Config = o.Config.ValidateFor(cfg.HiddenSize) };
    }

    /// <summary>A folder's hici_config.json (as `hici merge` writes it), when the request names no options.</summary>
    public override object? OptionsFromFolder(string modelDir) =>
        File.Exists(Path.Combine(modelDir, HiciConfig.FileName)) ? new HiciAttentionOptions(HiciConfig.Load(Path.Combine(modelDir, HiciConfig.FileName))) : null;

    public override IReadOnlyList<Attention> CreateLayers(ModelConfig cfg, Device? device, ScalarType? dtype)
    {
        var o = Options(cfg);
        // one segmenter per model: with mixed ratios layer 0 draws and the later layers reuse its draw
        var segmenter = new HiciSegmenter(o.Config, o.SegmenterSeed, o.SftSegments);
        return PerLayer(cfg, i => new HiciAttention(cfg, i, o.Run, segmenter, device, dtype));
    }

    /// <summary>The segmenter of a model built with attention "hici" (one per model), or null.</summary>
    public static HiciSegmenter? SegmenterOf(CausalLM lm) =>
        lm.model.layers.Select(l => l.self_attn).OfType<HiciAttention>().FirstOrDefault()?.Segmenter;

    public override bool OwnsKey(string key) => HiciKeys.IsHiciKey(key);

    public override IWeightSource PrepareCheckpoint(ModelConfig cfg, IWeightSource src) => HiciCheckpoint.Prepare(cfg, src);

    public override string? CheckNotLoaded(ModelConfig cfg, IReadOnlyList<string> notLoaded, IReadOnlyList<string> origins)
    {
        if (notLoaded.Count == 0) return null;
        if (Options(cfg).Run)
            throw new HiciException(
                $"HiCI attention needs the HiCI weights, but {notLoaded.Count} HiCI tensors are in neither {string.Join(" nor ", origins)}" +
                $" (e.g. {notLoaded[0]})" + (origins.Count == 1 ? "; pass the checkpoint's trainable_params.bin with --trainable" : ""));
        return $"{notLoaded.Count} HiCI tensors are in no checkpoint; full attention does not use them";
    }

    public override string Describe(ModelConfig cfg, int tokens, out string? warning)
    {
        warning = null;
        var o = Options(cfg);
        if (!o.Run) return "full (HiCI modules loaded, not run: the reference's perplexity setting)";
        var c = o.Config;
        var seg = new HiciSegmenter(c);
        string mode = HiciConfig.CausalModeName(c.CausalMode);
        int s = c.Forward == HiciForwardKind.Train ? seg.TrainingSegmentSize(tokens) : seg.InferenceSegmentSize(tokens);
        int n = (tokens + s - 1) / s;
        bool memory = c.Forward == HiciForwardKind.Train || n > 1 || c.InferenceSingleSegment;
        string fwd = c.Forward == HiciForwardKind.Train ? "train" : "inference";
        string pad = n * s != tokens ? $", last segment padded by {n * s - tokens}" : "";
        if (!memory) return $"hici, {fwd} forward, 1 segment of {s}: HiCI off (plain causal attention)";
        if (c.CausalMode is HiciCausalMode.None or HiciCausalMode.CausalGi or HiciCausalMode.CausalGiGOnly)
            warning = $"causal_mode {mode} lets positions see later tokens through the HiCI memory: this perplexity is not a " +
                      "language-model perplexity (see docs/hici.md; check with hici audit-causality)";
        return $"hici, {fwd} forward, causal_mode {mode}, {n} segment{(n == 1 ? "" : "s")} of {s} tokens{pad} " +
               $"(M={c.LocalSlots} K={c.GlobalSlots} h={c.NumHeads} β={c.BottleneckDim} C={c.SharedCompressDim})";
    }

    public override bool ScoresWholeSequence(ModelConfig cfg) => Options(cfg).Run;
}
