using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>Softmax attention as in HF Llama / Qwen3: <see cref="Attention"/> itself, no options, no extra keys.</summary>
public sealed class FullAttention : AttentionImplementation
{
    public const string Id = "full";
    public override string Name => Id;
    public override string Summary => "softmax attention over every earlier position (HF Llama / Qwen3)";

    public override IReadOnlyList<Attention> CreateLayers(ModelConfig cfg, Device? device, ScalarType? dtype) =>
        PerLayer(cfg, i => new Attention(cfg, i, device, dtype));
}
