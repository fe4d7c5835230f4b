using Hici.Hierarchical;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Training;

/// <summary>
/// Forward and backward of one micro-batch: the gradient of loss / divisor accumulates into the trainable
/// tensors' .grad. Plain: one autograd graph over the whole model. With gradient checkpointing (HF's
/// gradient_checkpointing, which the reference's recipe switches on): TorchSharp has no torch.utils.checkpoint
/// and no custom autograd functions, so the trainer runs a layer-wise two-pass backward itself —
/// <list type="number">
/// <item>forward every decoder layer without a graph, keeping only each layer's input [B, L, H] (and the torch
/// generator and HiCI segmenter state it started from);</item>
/// <item>final norm + loss with a graph from the last layer's output, backward → the gradient at that output;</item>
/// <item>from the last layer down: restore the layer's random states (so LoRA dropout draws the same masks and
/// mixed HiCI segments the same ratio), recompute it from its saved input with a graph, backward with the
/// gradient from above; the input's gradient is the next one down; the embedding last.</item>
/// </list>
/// Each parameter belongs to one layer, so its gradient is the same sum of the same terms as in the plain
/// backward (bit-equal in the tests). Afterwards the random states are those the plain forward leaves.
/// Memory: the layer inputs plus one layer's activations instead of every layer's.
/// </summary>
public static class MicroBatchStep
{
    /// <param name="divisor">the loss is divided by it before the backward (gradient accumulation)</param>
    /// <param name="onLoss">called with the loss value before any backward (e.g. to stop on a non-finite loss)</param>
    /// <returns>the (unscaled) loss</returns>
    public static double Run(CausalLM lm, Tensor ids, Tensor labels, long chunkRows, double divisor, bool checkpointing, Action<double>? onLoss = null)
    {
        using var scope = NewDisposeScope();
        if (!checkpointing)
        {
            var res = CausalLoss.Compute(lm, lm.Hidden(ids), labels, chunkRows);
            double l = res.Loss.item<float>();
            onLoss?.Invoke(l);
            (divisor == 1 ? res.Loss : res.Loss / divisor).backward();
            return l;
        }
        return Checkpointed(lm, ids, labels, chunkRows, divisor, onLoss);
    }

    private static double Checkpointed(CausalLM lm, Tensor ids, Tensor labels, long chunkRows, double divisor, Action<double>? onLoss)
    {
        var dm = lm.model;
        var segmenter = HiciImplementation.SegmenterOf(lm);
        int n = dm.layers.Count;
        var inputs = new Tensor[n];
        var rng = new Tensor[n];
        var seg = new SegmenterState?[n];
        if (ids.dtype != ScalarType.Int64) ids = ids.to(ScalarType.Int64);
        var rope = dm.Rope(ids.shape[1], lm.DType);
        Tensor top;
        using (no_grad())
        {
            var h = dm.embed_tokens.call(ids);
            for (int i = 0; i < n; i++)
            {
                rng[i] = get_rng_state();
                seg[i] = segmenter?.GetState();
                inputs[i] = h;
                h = dm.layers[i].call(new DecoderLayerInput(h, rope, null, 0));
            }
            top = h;
        }
        var endRng = get_rng_state();
        var endSeg = segmenter?.GetState();

        var x = top.detach().requires_grad_(true);
        var res = CausalLoss.Compute(lm, dm.norm.call(x), labels, chunkRows);
        double l = res.Loss.item<float>();
        onLoss?.Invoke(l);
        (divisor == 1 ? res.Loss : res.Loss / divisor).backward();
        var g = x.grad ?? throw new InvalidOperationException("gradient checkpointing: the loss does not depend on the last layer");
        try
        {
            for (int i = n - 1; i >= 0; i--)
            {
                using var inner = NewDisposeScope();
                set_rng_state(rng[i]);
                if (seg[i] is { } s) segmenter!.SetState(s);
                var xi = inputs[i].detach().requires_grad_(true);
                var y = dm.layers[i].call(new DecoderLayerInput(xi, rope, null, 0));
                y.backward(new[] { g });
                g = (xi.grad ?? throw new InvalidOperationException($"gradient checkpointing: layer {i}'s output does not depend on its input")).detach().MoveToOuterDisposeScope();
                inputs[i].Dispose();
            }
            if (dm.embed_tokens.weight.requires_grad)
                dm.embed_tokens.call(ids).backward(new[] { g });
        }
        finally
        {
            set_rng_state(endRng);
            if (endSeg is { } s) segmenter!.SetState(s);
        }
        return l;
    }
}
