using Hici.Lora;
using Hici.Models;
using Hici.Tests.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Tests.Lora;

public class LoraLinearTests
{
    /// <summary>Fills every B with noise so LoRA changes the output (PEFT's init leaves B = 0).</summary>
    internal static void RandomizeB(nn.Module root, long seed = 7)
    {
        var g = new Generator((ulong)seed);
        using var noGrad = torch.no_grad();
        foreach (var (_, l) in LoraApplier.Layers(root))
            l.lora_B.weight!.copy_(torch.randn(l.lora_B.weight.shape, generator: g) * 0.05);
    }

    [Fact]
    public void KeysFollowPeft05AndOnlyLoraTrains()
    {
        using var lm = ModelFixtures.Load("llama-mha-linear", ScalarType.Float32);
        var wrapped = LoraApplier.Apply(lm, new LoraConfig());
        Assert.Equal(8, wrapped.Count);   // 2 layers × q/k/v/o
        var p = lm.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        const string q = "model.layers.1.self_attn.q_proj";
        Assert.Equal(new long[] { 8, 64 }, p[$"{q}.lora_A.weight"].shape);
        Assert.Equal(new long[] { 64, 8 }, p[$"{q}.lora_B.weight"].shape);
        Assert.True(p.ContainsKey($"{q}.weight") && p.ContainsKey($"{q}.bias"));
        Assert.False(p.ContainsKey("model.layers.0.mlp.up_proj.lora_A.weight"));
        Assert.All(p.Where(x => x.Key.Contains("lora_")), x => Assert.True(x.Value.requires_grad));
        Assert.All(p.Where(x => !x.Key.Contains("lora_")), x => Assert.False(x.Value.requires_grad, x.Key));
    }

