using Hici.Models;

namespace Hici.Lora;

/// <summary>
/// The linear RoPE factor a merged model needs for a context size, by the rule its training script used
/// (the reference's fine-tune_hici.py → train): original context = max_position_embeddings × (existing linear factor or 1); nothing
/// changes when the context fits; otherwise factor = context / original — exact for Qwen3
/// (fine-tune_hici_qwen3.py; 49152 / 40960 = 1.2), rounded up for Llama (fine-tune_hici.py; 100000 / 4096 → 25).
/// The reference merge scripts differ (Llama Option A writes the unrounded ratio, Option B none); we write what
/// the weights were trained with. Note the scripts *replace* an existing linear factor with the new one rather
/// than multiplying (a base already at factor 8 trained to 4× its scaled context gets factor 4); so do we,
/// because that is the RoPE the adapter was trained under.
/// </summary>
public static class RopeForContext
{
    /// <returns>the new linear factor, or null when the configured RoPE already covers the context</returns>
    public static double? Factor(ModelConfig cfg, int contextSize, string origin)
    {
        if (contextSize <= 0) throw new HiciException($"context size must be positive, got {contextSize}");
        var existing = cfg.RopeScaling;
        if (existing is not null && existing.Type != "linear")
        {
            if (contextSize <= cfg.MaxPositionEmbeddings) return null;
            throw new HiciException($"{origin}: rope_scaling is already '{existing.Type}' (factor {existing.Factor}); " +
                $"replacing it with linear scaling for context {contextSize} would change the model it was trained as");
        }
        double original = cfg.MaxPositionEmbeddings * (existing?.Factor ?? 1.0);
        if (contextSize <= original) return null;
        double ratio = contextSize / original;
        return cfg.ModelType switch
        {
            "qwen3" => ratio,
            "llama" => Math.Ceiling(ratio),
            _ => throw new HiciException($"{origin}: no RoPE rule for model_type '{cfg.ModelType}'"),
        };
    }
}
