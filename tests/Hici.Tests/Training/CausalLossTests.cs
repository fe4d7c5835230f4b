using Hici.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Training;

/// <summary>
/// The chunked loss against libtorch's own cross_entropy over the full [tokens, vocab] logits (an independent
/// implementation: log_softmax + nll with ignore_index), value and gradients, for chunk sizes that split rows
/// every which way.
/// </summary>
public class CausalLossTests
{
    private static (Tensor H, Tensor W, Tensor Labels) Inputs(long seed)
    {
        var g = new Generator(); g.manual_seed(seed);
        var h = randn(new long[] { 2, 7, 16 }, generator: g);
        var w = randn(new long[] { 50, 16 }, generator: g) * 0.5;
        var labels = randint(0, 50, new long[] { 2, 7 }, generator: g);
        labels[0, 3] = tensor(-100L); labels[1, 1] = tensor(-100L); labels[1, 6] = tensor(-100L);
        return (h, w, labels);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(1000)]
    public void ValueAndGradientsEqualFullCrossEntropy(long chunk)
    {
        using var scope = NewDisposeScope();
        var (h0, w0, labels) = Inputs(7);
        // reference: full logits through libtorch's cross_entropy
        var hr = h0.clone().requires_grad_(true); var wr = w0.clone().requires_grad_(true);
        var logits = hr.narrow(1, 0, 6).reshape(-1, 16).matmul(wr.t());
        var refLoss = nn.functional.cross_entropy(logits, labels.narrow(1, 1, 6).reshape(-1), ignore_index: -100);
        refLoss.backward();
        // ours
        var h = h0.clone().requires_grad_(true); var w = w0.clone().requires_grad_(true);
        var r = CausalLoss.Compute(w, h, labels, chunk);
        r.Loss.backward();
        Assert.Equal(9, r.Tokens);   // 12 shifted labels, 3 of them −100 (labels[0,3], [1,1], [1,6] all sit after position 0)
        Assert.Equal(refLoss.item<float>(), r.Loss.item<float>(), 5);
        AssertClose(hr.grad!, h.grad!);
        AssertClose(wr.grad!, w.grad!);
    }

    [Fact]
    public void ScalingTheLossScalesTheGradients()
    {
        using var scope = NewDisposeScope();
        var (h0, w0, labels) = Inputs(8);
        var a = h0.clone().requires_grad_(true);
        CausalLoss.Compute(w0, a, labels, 3).Loss.backward();
        var b = h0.clone().requires_grad_(true);
        (CausalLoss.Compute(w0, b, labels, 3).Loss / 4).backward();
        AssertClose(a.grad! / 4, b.grad!);
    }

    [Fact]
    public void FrozenHeadGetsNoGradientAndAllIgnoredIsRefused()
    {
        using var scope = NewDisposeScope();
        var (h0, w0, labels) = Inputs(9);
        var h = h0.clone().requires_grad_(true);
        CausalLoss.Compute(w0, h, labels).Loss.backward();
        Assert.Null(w0.grad);
        Assert.NotNull(h.grad);
        var none = full(new long[] { 2, 7 }, -100L);
        var e = Assert.Throws<HiciException>(() => CausalLoss.Compute(w0, h0, none));
        Assert.Contains("every label", e.Message);
        labels[0, 2] = tensor(50L);
        Assert.Contains("outside the vocabulary", Assert.Throws<HiciException>(() => CausalLoss.Compute(w0, h0, labels)).Message);
    }

    private static void AssertClose(Tensor expected, Tensor actual)
    {
        double scale = expected.abs().max().item<float>();
        double diff = (expected - actual).abs().max().item<float>();
        Assert.True(diff <= 1e-5 * Math.Max(scale, 1e-3), $"max |Δ| {diff} (scale {scale})");
    }
}