    [Fact]
    public void PeftInitLeavesTheModelUnchanged()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var lm = ModelFixtures.Load("qwen3-gqa", ScalarType.Float32);
        var (ids, _, _) = ModelFixtures.Expected("qwen3-gqa");
        var before = lm.Forward(ids);
        LoraApplier.Apply(lm, new LoraConfig());
        var layer = LoraApplier.Layers(lm)[0].Layer;
        Assert.True(layer.lora_A.weight!.abs().max().item<float>() > 0);
        Assert.Equal(0f, layer.lora_B.weight!.abs().max().item<float>());
        // kaiming-uniform with a = √5 is U(-1/√in, 1/√in)
        Assert.True(layer.lora_A.weight.abs().max().item<float>() <= 1 / Math.Sqrt(64) + 1e-6);
        Assert.Equal(0f, (lm.Forward(ids) - before).abs().max().item<float>());
    }

    [Fact]
    public void MergedForwardEqualsUnmergedAndUnmergeRestoresWeights()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var lm = ModelFixtures.Load("llama-mha-linear", ScalarType.Float32);
        var (ids, _, _) = ModelFixtures.Expected("llama-mha-linear");
        var original = lm.named_parameters().Where(x => !x.name.Contains("lora_")).ToDictionary(x => x.name, x => x.parameter.clone());
        var baseLogits = lm.Forward(ids);
        LoraApplier.Apply(lm, new LoraConfig { R = 4, Alpha = 12 });
        RandomizeB(lm);
        var unmerged = lm.Forward(ids);
        Assert.True((unmerged - baseLogits).abs().max().item<float>() > 1e-2, "LoRA has no effect");
        LoraApplier.MergeAll(lm);
        Assert.All(LoraApplier.Layers(lm), l => Assert.True(l.Layer.Merged));
        var merged = lm.Forward(ids);
        Assert.True((merged - unmerged).abs().max().item<float>() <= 1e-4);
        LoraApplier.UnmergeAll(lm);
        foreach (var (name, p) in lm.named_parameters().Where(x => !x.name.Contains("lora_")))
            Assert.True((p - original[name]).abs().max().item<float>() <= 1e-6, name);
        Assert.True((lm.Forward(ids) - unmerged).abs().max().item<float>() <= 1e-5);
    }

    [Fact]
    public void ScaleIsAlphaOverR()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var lin = nn.Linear(6, 5, hasBias: true);
        var x = torch.randn(3, 6);
        var baseY = lin.call(x);
        var lora = new LoraLinear(lin, new LoraConfig { R = 2, Alpha = 7 });
        lora.lora_B.weight!.copy_(torch.randn(5, 2));
        var expected = baseY + 3.5 * x.matmul(lora.lora_A.weight!.t()).matmul(lora.lora_B.weight.t());
        Assert.True((lora.call(x) - expected).abs().max().item<float>() <= 1e-5);
        Assert.Equal(7 / Math.Sqrt(2), new LoraConfig { R = 2, Alpha = 7, UseRsLora = true }.Scale, 12);
    }

    [Fact]
    public void DropoutOnlyWhileTraining()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var lora = new LoraLinear(nn.Linear(16, 16, hasBias: false), new LoraConfig { R = 4, Dropout = 0.5 });
        lora.lora_B.weight!.copy_(torch.randn(16, 4));
        var x = torch.randn(4, 16);
        lora.eval();
        var a = lora.call(x);
        Assert.Equal(0f, (lora.call(x) - a).abs().max().item<float>());
        lora.train();
        Assert.True((lora.call(x) - a).abs().max().item<float>() > 0);
    }

    [Fact]
    public void BFloat16BaseKeepsFloat32LoraAndOutputDtype()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var lm = ModelFixtures.Load("qwen3-gqa", ScalarType.BFloat16);
        LoraApplier.Apply(lm, new LoraConfig());
        var l = LoraApplier.Layers(lm)[0].Layer;
        Assert.Equal(ScalarType.Float32, l.lora_A.weight!.dtype);
        Assert.Equal(ScalarType.BFloat16, l.weight.dtype);
        var (ids, _, _) = ModelFixtures.Expected("qwen3-gqa");
        Assert.Equal(ScalarType.BFloat16, lm.Forward(ids).dtype);
    }

    [Fact]
    public void AppliesToAMetaModelBeforeLoading()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var reference = ModelFixtures.Load("qwen3-gqa", ScalarType.Float32);
        using var lm = CausalLM.Create(ModelFixtures.Config("qwen3-gqa"), ScalarType.Float32);
        LoraApplier.Apply(lm, new LoraConfig());
        var l = LoraApplier.Layers(lm)[0].Layer;
        Assert.True(l.weight.is_meta);
        Assert.False(l.lora_A.weight!.is_meta);
        Assert.Throws<InvalidOperationException>(() => l.Merge());
        using (var src = Hici.IO.SafeTensorsWeightSource.Open(ModelFixtures.Dir("qwen3-gqa"))) lm.LoadWeights(src);
        Assert.True(lm.IsMaterialized);
        Assert.False(l.weight.requires_grad);
        var (ids, _, _) = ModelFixtures.Expected("qwen3-gqa");
        Assert.Equal(0f, (lm.Forward(ids) - reference.Forward(ids)).abs().max().item<float>());
    }

    [Fact]
    public void KeepsTheModelsTrainingMode()
    {
        using var lm = ModelFixtures.Load("qwen3-gqa", ScalarType.Float32);
        lm.eval();
        LoraApplier.Apply(lm, new LoraConfig());
        Assert.All(LoraApplier.Layers(lm), l => Assert.False(l.Layer.training));
    }

    [Fact]
    public void TargetsByRegexAndRefusals()
    {
        using var lm = ModelFixtures.Load("qwen3-gqa", ScalarType.Float32);
        var paths = LoraApplier.Apply(lm, new LoraConfig { TargetRegex = @"model\.layers\.1\.self_attn\.(q|v)_proj" });
        Assert.Equal(new[] { "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj" }, paths.OrderBy(p => p));
        var again = Assert.Throws<HiciException>(() => LoraApplier.Apply(lm, new LoraConfig { TargetModules = new[] { "q_proj" } }));
        Assert.Contains("model.layers.1.self_attn.q_proj' already has LoRA", again.Message);
        var none = Assert.Throws<HiciException>(() => LoraApplier.Apply(lm, new LoraConfig { TargetModules = new[] { "query_key_value" } }));
        Assert.Contains("match no module", none.Message);
        var norm = Assert.Throws<HiciException>(() => LoraApplier.Apply(lm, new LoraConfig { TargetModules = new[] { "q_norm" } }));
        Assert.Contains("'model.layers.0.self_attn.q_norm' is a RmsNorm, not a Linear", norm.Message);
        Assert.Throws<HiciException>(() => LoraApplier.Apply(lm, new LoraConfig { R = 0 }));
        Assert.Throws<HiciException>(() => LoraApplier.Apply(lm, new LoraConfig { TargetRegex = "(" }));
    }

    [Fact]
    public void ForwardAndMergeLeaveNoTensorsBehind()
    {
        using var noGrad = torch.no_grad();
        using var lm = ModelFixtures.Load("llama-mha-linear", ScalarType.BFloat16);
        LoraApplier.Apply(lm, new LoraConfig());
        RandomizeB(lm);
        using var ids = torch.tensor(new long[] { 1, 5, 9, 13, 2 });
        using (lm.Forward(ids)) { }
        var stats = DisposeScopeManager.Statistics;
        long before = stats.ThreadTotalLiveCount;
        for (int i = 0; i < 3; i++)
        {
            using (lm.Forward(ids)) { }
            LoraApplier.MergeAll(lm);
            using (lm.Forward(ids)) { }
            LoraApplier.UnmergeAll(lm);
        }
        Assert.Equal(before, stats.ThreadTotalLiveCount);
    }
}
