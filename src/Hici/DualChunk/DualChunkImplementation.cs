using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.DualChunk;

/// <summary>
/// Attention "chunk": ChunkLlama's training-free dual chunk attention (<see cref="DualChunkAttention"/>),
/// options <see cref="DualChunkOptions"/> (null = the reference's defaults). No extra weights.
/// </summary>
public sealed class DualChunkImplementation : AttentionImplementation
{
    public const string Id = "chunk";
    public override string Name => Id;
    public override string Summary => "ChunkLlama's dual chunk attention (DCA): training-free, positions folded into chunks of the pretraining length";

    /// <summary>The setting that runs DCA with <paramref name="options"/>.</summary>
    public static AttentionSetting Setting(DualChunkOptions? options = null) => new(Id, options ?? new DualChunkOptions());

    private static DualChunkOptions Options(ModelConfig cfg) => cfg.Attention.Options as DualChunkOptions ?? new DualChunkOptions();

    public override object? ValidateOptions(object? options, ModelConfig cfg)
    {
        var o = options switch
        {
            null => new DualChunkOptions(),
            DualChunkOptions d => d,
            _ => throw new HiciException($"attention 'chunk' takes DualChunkOptions (got {options.GetType().Name})"),
        };
        o.Resolve(cfg);   // throws on bad values
        return o;
    }

    public override IReadOnlyList<Attention> CreateLayers(ModelConfig cfg, Device? device, ScalarType? dtype)
    {
        var settings = Options(cfg).Resolve(cfg);
        return PerLayer(cfg, i => new DualChunkAttention(cfg, i, settings, device, dtype));
    }

    /// <summary>The reference scores a window in one forward: its prefill branch (merge rounding) and one mscale
    /// for every position. Pieces through the cache would take the decoding branch and a growing mscale.</summary>
    public override bool ScoresWholeSequence(ModelConfig cfg) => true;

    public override string Describe(ModelConfig cfg, int tokens, out string? warning)
    {
        warning = null;
        var s = Options(cfg).Resolve(cfg);
        long chunks = (tokens + s.ChunkLen - 1) / s.ChunkLen;
        return $"chunk (dual chunk attention, {(s.IsQwen3 ? "Qwen3" : "Llama")} version: {s}); {tokens} tokens = {chunks} chunk{(chunks == 1 ? "" : "s")}";
    }
}
