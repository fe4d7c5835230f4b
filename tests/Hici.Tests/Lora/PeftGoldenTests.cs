using Hici.IO;
using Hici.Lora;
using Hici.Tests.Models;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Hici.Tests.Lora;

/// <summary>Base + PEFT adapter against log-probs computed in python with W + (α/r)·B·A.</summary>
public class PeftGoldenTests(ITestOutputHelper output)
{
    public static TheoryData<string> Names => new(LoraFixtures.All);

    [Theory, MemberData(nameof(Names))]
    public void UnmergedAndMergedMatchTheReference(string name)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var lm = LoraFixtures.WithAdapter(name);
        var ids = LoraFixtures.Expected(name, "input_ids");
        var expected = LoraFixtures.Expected(name, "logprobs_fp32");
        double unmerged = LoraFixtures.MaxLogprobDiff(lm, ids, expected);
        LoraApplier.MergeAll(lm);
        double merged = LoraFixtures.MaxLogprobDiff(lm, ids, expected);
        output.WriteLine($"{name}: max|Δ logprob| unmerged {unmerged:E2}, merged {merged:E2}");
        Assert.True(unmerged <= 1e-4, $"unmerged {unmerged:E3}");
        Assert.True(merged <= 1e-4, $"merged {merged:E3}");

