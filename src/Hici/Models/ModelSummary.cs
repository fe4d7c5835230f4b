using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>Parameter counts and memory estimates of a model, from its shapes alone (works on a meta-built model).</summary>
public sealed record ModelSummary(
    long Embedding, long PerLayer, long Layers, long FinalNorm, long LmHead, long Total,
    long WeightBytes, long KvCacheBytesPerToken, long KvCacheBytesAtMaxPositions)
{
    public static ModelSummary Of(CausalLM lm)
    {
        var cfg = lm.Config;
        long Sum(Func<string, bool> pick) => lm.named_parameters().Where(p => pick(p.name)).Sum(p => p.parameter.numel());
        long embedding = Sum(n => n.StartsWith("model.embed_tokens.", StringComparison.Ordinal));
        long perLayer = Sum(n => n.StartsWith("model.layers.0.", StringComparison.Ordinal));
        long layers = Sum(n => n.StartsWith("model.layers.", StringComparison.Ordinal));
        long norm = Sum(n => n.StartsWith("model.norm.", StringComparison.Ordinal));
        long head = Sum(n => n.StartsWith("lm_head.", StringComparison.Ordinal));
        long total = lm.parameters().Sum(p => p.numel());
        int es = KvCache.ElementSize(lm.DType);
        return new ModelSummary(embedding, perLayer, layers, norm, head, total,
            total * es,
            KvCache.Bytes(cfg, 1, 1, lm.DType),
            KvCache.Bytes(cfg, 1, cfg.MaxPositionEmbeddings, lm.DType));
    }
}
