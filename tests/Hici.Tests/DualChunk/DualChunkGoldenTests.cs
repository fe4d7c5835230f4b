using Hici.DualChunk;
using Hici.Models;
using Hici.Tests.Models;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Hici.Tests.DualChunk;

/// <summary>
/// Dual chunk attention against tools/dca_reference.py (a plain-torch re-implementation of ChunkLlama's
/// chunkllama_attn_replace.py / chunkqwen3_attn_replace.py, reference quirks included).
/// </summary>
public class DualChunkGoldenTests(ITestOutputHelper output)
{
    public static TheoryData<string> Cases => new() { "llama", "llama_fp32_merge", "llama_lw3", "qwen3" };
    public static TheoryData<string> Models => new() { "llama-mha-linear", "llama3-gqa-tied", "qwen3-gqa" };

    private static Tensor Prefill(DualChunkCore core, Tensor q, Tensor k, Tensor v) => core.Attend(q, k, v, 0, null, null);

    private static Tensor Decode(DualChunkCore core, Tensor q, Tensor k, Tensor v, int prompt)
    {
        long t = q.shape[2];
        using var cache = new LayerKvCache(1, k.shape[1], t, k.shape[3], q.dtype, q.device);
        core.Attend(q.narrow(2, 0, prompt), k.narrow(2, 0, prompt), v.narrow(2, 0, prompt), 0, cache, null).Dispose();
        var steps = new List<Tensor>();
        for (int i = prompt; i < t; i++)
            steps.Add(core.Attend(q.narrow(2, i, 1), k.narrow(2, i, 1), v.narrow(2, i, 1), i, cache, null));
        return torch.cat(steps, 2);
    }

    /// <summary>Prefill (chunk loop + log-sum-exp merge) and one-token decoding with the sticky mscale, fp32.</summary>
    [Theory, MemberData(nameof(Cases))]
    public void AttentionMatchesReference(string name)
    {
        using var scope = torch.NewDisposeScope();
        using var fx = DualChunkFixtures.Attention();
        Tensor q = fx.Load("q"), k = fx.Load("k"), v = fx.Load("v");
        double prefill = (Prefill(DualChunkFixtures.Core(name), q, k, v) - fx.Load(name)).abs().max().item<float>();
        double decode = (Decode(DualChunkFixtures.Core(name), q, k, v, DualChunkFixtures.PromptOfAttention) - fx.Load(name + ".decode")).abs().max().item<float>();
        output.WriteLine($"{name}: max|Δ| prefill {prefill:E2}, decode {decode:E2}");
        Assert.True(prefill <= 1e-5, $"{name} prefill: {prefill:E3}");
        Assert.True(decode <= 1e-5, $"{name} decode: {decode:E3}");
    }

    /// <summary>
    /// bfloat16 inputs against torch's bf16 run of the same reference. Both round the same intermediates
    /// (rotated q/k, partial outputs, merge products, the decode softmax) to bf16 but accumulate in different
    /// orders, so single roundings differ by one bf16 ulp (2⁻⁸ relative). Bound: 4 ulps of the output scale
    /// (4·2⁻⁸·max|o|), and no worse than 1.5× torch's own bf16 error against the fp32 result.
    /// </summary>
    [Theory, MemberData(nameof(Cases))]
    public void BFloat16AttentionMatchesReference(string name)
    {
        using var scope = torch.NewDisposeScope();
        using var fx = DualChunkFixtures.Attention();
        Tensor q = fx.Load("q", ScalarType.BFloat16), k = fx.Load("k", ScalarType.BFloat16), v = fx.Load("v", ScalarType.BFloat16);
        foreach (var (suffix, ours) in new[] { ("", Prefill(DualChunkFixtures.Core(name), q, k, v)),
                     (".decode", Decode(DualChunkFixtures.Core(name), q, k, v, DualChunkFixtures.PromptOfAttention)) })
        {
            Assert.Equal(ScalarType.BFloat16, ours.dtype);
            var theirs = fx.Load(name + "_bf16" + suffix).to(ScalarType.Float32);
            var exact = fx.Load(name + suffix);
            var o = ours.to(ScalarType.Float32);
            double diff = (o - theirs).abs().max().item<float>();
            double ulp = Math.Pow(2, -8) * exact.abs().max().item<float>();
            double oursErr = (o - exact).abs().max().item<float>(), torchErr = (theirs - exact).abs().max().item<float>();
            output.WriteLine($"{name}{suffix} bf16: max|Δ| {diff:F4} (bound {4 * ulp:F4}); vs fp32: ours {oursErr:F4}, torch {torchErr:F4}");
            Assert.True(diff <= 4 * ulp, $"{name}{suffix}: bf16 max|Δ| {diff:F4} > {4 * ulp:F4}");
            Assert.True(oursErr <= 1.5 * torchErr, $"{name}{suffix}: our bf16 error {oursErr:F4} > 1.5 × torch's {torchErr:F4}");
        }
    }