        // and the adapter matters: the base model is far from the expected values
        using var baseLm = ModelFixtures.Load(name, ScalarType.Float32);
        Assert.True(LoraFixtures.MaxLogprobDiff(baseLm, ids, expected) > 0.1);
    }

    [Theory, MemberData(nameof(Names))]
    public void MergeThenUnmergeRestoresTheBaseWeights(string name)
    {
        using var scope = torch.NewDisposeScope();
        using var baseLm = ModelFixtures.Load(name, ScalarType.Float32);
        using var lm = LoraFixtures.WithAdapter(name);
        LoraApplier.MergeAll(lm);
        LoraApplier.UnmergeAll(lm);
        var reference = baseLm.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        double worst = 0;
        foreach (var (path, p) in lm.named_parameters().Where(p => !p.name.Contains(".lora_")))
            worst = Math.Max(worst, (p - reference[path]).abs().max().item<float>());
        output.WriteLine($"{name}: max|W - W₀| after merge+unmerge {worst:E2}");
        Assert.True(worst <= 1e-6, $"{worst:E3}");
    }

    [Fact]
    public void SafeTensorsAndBinHoldTheSameTensors()
    {
        var dir = LoraFixtures.Adapter("qwen3-gqa");
        using var st = PeftAdapter.Open(dir);
        using var bin = PeftAdapter.Open(dir, Path.Combine(dir, PeftAdapter.BinName));
        Assert.IsType<SafeTensorsWeightSource>(st.Weights);
        Assert.IsType<TorchPickleWeightSource>(bin.Weights);
        Assert.Equal(st.Weights.Keys.OrderBy(k => k), bin.Weights.Keys.OrderBy(k => k));
        foreach (var k in st.Weights.Keys)
        {
            using var a = st.Weights.Load(k);
            using var b = bin.Weights.Load(k);
            Assert.Equal(ScalarType.BFloat16, a.dtype);
            Assert.Equal(a.dtype, b.dtype);
            Assert.True(a.eq(b).all().item<bool>(), k);
        }
    }

    [Fact]
    public void BinOnlyFolderLoadsToTheSameModel()
    {
        using var tmp = new TempDir();
        var dir = LoraFixtures.CopyAdapter(LoraFixtures.Adapter("qwen3-gqa"), tmp.Sub("a"));
        File.Delete(Path.Combine(dir, PeftAdapter.SafeTensorsName));
        using var scope = torch.NewDisposeScope();
        using var lm = LoraFixtures.WithAdapter("qwen3-gqa", adapterDir: dir);
        var ids = LoraFixtures.Expected("qwen3-gqa", "input_ids");
        Assert.True(LoraFixtures.MaxLogprobDiff(lm, ids, LoraFixtures.Expected("qwen3-gqa", "logprobs_fp32")) <= 1e-4);
    }

    /// <summary>zero_to_fp32 output: base weights beside LoRA keys that keep the adapter name ("default").</summary>
    [Fact]
    public void ZeroToFp32StateDictLoadsItsLoraNonStrict()
    {
        var file = Path.Combine(LoraFixtures.Dir("qwen3-gqa"), "zero_to_fp32", "pytorch_model.bin");
        using var scope = torch.NewDisposeScope();
        using var adapter = PeftAdapter.Open(LoraFixtures.Adapter("qwen3-gqa"), file);
        using (var strictLm = ModelFixtures.Load("qwen3-gqa", ScalarType.Float32))
        {
            var e = Assert.Throws<HiciException>(() => adapter.ApplyTo(strictLm));
            Assert.Contains("pytorch_model.bin", e.Message);
            Assert.Contains("unexpected (not LoRA weights)", e.Message);
        }
        using var lm = ModelFixtures.Load("qwen3-gqa", ScalarType.Float32);
        lm.eval();
        var report = adapter.ApplyTo(lm, options: new PeftLoadOptions(Strict: false));
        Assert.Equal(8, report.Loaded.Count);
        Assert.Empty(report.Missing);
        Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.weight", report.Unexpected);
        Assert.DoesNotContain(report.Unexpected, k => k.Contains("lora_"));
        var ids = LoraFixtures.Expected("qwen3-gqa", "input_ids");
        Assert.True(LoraFixtures.MaxLogprobDiff(lm, ids, LoraFixtures.Expected("qwen3-gqa", "logprobs_fp32")) <= 1e-4);
    }

    /// <summary>
    /// A published-layout adapter also carries LoRA for the HiCI projections (legacy prefixes here). A model
    /// without HiCI modules cannot use it: strict refuses, non-strict reports it and gives the attention-LoRA result.
    /// </summary>
    [Fact]
    public void HiciLoraOnAModelWithoutHiciIsReportedNotSilentlyDropped()
    {
        var dir = Path.Combine(LoraFixtures.Dir("qwen3-gqa"), "adapter-hici");
        using var scope = torch.NewDisposeScope();
        using (var strictLm = ModelFixtures.Load("qwen3-gqa", ScalarType.Float32))
        {
            using var a = PeftAdapter.Open(dir);
            var e = Assert.Throws<HiciException>(() => a.ApplyTo(strictLm));
            Assert.Contains("ignored (model has no HiCI modules): 32", e.Message);
        }
        using var lm = ModelFixtures.Load("qwen3-gqa", ScalarType.Float32);
        lm.eval();
        using var adapter = PeftAdapter.Open(dir);
        var report = adapter.ApplyTo(lm, options: new PeftLoadOptions(Strict: false));
        Assert.Equal(32, report.Ignored.Count);
        Assert.Contains("base_model.model.model.layers.0.self_attn.global_memory.q_proj.lora_A.weight", report.Ignored);
        Assert.Empty(report.Unexpected);
        foreach (var line in report.Lines()) output.WriteLine(line);
        var ids = LoraFixtures.Expected("qwen3-gqa", "input_ids");
        Assert.True(LoraFixtures.MaxLogprobDiff(lm, ids, LoraFixtures.Expected("qwen3-gqa", "logprobs_fp32")) <= 1e-4);
    }

    [Fact]
    public void LegacyHiciPrefixesReadAsCurrentOnes()
    {
        Assert.Equal(new PeftLoraKey("model.layers.3.self_attn.local_constructor.q_proj", 'A'),
            PeftAdapterKeys.Parse("base_model.model.model.layers.3.self_attn.global_memory.q_proj.lora_A.weight"));
        Assert.Equal(new PeftLoraKey("model.layers.3.self_attn.global_integrator.o_proj", 'B'),
            PeftAdapterKeys.Parse("base_model.model.model.layers.3.self_attn.hierarchical_aggregator.o_proj.lora_B.default.weight"));
        Assert.Null(PeftAdapterKeys.Parse("model.layers.3.self_attn.q_proj.lora_A.weight"));
        Assert.Null(PeftAdapterKeys.Parse("base_model.model.model.layers.3.self_attn.q_proj.lora_A.other.weight"));
    }
}
