using Hici.Models;

namespace Hici.Bench;

/// <summary>The ~58M-parameter Qwen3-shaped model the benchmarks use (hidden 512, 8 layers, GQA 8/4, head_dim 64).</summary>
public static class BenchModel
{
    public static ModelConfig Config(int maxLen) => new()
    {
        ModelType = "qwen3", VocabSize = 32000, HiddenSize = 512, IntermediateSize = 1536,
        NumHiddenLayers = 8, NumAttentionHeads = 8, NumKeyValueHeads = 4, HeadDim = 64,
        RmsNormEps = 1e-6, RopeTheta = 1_000_000, MaxPositionEmbeddings = maxLen, TieWordEmbeddings = false,
    };

    public static long Parameters(ModelConfig c)
    {
        long h = c.HiddenSize, d = c.HeadDim;
        long attn = h * c.NumAttentionHeads * d * 2 + h * c.NumKeyValueHeads * d * 2 + 2 * d;
        long mlp = 3 * h * c.IntermediateSize;
        return (c.TieWordEmbeddings ? 1 : 2) * c.VocabSize * h + c.NumHiddenLayers * (attn + mlp + 2 * h) + h;
    }

    /// <summary>
    /// FLOPs of a prefill of T tokens that returns last-position logits: every weight matmul (2 per MAC)
    /// for T tokens, causal attention (QKᵀ and PV over T(T+1)/2 pairs per head), and one lm_head row.
    /// </summary>
    public static double PrefillFlops(ModelConfig c, long t)
    {
        long h = c.HiddenSize, d = c.HeadDim;
        double perTokenLayer = 2.0 * (h * c.NumAttentionHeads * d * 2 + h * c.NumKeyValueHeads * d * 2 + 3 * h * c.IntermediateSize);
        double attn = 2.0 * 2.0 * c.NumAttentionHeads * d * (t * (t + 1) / 2.0);
        return c.NumHiddenLayers * (perTokenLayer * t + attn) + 2.0 * h * c.VocabSize;
    }

    /// <summary>
    /// Bytes one decode step at context length S must read: every weight matrix and norm (not the embedding
    /// table: one row of it), and the K and V cache of every layer.
    /// </summary>
    public static double DecodeBytes(ModelConfig c, long s, TorchSharp.torch.ScalarType dtype)
    {
        double e = dtype == TorchSharp.torch.ScalarType.BFloat16 ? 2 : 4;
        long weights = Parameters(c) - (long)c.VocabSize * c.HiddenSize + c.HiddenSize;
        double kv = 2.0 * c.NumHiddenLayers * c.NumKeyValueHeads * c.HeadDim * s;
        return (weights + kv) * e;
    }

}
