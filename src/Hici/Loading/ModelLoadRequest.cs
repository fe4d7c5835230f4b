using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Loading;

/// <summary>
/// What to load: a model folder (config.json + safetensors), how to run it (dtype, device, attention
/// implementation and its options), and what to put over it (the reference's trainable_params file, a PEFT
/// LoRA adapter). The same request serves every command and the library.
/// </summary>
public sealed record ModelLoadRequest(string ModelDir)
{
    public ScalarType DType { get; init; } = ScalarType.Float32;
    public Device? Device { get; init; }
    /// <summary>The attention implementation by name with its options; options null = what the folder holds
    /// for it (e.g. hici_config.json), else none.</summary>
    public AttentionSetting Attention { get; init; } = AttentionSetting.Full;
    /// <summary>A reference trainable_params.bin (or .safetensors with its keys) loaded over the base:
    /// embeddings (vocabulary resized to its rows), norms, attention extras such as the HiCI modules.</summary>
    public string? TrainableFile { get; init; }
    /// <summary>A PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors/.bin), applied last,
    /// unmerged, as the reference eval's PeftModel.from_pretrained — on the HiCI projections too.</summary>
    public string? AdapterDir { get; init; }
    /// <summary>Missing / unexpected keys of the trainable file or the adapter are errors.</summary>
    public bool Strict { get; init; }
    /// <summary>Replaces config.json's rope_scaling (evaluations derive it from the training context); null = keep.</summary>
    public RopeScaling? RopeScaling { get; init; }
}

/// <summary>Answers, before any weight is read, what a request will build: for checking inputs early.</summary>
/// <param name="Config">the decoder config the model will have (vocabulary resized, attention options
/// resolved and validated); null for model types that are not Llama/Qwen3 decoders</param>
/// <param name="VocabSize">ids must be below this</param>
public sealed record ModelPlan(ModelConfig? Config, long VocabSize, long? MaxPositionEmbeddings, IReadOnlyList<int> EosTokenIds)
{
    /// <summary>One line on what attention runs for <paramref name="tokens"/> tokens (and a warning when
    /// predictions can see later tokens); throws for lengths the setting cannot run.</summary>
    public required Func<int, (string Text, string? Warning)> DescribeAttention { get; init; }
    /// <summary>Scoring must run the whole sequence in one forward (see AttentionImplementation.ScoresWholeSequence).</summary>
    public bool ScoresWholeSequence { get; init; }
}
