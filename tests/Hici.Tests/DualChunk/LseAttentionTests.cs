using Hici.DualChunk;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.DualChunk;

/// <summary>
/// The two kernels of <see cref="LseAttention"/> (libtorch's flash kernel with its log-sum-exp, and the float32
/// tiles) against an explicit softmax over the full score matrix, fp32.
/// </summary>
public class LseAttentionTests
{
    private static (Tensor O, Tensor Lse) Explicit(Tensor q, Tensor k, Tensor v, bool causal)
    {
        long g = q.shape[1] / k.shape[1], lq = q.shape[2], lk = k.shape[2];
        var kr = k.repeat_interleave(g, dim: 1);
        var vr = v.repeat_interleave(g, dim: 1);
        var s = matmul(q.to(ScalarType.Float64), kr.to(ScalarType.Float64).transpose(-1, -2)) / Math.Sqrt(q.shape[3]);
        if (causal) s = s.masked_fill(ones(lq, lk, ScalarType.Bool).triu(lk - lq + 1), double.NegativeInfinity);
        return (s.softmax(-1).matmul(vr.to(ScalarType.Float64)), s.logsumexp(-1));
    }

    [Theory]
    [InlineData(true, 70, 70)]      // a prefill's intra-chunk part: square, causal
    [InlineData(false, 33, 90)]     // successive / inter-chunk parts: every key visible
    [InlineData(true, 5, 40)]       // decoding: bottom-right causal, only the tiles can do it
    public void BothKernelsEqualAnExplicitSoftmax(bool causal, int lq, int lk)
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(11);
        var q = randn(2, 6, lq, 16);
        var k = randn(2, 3, lk, 16);
        var v = randn(2, 3, lk, 16);
        var (eo, eLse) = Explicit(q, k, v, causal);
        foreach (bool flash in new[] { true, false })
        {
            var (o, lse) = LseAttention.Attend(q, k, v, causal, flash: flash);
            Assert.Equal(ScalarType.Float32, lse.dtype);
            Assert.True((o.to(ScalarType.Float64) - eo).abs().max().item<double>() < 1e-5, $"O, flash={flash}");
            Assert.True((lse.to(ScalarType.Float64) - eLse).abs().max().item<double>() < 1e-5, $"lse, flash={flash}");
        }
    }
}
