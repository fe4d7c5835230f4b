using Hici.Models;
using static TorchSharp.torch;

namespace Hici.Training;

/// <summary>
/// A before-allocation estimate of a training run's memory: weights in the compute dtype, fp32 masters of
/// bf16 trainables, gradients, AdamW's two fp32 moments, the activations autograd keeps (per layer, per token:
/// about 18 hidden-widths, 3 intermediate-widths and the attention inputs/outputs, in the compute dtype, plus
/// fp32 norm statistics) and one chunk of fp32 logits with its softmax. With gradient checkpointing autograd
/// keeps one layer's activations (the one being recomputed) plus every layer's input [tokens, hidden]. An estimate, not a bound: it is there
/// to refuse, with the numbers, what clearly cannot fit.
/// </summary>
public sealed record TrainingMemory(long Weights, long Optimizer, long Activations, long Logits)
{
    public long Total => Weights + Optimizer + Activations + Logits;

    public static TrainingMemory Estimate(ModelConfig cfg, ScalarType dtype, long totalParams, long trainableParams, long trainableNonFp32,
        int batch, int length, long lossChunkRows, bool checkpointing = false)
    {
        long e = dtype == ScalarType.BFloat16 ? 2 : 4;
        long weights = totalParams * e;
        long optimizer = trainableParams * 4 * 3 + trainableNonFp32 * (4 + e);   // m, v, grad (fp32) + masters + bf16 grads
        long tokens = (long)batch * length;
        long perTokenLayer = (18L * cfg.HiddenSize + 3L * cfg.IntermediateSize + 4L * cfg.NumAttentionHeads * cfg.HeadDim) * e + 16;
        long layersKept = checkpointing ? 1 : cfg.NumHiddenLayers;
        long layerInputs = checkpointing ? tokens * cfg.HiddenSize * e * cfg.NumHiddenLayers : 0;
        long activations = tokens * perTokenLayer * layersKept + layerInputs + tokens * cfg.HiddenSize * 4 * 3;
        long logits = Math.Min(lossChunkRows, tokens) * cfg.VocabSize * 4 * 3;
        return new TrainingMemory(weights, optimizer, activations, logits);
    }

    public static string GiB(long b) => $"{b / (double)(1L << 30):0.00} GiB";

    public string Describe() => $"{GiB(Total)} (weights {GiB(Weights)}, optimizer state and gradients {GiB(Optimizer)}, activations {GiB(Activations)}, logits chunk {GiB(Logits)})";

    /// <summary>Throws with the numbers when the estimate exceeds the memory the process can use.</summary>
    public void CheckFits(long available, string what)
    {
        if (Total > available)
            throw new HiciException($"{what}: needs about {Describe()}, but only {GiB(available)} is available; use a shorter --model-max-length, a smaller --batch-size (with more --grad-accum), --gradient-checkpointing or --dtype bf16");
    }
}
