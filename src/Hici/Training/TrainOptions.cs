using Hici.Hierarchical;
using Hici.Lora;
using Hici.Models;
using static TorchSharp.torch;

namespace Hici.Training;

/// <summary>
/// Everything a training run is (continued pre-training or SFT); names follow the reference's flags
/// (fine-tune_hici.py TrainingArguments). Defaults are the reference's shell values where it has them.
/// </summary>
public sealed record TrainOptions
{
    public required string ModelDir { get; init; }
    public required string OutputDir { get; init; }
    public int ModelMaxLength { get; init; } = 8192;
    /// <summary>null: no LoRA (full training of the <see cref="Trainable"/> parameters).</summary>
    public LoraConfig? Lora { get; init; } = new();
    /// <summary>Substrings of parameter names that train besides LoRA (reference --trainable_params); "all" = every parameter.</summary>
    public IReadOnlyList<string> Trainable { get; init; } = new[] { "embed", "norm", "local_constructor", "global_integrator" };
    public double LearningRate { get; init; } = 2e-5;
    /// <summary>Own rate for the HiCI modules (incl. their LoRA); null = the same as the rest.</summary>
    public double? HiciLearningRate { get; init; } = 2e-4;
    public double WeightDecay { get; init; }
    public int WarmupSteps { get; init; } = 20;
    public LrScheduleKind Scheduler { get; init; } = LrScheduleKind.ConstantWithWarmup;
    public int MaxSteps { get; init; } = 1000;
    public int BatchSize { get; init; } = 1;
    public int GradAccum { get; init; } = 1;
    /// <summary>Clip of the global gradient norm (all trainable parameters); 0 = none.</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>A separate clip of the HiCI parameters' gradient norm, applied first; null = none.</summary>
    public double? HiciGradClip { get; init; }
    public int SaveSteps { get; init; } = 500;
    public int? SaveTotalLimit { get; init; }
    public long Seed { get; init; } = 42;
    public ScalarType DType { get; init; } = ScalarType.Float32;
    /// <summary>The attention implementation and its options (HiCI: <see cref="HiciAttentionOptions"/>; with
    /// Run false the HiCI modules are held, trained and saved but plain full attention runs).</summary>
    public AttentionSetting Attention { get; init; } = AttentionSetting.Full;
    /// <summary>The HiCI config of <see cref="Attention"/>, or null.</summary>
    public HiciConfig? Hici => (Attention.Options as HiciAttentionOptions)?.Config ?? Attention.Options as HiciConfig;
    /// <summary>Scale RoPE for <see cref="ModelMaxLength"/> as the reference's training scripts do.</summary>
    public bool ScaleRope { get; init; } = true;
    public long LossChunkRows { get; init; } = 2048;
    /// <summary>HiCI segments by the SFT rule of the reference's llama_attn_hici_sft.py (<see cref="HiciSegmenter.SftSegmentSize"/>):
    /// `hici sft` sets it, so samples of any length train without padding.</summary>
    public bool SftSegmentRule { get; init; }
    /// <summary>Recompute each decoder layer in the backward pass (<see cref="MicroBatchStep"/>): less memory, one more forward.</summary>
    public bool GradientCheckpointing { get; init; }
    public bool Shuffle { get; init; } = true;

    public const double AdamBeta1 = 0.9, AdamBeta2 = 0.999, AdamEps = 1e-8;

    public TrainOptions Validate()
    {
        var bad = new List<string>();
        if (ModelMaxLength < 2) bad.Add($"--model-max-length must be at least 2 (got {ModelMaxLength})");
        if (MaxSteps < 1) bad.Add($"--max-steps must be positive (got {MaxSteps})");
        if (BatchSize < 1) bad.Add($"--batch-size must be positive (got {BatchSize})");
        if (GradAccum < 1) bad.Add($"--grad-accum must be positive (got {GradAccum})");
        if (SaveSteps < 1) bad.Add($"--save-steps must be positive (got {SaveSteps})");
        if (SaveTotalLimit is < 1) bad.Add($"--save-total-limit must be positive (got {SaveTotalLimit})");
        if (WarmupSteps < 0) bad.Add($"--warmup-steps must not be negative (got {WarmupSteps})");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) bad.Add($"--lr must be positive (got {LearningRate})");
        if (HiciLearningRate is { } h && (!(h > 0) || !double.IsFinite(h))) bad.Add($"--hici-lr must be positive (got {h})");
        if (!(WeightDecay >= 0)) bad.Add($"--weight-decay must not be negative (got {WeightDecay})");
        if (!(MaxGradNorm >= 0)) bad.Add($"--max-grad-norm must not be negative (got {MaxGradNorm})");
        if (HiciGradClip is { } c && !(c > 0)) bad.Add($"--hici-grad-clip must be positive (got {c})");
        if (Attention.Name == HiciImplementation.Id && Hici is null) bad.Add("--attention hici needs a HiCI config");
        if (SftSegmentRule && Hici?.MixedSegmentRatios is { Count: > 0 }) bad.Add("--mixed-segments does not apply to SFT: its segments follow each sample's length (llama_attn_hici_sft.py)");
        if (Lora is null && Trainable.Count == 0) bad.Add("nothing trains: no LoRA and no --trainable");
        if (bad.Count > 0) throw new HiciException(string.Join("; ", bad));
        return this;
    }
}
