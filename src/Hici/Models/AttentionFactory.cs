using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>
/// Picks the attention module for <see cref="ModelConfig.Attention"/>. Every kind must be an
/// <see cref="Attention"/> (same q/k/v/o weights and keys); extra submodules such as HiCI's
/// <c>local_constructor</c> / <c>global_integrator</c> are fields of the subclass, so their keys read
/// <c>model.layers.N.self_attn.local_constructor.*</c>.
/// </summary>
public static class AttentionFactory
{
    public static Attention Create(ModelConfig cfg, int layerIndex, Device? device, ScalarType? dtype) => cfg.Attention switch
    {
        // With a HiCI config, full attention still holds (and loads) the HiCI modules, unused.
        AttentionKind.Full when cfg.Hici is not null => new global::Hici.Hierarchical.HiciAttention(cfg, layerIndex, runHici: false, device, dtype),
        AttentionKind.Full => new Attention(cfg, layerIndex, device, dtype),
        AttentionKind.Hici => new global::Hici.Hierarchical.HiciAttention(cfg, layerIndex, runHici: true, device, dtype),
        AttentionKind.Chunk => new global::Hici.DualChunk.DualChunkAttention(cfg, layerIndex, device, dtype),
        _ => throw new HiciException($"attention '{cfg.Attention.ToString().ToLowerInvariant()}' is not available in this build"),
    };
}
