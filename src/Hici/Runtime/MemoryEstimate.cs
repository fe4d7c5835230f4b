using Hici.Hierarchical;
using Hici.Models;
using static TorchSharp.torch;

namespace Hici.Runtime;

/// <summary>
/// Peak memory of a forward, estimated from the config, the length and the attention implementation before
/// anything is allocated, in parts a user can act on. Long inputs used to fail deep inside libtorch (a 250 GB
/// allocation reported as an internal fault, or a process growing until the kernel killed it); a forward that
/// cannot fit is now refused up front with these numbers. The estimate is of the dominant tensors (weights, KV
/// cache, one layer's activations, attention scores where they are materialised, logits), not a bound: it
/// aims within about 2× and errs high on attention. Training/eval reuse it with their own shapes.
/// </summary>
public sealed record MemoryEstimate(string What, double Weights, double KvCache, double Activations, double AttentionScores, double Logits)
{
    public double Total => Weights + KvCache + Activations + AttentionScores + Logits;

    /// <summary>Memory this process may use: physical memory, or the container's / GC heap hard limit when set.</summary>
    public static long Available => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    public bool Fits(long available) => Total <= available;

    public string Describe() =>
        $"{What} needs about {GiB(Total)} (weights {GiB(Weights)}, KV cache {GiB(KvCache)}, activations {GiB(Activations)}, " +
        $"attention scores {GiB(AttentionScores)}, logits {GiB(Logits)})";

    /// <summary>Refuses, naming the numbers, what cannot fit in <paramref name="available"/> bytes unless <paramref name="force"/>.</summary>
    /// <param name="subject">what the user can change, put first (e.g. "--length 100000000")</param>
    public void EnsureFits(long? available = null, bool force = false, string? subject = null, string advice = "use a shorter input or --dtype bf16")
    {
        long avail = available ?? Available;
        if (force || Fits(avail)) return;
        throw new HiciException($"{(subject is null ? "" : subject + ": ")}{Describe()}, more than the {GiB(avail)} of memory available; {advice}, or pass --force to try anyway");
    }

    public static string GiB(double bytes) => bytes >= 1L << 30 ? $"{bytes / (1L << 30):F1} GiB" : $"{bytes / (1L << 20):F0} MiB";
}

/// <summary>The shapes behind <see cref="MemoryEstimate"/> for the forwards this library runs.</summary>
public static class MemoryEstimator
{
    /// <summary>Parameter bytes of a decoder from its config (embeddings, lm_head unless tied, layers, norms).</summary>
    public static double WeightBytes(ModelConfig c, ScalarType dtype)
    {
        double h = c.HiddenSize, qd = (double)c.NumAttentionHeads * c.HeadDim, kvd = (double)c.NumKeyValueHeads * c.HeadDim;
        double layer = h * qd + 2 * h * kvd + qd * h + 3 * h * c.IntermediateSize + 2 * h
                       + (c.AttentionBias ? qd + 2 * kvd : 0) + (c.UsesQkNorm ? 2.0 * c.HeadDim : 0);
        double embed = (double)c.VocabSize * h * (c.TieWordEmbeddings ? 1 : 2);
        return (embed + c.NumHiddenLayers * layer + h) * ElementSize(dtype);
    }

    /// <summary>
    /// Scoring <paramref name="tokens"/> ids: in <paramref name="chunk"/>-token forwards through a KV cache (full
    /// attention), or — <paramref name="wholeSequence"/>, as HiCI scores — one forward with only the lm_head chunked.
    /// </summary>
    public static MemoryEstimate Score(ModelConfig c, ScalarType dtype, long tokens, int chunk, bool wholeSequence, string what = "scoring")
    {
        double e = ElementSize(dtype);
        double logits = 3.0 * Math.Min(chunk, tokens) * c.VocabSize * 4;        // logits, fp32 copy, log_softmax
        if (wholeSequence)
            return WholeSequence(c, dtype, tokens, what, logits);
        long l = Math.Min(chunk, tokens);
        double cache = KvCache.RequiredBytes(c, 1, tokens, dtype);
        // After the first chunk the queries are bottom-right aligned over the cache: SDPA gets an explicit mask and
        // materialises scores and weights [heads, L, S] (the first chunk, L == S, runs the flash kernel).
        double scores = tokens > l ? 2.0 * c.NumAttentionHeads * l * tokens * e + (double)l * tokens * (c.NumAttentionHeads / c.NumKeyValueHeads) : 0;
        return new MemoryEstimate($"{what} {tokens} tokens in chunks of {l}", WeightBytes(c, dtype), cache, LayerActivations(c, l, e), scores, logits);
    }

