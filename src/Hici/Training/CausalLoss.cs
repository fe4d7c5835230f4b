using Hici.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Training;

/// <summary>The mean next-token loss of one batch and how many labels it averaged over.</summary>
public sealed record CausalLossResult(Tensor Loss, long Tokens);

/// <summary>
/// HF *ForCausalLM's loss (labels shifted by one inside, rows whose label is −100 ignored, mean over the
/// rest) computed without ever holding the [tokens, vocab] logits: the rows go through lm_head in chunks,
/// and each chunk's gradient with respect to the hidden states (and to the head weight, when it trains —
/// a tied, trainable embedding) is formed right there from softmax − one-hot, so autograd keeps no logits.
/// Qwen3 at 32K tokens × 151,936 vocabulary would otherwise need 19 GB of fp32 logits (twice, with their
/// gradient). The returned loss carries those gradients through a surrogate term that is linear in the
/// hidden states and the head weight, so scaling it (gradient accumulation) scales them exactly.
/// Softmax and loss are taken in float32 whatever the compute dtype, as transformers upcasts the logits
/// (<c>logits.float()</c>); the head's matmuls run in the compute dtype, as in transformers and its autograd: in bf16
/// the logits are the bf16 product upcast, and the hidden states' (and head's) gradient is the float32 logits'
/// gradient rounded to bf16 times the bf16 head — which is also 4× faster than float32 on a CPU with bf16 GEMMs.
/// </summary>
public static class CausalLoss
{
    public const long IgnoreIndex = -100;

    /// <param name="hidden">final normalised hidden states [B, L, H] (CausalLM.Hidden)</param>
    /// <param name="labels">int64 [B, L]; position t is scored on labels[t + 1]; −100 = not scored</param>
    /// <param name="chunkRows">rows of logits alive at once</param>
    public static CausalLossResult Compute(CausalLM lm, Tensor hidden, Tensor labels, long chunkRows = 2048) =>
        Compute(HeadWeight(lm), hidden, labels, chunkRows);

    /// <param name="head">the [vocab, H] matrix of the logits (lm_head.weight, or the tied embedding)</param>
    public static CausalLossResult Compute(Tensor head, Tensor hidden, Tensor labels, long chunkRows = 2048)
    {
        if (hidden.dim() != 3 || labels.dim() != 2 || labels.shape[0] != hidden.shape[0] || labels.shape[1] != hidden.shape[1])
            throw new HiciException($"loss: hidden [{string.Join(", ", hidden.shape)}] and labels [{string.Join(", ", labels.shape)}] do not match ([B, L, H] and [B, L])");
        if (chunkRows < 1) throw new HiciException($"loss: chunk rows must be positive (got {chunkRows})");
        using var scope = NewDisposeScope();
        long b = hidden.shape[0], l = hidden.shape[1], hdim = hidden.shape[2];
        var h = hidden.narrow(1, 0, l - 1).reshape(-1, hdim);                  // [N, H], N = B·(L−1)
        var y = labels.narrow(1, 1, l - 1).reshape(-1).to(ScalarType.Int64, h.device);
        long n = h.shape[0];
        var valid = y.ne(IgnoreIndex);
        long count = valid.sum().item<long>();
        if (count == 0)
            throw new HiciException("loss: every label of the batch is −100 (nothing to learn from; e.g. an SFT prompt that fills the whole length)");
        long vocab = head.shape[0];
        using (var badLabel = y.lt(0).logical_and(valid).logical_or(y.ge(vocab)).any())
            if (badLabel.item<bool>()) throw new HiciException($"loss: a label is outside the vocabulary 0..{vocab - 1} (and not −100)");

        var gradH = zeros(n, hdim, dtype: ScalarType.Float32, device: h.device);
        Tensor? gradW = head.requires_grad ? zeros(head.shape, dtype: ScalarType.Float32, device: head.device) : null;
        double total = 0;
        using (no_grad())
        {
            var w = head.detach();
            var ct = w.dtype;                                                      // the head's (compute) dtype
            for (long s = 0; s < n; s += chunkRows)
            {
                using var inner = NewDisposeScope();
                long m = Math.Min(chunkRows, n - s);
                var hc = h.detach().narrow(0, s, m).to(ct);
                var yc = y.narrow(0, s, m);
                var vc = valid.narrow(0, s, m);
                var logits = hc.matmul(w.t()).to(ScalarType.Float32);           // [m, V] fp32, this chunk only
                var lse = logits.logsumexp(1, keepdim: true);
                var safeY = yc.clamp_min(0).unsqueeze(1);
                var nll = lse.squeeze(1) - logits.gather(1, safeY).squeeze(1);
                total += nll.masked_fill(vc.logical_not(), 0).to(ScalarType.Float64).sum().item<double>();
                // d(mean NLL)/d logits = (softmax − onehot) / count on scored rows, 0 elsewhere
                var g = logits.sub_(lse).exp_();
                g.scatter_add_(1, safeY, full(m, 1, -1.0f, dtype: ScalarType.Float32, device: g.device));
                g.mul_(vc.to(ScalarType.Float32).unsqueeze(1).div_(count));
                var gc = g.to(ct);                                                 // what autograd hands the head in its dtype
                gradH.narrow(0, s, m).copy_(gc.matmul(w));
                gradW?.add_(gc.t().matmul(hc));
            }
        }
        var value = tensor((float)(total / count), device: h.device);
        Tensor surrogate = h.to(ScalarType.Float32).mul(gradH).sum();
        if (gradW is not null) surrogate = surrogate + head.to(ScalarType.Float32).mul(gradW).sum();
        var loss = surrogate - surrogate.detach() + value;
        return new CausalLossResult(loss.MoveToOuterDisposeScope(), count);
    }

    /// <summary>The [vocab, H] matrix the logits come from: lm_head's, or the tied input embedding.</summary>
    public static Tensor HeadWeight(CausalLM lm) => lm.lm_head switch
    {
        null => lm.model.embed_tokens.weight,
        Linear lin => lin.weight ?? throw new HiciException("lm_head has no weight"),
        var other => throw new HiciException($"loss: lm_head is a {other.GetType().Name}; the chunked loss needs a plain Linear head"),
    };
}
