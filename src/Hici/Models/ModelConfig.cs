namespace Hici.Models;

/// <summary>HF <c>rope_scaling</c>: type is "linear", "dynamic" or "llama3" (null = none).</summary>
public sealed record RopeScaling(
    string Type,
    double Factor,
    int? OriginalMaxPositionEmbeddings = null,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0);

/// <summary>
/// The decoder configuration, as read from a Hugging Face <c>config.json</c> (model_type llama | qwen3).
/// Field meanings follow transformers; <see cref="HeadDim"/> is explicit because Qwen3 has
/// heads × head_dim ≠ hidden_size.
/// </summary>
public sealed record ModelConfig
{
    public required string ModelType { get; init; }          // "llama" | "qwen3"
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumHiddenLayers { get; init; }
    public required int NumAttentionHeads { get; init; }
    public required int NumKeyValueHeads { get; init; }
    public required int HeadDim { get; init; }
    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10000.0;
    public RopeScaling? RopeScaling { get; init; }
    public int MaxPositionEmbeddings { get; init; } = 2048;
    public bool TieWordEmbeddings { get; init; }
    public bool AttentionBias { get; init; }
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = Array.Empty<int>();
    public int? PadTokenId { get; init; }
    public string TorchDtype { get; init; } = "float32";
    /// <summary>Not from config.json: the attention implementation to run, by registered name, with its
    /// options (see <see cref="AttentionRegistry"/>).</summary>
    public AttentionSetting Attention { get; init; } = AttentionSetting.Full;

    /// <summary>Qwen3 normalises q and k over head_dim before RoPE.</summary>
    public bool UsesQkNorm => ModelType == "qwen3";
    public int NumKeyValueGroups => NumAttentionHeads / NumKeyValueHeads;
}