    /// <summary>
    /// One forward over all <paramref name="tokens"/> without a cache (HiCI scoring, the causality audit); the
    /// attention implementation comes from the config (HiCI when it is set to run).
    /// </summary>
    public static MemoryEstimate WholeSequence(ModelConfig c, ScalarType dtype, long tokens, string what, double logitsBytes)
    {
        double e = ElementSize(dtype);
        var hici = HiciAttentionOptions.Of(c) is { Run: true } o ? o.Config : null;
        double scores;
        if (hici is null)
            scores = (double)c.NumAttentionHeads * tokens * 4;                   // flash kernel: only its log-sum-exp
        else
        {
            // Each segment's queries attend over the segment plus the HiCI memory, with an explicit mask: the scores
            // [segments, heads, S, S + M + K] are materialised (fp32 softmax), twice (scores, weights).
            long s = SegmentSize(hici, tokens);
            long segments = (tokens + s - 1) / s;
            double keys = s + hici.LocalSlots + hici.GlobalSlots;
            scores = 2.0 * segments * c.NumAttentionHeads * s * keys * 4 + segments * s * keys;
        }
        double hidden = (double)tokens * c.HiddenSize * e;                      // kept for the chunked lm_head
        return new MemoryEstimate($"{what} {tokens} tokens in one forward{(hici is null ? "" : " (HiCI)")}", WeightBytes(c, dtype), 0,
            LayerActivations(c, tokens, e) + hidden, scores, logitsBytes);
    }

    /// <summary>Generation: the preallocated cache for prompt + new tokens and a prefill over the prompt.</summary>
    public static MemoryEstimate Generate(ModelConfig c, ScalarType dtype, long promptTokens, long maxNewTokens)
    {
        double e = ElementSize(dtype);
        double cache = KvCache.RequiredBytes(c, 1, promptTokens + maxNewTokens, dtype);
        return new MemoryEstimate($"generating up to {maxNewTokens} tokens after a {promptTokens}-token prompt", WeightBytes(c, dtype), cache,
            LayerActivations(c, promptTokens, e), (double)c.NumAttentionHeads * promptTokens * 4, 3.0 * c.VocabSize * 4);
    }

    /// <summary>
    /// The live tensors of one decoder layer over <paramref name="t"/> positions: residual stream and norm, Q/K/V
    /// and K/V repeated to all heads, the attention output and o_proj, and the MLP's gate, up and product.
    /// </summary>
    static double LayerActivations(ModelConfig c, long t, double e)
    {
        double perToken = 3.0 * c.HiddenSize + (c.NumAttentionHeads + 2.0 * c.NumKeyValueHeads) * c.HeadDim
                          + 3.0 * c.NumAttentionHeads * c.HeadDim + 3.0 * c.IntermediateSize;
        return perToken * t * e;
    }

    static long SegmentSize(HiciConfig h, long tokens)
    {
        int t = (int)Math.Min(tokens, int.MaxValue);
        var seg = new HiciSegmenter(h);
        // The training rule's divisibility error belongs to the forward, not the estimate: use the ratio/size as is.
        long s = h.Forward == HiciForwardKind.Inference ? seg.InferenceSegmentSize(t)
            : h.SegmentSize is { } f ? Math.Min(f, t) : (long)(t * h.SegmentRatio);
        return Math.Max(1, s);
    }

    static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Int16 => 2,
        _ => 1,
    };
}
