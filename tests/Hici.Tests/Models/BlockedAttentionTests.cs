using Hici.Models;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Hici.Tests.Models;

/// <summary>
/// <see cref="BlockedAttention"/> (prefill attention as per-block GEMMs) against a float64 softmax(QKᵀ/√d)V written
/// out here with an explicit bottom-right causal mask and repeated K/V heads (HF's eager attention), and against
/// the SDPA path it replaces.
/// </summary>
public class BlockedAttentionTests(ITestOutputHelper output)
{
    /// <summary>HF eager attention in float64: scores, masked_fill(-inf) above the bottom-right diagonal, softmax, PV.</summary>
    private static Tensor Reference(Tensor q, Tensor k, Tensor v)
    {
        long heads = q.shape[1], l = q.shape[2], d = q.shape[3], s = k.shape[2], groups = heads / k.shape[1];
        var (q64, k64, v64) = (q.to(ScalarType.Float64), k.to(ScalarType.Float64), v.to(ScalarType.Float64));
        var kr = k64.repeat_interleave(groups, dim: 1);
        var vr = v64.repeat_interleave(groups, dim: 1);
        var scores = q64.matmul(kr.transpose(-1, -2)) / Math.Sqrt(d);
        var allowed = torch.ones(l, s, dtype: ScalarType.Bool).tril(s - l);
        scores = scores.masked_fill(allowed.logical_not(), double.NegativeInfinity);
        return scores.softmax(-1).matmul(vr);
    }

    private static (Tensor Q, Tensor K, Tensor V) Inputs(long b, long heads, long kv, long l, long s, long d, ScalarType dtype, long seed)
    {
        using var gen = new Generator(); gen.manual_seed(seed);
        return (torch.randn(new[] { b, heads, l, d }, generator: gen).to(dtype),
                torch.randn(new[] { b, kv, s, d }, generator: gen).to(dtype),
                torch.randn(new[] { b, kv, s, d }, generator: gen).to(dtype));
    }

    // (batch, heads, kv heads, queries, keys, head_dim, block rows): GQA and MHA, prefill (L = S) and a chunk
    // after cached keys (L < S), lengths that are and are not multiples of the block, a single block.
    public static TheoryData<long, long, long, long, long, long, long> Shapes => new()
    {
        { 1, 8, 4, 300, 300, 64, 128 },
        { 2, 4, 4, 256, 256, 32, 64 },
        { 1, 6, 2, 97, 160, 16, 32 },
        { 2, 4, 1, 50, 50, 8, 128 },
    };

    [Theory, MemberData(nameof(Shapes))]
    public void Fp32EqualsFloat64ReferenceAndSdpa(long b, long heads, long kv, long l, long s, long d, long rows)
    {
        using var scope = torch.NewDisposeScope();
        var (q, k, v) = Inputs(b, heads, kv, l, s, d, ScalarType.Float32, seed: l * 31 + s);
        var blocked = BlockedAttention.Causal(q, k, v, rows);
        Assert.Equal(new[] { b, heads, l, d }, blocked.shape);
        double vsRef = (blocked.to(ScalarType.Float64) - Reference(q, k, v)).abs().max().item<double>();
        double vsSdpa = (blocked - Attention.SdpaCausalAttention(q, k, v)).abs().max().item<float>();
        output.WriteLine($"fp32 [{b},{heads}/{kv},{l}x{s},{d}] rows {rows}: vs float64 {vsRef:E2}, vs SDPA {vsSdpa:E2}");
        Assert.True(vsRef <= 1e-5, $"blocked fp32 differs from the float64 reference by {vsRef:E3}");
        Assert.True(vsSdpa <= 1e-5, $"blocked fp32 differs from the SDPA path by {vsSdpa:E3}");
    }

    /// <summary>
    /// bf16: the scores and probabilities are rounded to bf16 (HF eager's numerics), so the bound is against the
    /// float64 result on the same bf16 inputs: 3e-2 absolute for unit-normal q, k, v (measured ≤ 1.6e-2;
    /// libtorch's flash kernel: ≤ 1e-2), i.e. about 2⁻⁶ of the output scale.
    /// </summary>
    [Theory, MemberData(nameof(Shapes))]
    public void Bf16IsWithinTheDocumentedBound(long b, long heads, long kv, long l, long s, long d, long rows)
    {
        using var scope = torch.NewDisposeScope();
        var (q, k, v) = Inputs(b, heads, kv, l, s, d, ScalarType.BFloat16, seed: l * 17 + s);
        var blocked = BlockedAttention.Causal(q, k, v, rows);
        Assert.Equal(ScalarType.BFloat16, blocked.dtype);
        double err = (blocked.to(ScalarType.Float64) - Reference(q, k, v)).abs().max().item<double>();
        output.WriteLine($"bf16 [{b},{heads}/{kv},{l}x{s},{d}] rows {rows}: vs float64 {err:E2}");
        Assert.True(err <= 3e-2, $"blocked bf16 differs from the float64 reference by {err:E3}");
    }

    /// <summary>With the blocked kernel forced, a whole model forward (long enough to dispatch to it) matches SDPA's.</summary>
    [Fact]
    public void ModelForwardWithBlockedKernelEqualsSdpa()
    {
        using var scope = torch.NewDisposeScope();
        var cfg = new ModelConfig
        {
            ModelType = "qwen3", VocabSize = 64, HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = 2,
            NumAttentionHeads = 4, NumKeyValueHeads = 2, HeadDim = 8, RmsNormEps = 1e-6, RopeTheta = 10000, MaxPositionEmbeddings = 512,
        };
        using var weights = RandomWeights.For(cfg, seed: 5, std: 0.2);
        using var lm = CausalLM.Load(cfg, weights, ScalarType.Float32);
        using var gen = new Generator(); gen.manual_seed(9);
        var ids = torch.randint(0, 64, new long[] { 1, BlockedAttention.MinQueries + 37 }, generator: gen);
        var before = BlockedAttention.Kernel;
        try
        {
            BlockedAttention.Kernel = PrefillKernel.Sdpa;
            var sdpa = lm.Forward(ids);
            BlockedAttention.Kernel = PrefillKernel.Blocked;
            Assert.True(BlockedAttention.Preferred(ids.shape[1], ScalarType.Float32));
            var blocked = lm.Forward(ids);
            double diff = (blocked - sdpa).abs().max().item<float>();
            output.WriteLine($"logits, blocked vs SDPA prefill: max |Δ| = {diff:E2}");
            Assert.True(diff <= 1e-4, $"blocked prefill moves the logits by {diff:E3}");
        }
        finally { BlockedAttention.Kernel = before; }
    }
}
