using Hici.Models;

namespace Hici.DualChunk;

/// <summary>How the Llama version's mscale (0.05·ln(s)+1, s = length / max_position_embeddings) is applied.</summary>
public enum DualChunkMscale
{
    /// <summary>As ChunkLlamaRotaryEmbedding: every cos/sin table (q and k) carries mscale of the longest
    /// kv length this layer has seen (at least max_position_embeddings); it never shrinks, and cached keys keep
    /// the mscale of the call that stored them. The Llama default.</summary>
    Sticky,
    /// <summary>No mscale (chunkqwen3_attn_replace.py; the Qwen3 default).</summary>
    Off,
}

/// <summary>
/// The user's DCA options (null = the reference's default for the model type), named after ChunkLlama's
/// <c>replace_with_chunkllama(pretraining_length, local_window_size)</c>.
/// </summary>
public sealed record DualChunkOptions
{
    /// <summary>L: chunk_size = L·3/4. Default: the config's max_position_embeddings.</summary>
    public int? PretrainingLength { get; init; }
    /// <summary>Default L/8 (Llama, replace_with_chunkllama) or L/16 (Qwen3, replace_with_chunkqwen3).</summary>
    public int? LocalWindow { get; init; }
    /// <summary>Round the prefill merge weights to bfloat16 (merge_attn_outputs of the Llama version).
    /// Default: true for Llama, false for Qwen3.</summary>
    public bool? Bf16MergeWeights { get; init; }
    /// <summary>Default: <see cref="DualChunkMscale.Sticky"/> for Llama, <see cref="DualChunkMscale.Off"/> for Qwen3.</summary>
    public DualChunkMscale? Mscale { get; init; }

    /// <summary>The settings for a model; throws a <see cref="HiciException"/> naming the bad option.</summary>
    public DualChunkSettings Resolve(ModelConfig cfg)
    {
        bool qwen3 = cfg.ModelType == "qwen3";
        int l = PretrainingLength ?? cfg.MaxPositionEmbeddings;
        if (l < 2) throw new HiciException($"--pretraining-length {l}: must be at least 2 (chunk size = L·3/4)");
        if (l > 1 << 24) throw new HiciException($"--pretraining-length {l}: larger than 16777216 (positions must stay exact in float32)");
        int chunkSize = l * 3 / 4;
        int local = LocalWindow ?? (qwen3 ? l / 16 : l / 8);
        if (LocalWindow is < 1) throw new HiciException($"--local-window {LocalWindow}: must be at least 1");
        if (local >= chunkSize)
            throw new HiciException($"--local-window {local}: must be smaller than the chunk size {chunkSize} (= pretraining length {l}·3/4)");
        // chunkllama_attn_replace.py reads rope_scaling['factor'] whatever the rope type; the Qwen3 version ignores it.
        double f = qwen3 ? 1.0 : cfg.RopeScaling?.Factor ?? 1.0;
        return new DualChunkSettings(qwen3, l, chunkSize, local, f, cfg.MaxPositionEmbeddings,
            Bf16MergeWeights ?? !qwen3, Mscale ?? (qwen3 ? DualChunkMscale.Off : DualChunkMscale.Sticky));
    }

    public static DualChunkMscale ParseMscale(string s) => s.ToLowerInvariant() switch
    {
        "sticky" => DualChunkMscale.Sticky,
        "off" => DualChunkMscale.Off,
        _ => throw new HiciException($"--chunk-mscale: '{s}' is not supported (use sticky or off)"),
    };
}

/// <summary>
/// Resolved DCA settings: chunk_size S = L·3/4, the local window, chunk_len c = S − local window (the
/// reference's chunk length: keys sit at p mod c), the position divisor f, and the two quirk switches.
/// </summary>
public sealed record DualChunkSettings(
    bool IsQwen3,
    int PretrainingLength,
    int ChunkSize,
    int LocalWindow,
    double ScalingFactor,
    int MaxPositionEmbeddings,
    bool Bf16MergeWeights,
    DualChunkMscale Mscale)
{
    public int ChunkLen => ChunkSize - LocalWindow;

    /// <summary>get_mscale of chunkllama_attn_replace.py: 1 up to max_position_embeddings, then 0.05·ln(s)+1.</summary>
    public double MscaleAt(long length)
    {
        double s = (double)length / MaxPositionEmbeddings;
        return s <= 1 ? 1.0 : 0.05 * Math.Log(s) + 1.0;
    }

    public override string ToString() =>
        $"pretraining length {PretrainingLength}, chunk size {ChunkSize}, local window {LocalWindow}, chunk length {ChunkLen}, " +
        $"position divisor {ScalingFactor:G}, mscale {Mscale.ToString().ToLowerInvariant()}, merge weights {(Bf16MergeWeights ? "bf16" : "fp32")}";
}
