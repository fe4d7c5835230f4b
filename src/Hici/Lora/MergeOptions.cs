using static TorchSharp.torch;

namespace Hici.Lora;

public sealed record MergeOptions
{
    /// <summary>Writes rope_scaling for this context (see <see cref="RopeForContext"/>); null leaves it as is.</summary>
    public int? ContextSize { get; init; }
    /// <summary>Output dtype; default the base config's torch_dtype. bfloat16 is merged in a bfloat16 model,
    /// anything else in float32; the LoRA delta is always added in float32 and rounded once.</summary>
    public ScalarType? DType { get; init; }
    /// <summary>Shard size of model.safetensors (HF's default "5GB").</summary>
    public long MaxShardBytes { get; init; } = 5_000_000_000;
    /// <summary>Refuse adapters that leave LoRA layers uncovered or carry non-LoRA keys, and HiCI LoRA with no
    /// HiCI weight to merge into.</summary>
    public bool Strict { get; init; }
    /// <summary>A hici_config.json to place beside hici.safetensors (HiCI's shape settings are not in the weights).</summary>
    public string? HiciConfigPath { get; init; }
}

/// <param name="Adapter">how the adapter's attention LoRA loaded</param>
/// <param name="Overridden">base keys replaced from the trainable-params overlay</param>
/// <param name="HiciTensors">tensors written to hici.safetensors</param>
/// <param name="HiciLoraMerged">HiCI projections that received their LoRA delta</param>
/// <param name="Notes">decisions worth printing (vocabulary resize, rope_scaling, dropped HiCI LoRA)</param>
public sealed record MergeReport(
    string OutputDir,
    PeftLoadReport Adapter,
    IReadOnlyList<string> Overridden,
    IReadOnlyList<string> HiciTensors,
    IReadOnlyList<string> HiciLoraMerged,
    IReadOnlyList<string> Notes);