    /// <summary>The fixtures see the quirks: without bf16 merge weights or without mscale the Llama case moves.</summary>
    [Fact]
    public void LlamaQuirksAreExercised()
    {
        using var scope = torch.NewDisposeScope();
        using var fx = DualChunkFixtures.Attention();
        Tensor q = fx.Load("q"), k = fx.Load("k"), v = fx.Load("v"), expected = fx.Load("llama");
        var cfg = DualChunkFixtures.AttentionConfig("llama");
        foreach (var options in new[] { new DualChunkOptions { PretrainingLength = 16, Bf16MergeWeights = false },
                     new DualChunkOptions { PretrainingLength = 16, Mscale = DualChunkMscale.Off } })
        {
            double diff = (Prefill(new DualChunkCore(cfg, options.Resolve(cfg)), q, k, v) - expected).abs().max().item<float>();
            output.WriteLine($"{options}: max|Δ| {diff:E2}");
            Assert.True(diff > 1e-4, $"the llama fixture does not depend on {options}");
        }
    }

    /// <summary>Whole models (Llama MHA with linear RoPE factor 2 and mscale, Llama-3 GQA with f = 8, Qwen3):
    /// prefill log-probs and cached one-token decoding, fp32, within 1e-4.</summary>
    [Theory, MemberData(nameof(Models))]
    public void ModelLogprobsMatchReference(string model)
    {
        using var scope = torch.NewDisposeScope();
        var (ids, expected, expectedDecode, prompt) = DualChunkFixtures.Expected(model);
        using (var lm = ModelFixtures.Load(model, ScalarType.Float32, DualChunkFixtures.ModelConfig(model)))
        {
            var lp = torch.nn.functional.log_softmax(lm.Forward(ids)[0], -1);
            double diff = (lp - expected).abs().max().item<float>();
            output.WriteLine($"{model} prefill max|Δ logprob| {diff:E2}");
            Assert.True(diff <= 1e-4, $"{model} prefill: {diff:E3}");
        }
        using (var lm = ModelFixtures.Load(model, ScalarType.Float32, DualChunkFixtures.ModelConfig(model)))
        {
            double diff = (DualChunkFixtures.DecodeLogprobs(lm, ids, prompt) - expectedDecode).abs().max().item<float>();
            output.WriteLine($"{model} decode max|Δ logprob| {diff:E2}");
            Assert.True(diff <= 1e-4, $"{model} decode: {diff:E3}");
        }
    }

    /// <summary>
    /// Cached decoding equals recomputation where the reference's own semantics make them equal: merge weights
    /// in fp32 (the reference's decoding branch has one exact softmax, its prefill the rounded merge) and an
    /// mscale that no longer changes — Qwen3 has none; for Llama the sticky mscale is first raised to the full
    /// length by the recomputation itself, run on the same model.
    /// </summary>
    [Theory]
    [InlineData("qwen3-gqa")]
    [InlineData("llama-mha-linear")]
    public void DecodeEqualsRecomputation(string model)
    {
        using var scope = torch.NewDisposeScope();
        var (ids, _, _, prompt) = DualChunkFixtures.Expected(model);
        var cfg = DualChunkFixtures.ModelConfig(model, new DualChunkOptions { PretrainingLength = 24, Bf16MergeWeights = false });
        using var lm = ModelFixtures.Load(model, ScalarType.Float32, cfg);
        long t = ids.shape[0];
        var full = torch.nn.functional.log_softmax(lm.Forward(ids)[0], -1).narrow(0, prompt - 1, t - prompt);
        var decoded = DualChunkFixtures.DecodeLogprobs(lm, ids, prompt);
        double worst = (full - decoded).abs().max().item<float>();
        output.WriteLine($"{model}: max|decode − recomputation| {worst:E2}");
        Assert.True(worst <= 1e-5, $"{model}: decode differs from recomputation by {worst:E3}");
    }
}
