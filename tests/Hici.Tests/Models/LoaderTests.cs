using Hici.IO;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Models;

public class LoaderTests
{
    private static DictionaryWeightSource Copy(string name)
    {
        using var src = SafeTensorsWeightSource.Open(ModelFixtures.Dir(name));
        return DictionaryWeightSource.CopyOf(src);
    }

    private static HiciException LoadFails(string name, DictionaryWeightSource src)
    {
        var cfg = ModelFixtures.Config(name);
        using var lm = CausalLM.Create(cfg, ScalarType.Float32);
        var e = Assert.Throws<HiciException>(() => lm.LoadWeights(src));
        Assert.False(lm.IsMaterialized);   // all-or-nothing: a failed load assigns nothing
        return e;
    }

    [Fact]
    public void MissingKeyIsNamed()
    {
        using var src = Copy("llama-mha-linear");
        src.Tensors.Remove("model.layers.1.mlp.up_proj.weight", out var t); t!.Dispose();
        var e = LoadFails("llama-mha-linear", src);
        Assert.Contains("missing 1 key [model.layers.1.mlp.up_proj.weight]", e.Message);
        Assert.Contains(ModelFixtures.Dir("llama-mha-linear"), e.Message);
    }

    [Fact]
    public void UnexpectedKeyIsNamed()
    {
        using var src = Copy("qwen3-gqa");
        src.Tensors["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(16);  // old HF buffer: ignored
        src.Tensors["model.layers.2.mlp.up_proj.weight"] = torch.ones(96, 64);         // a third layer: unexpected
        var e = LoadFails("qwen3-gqa", src);
        Assert.Contains("unexpected 1 key [model.layers.2.mlp.up_proj.weight]", e.Message);
        Assert.DoesNotContain("inv_freq", e.Message);
    }

    [Fact]
    public void WrongShapeIsNamedWithBothShapes()
    {
        using var src = Copy("llama3-gqa-tied");
        src.Tensors["model.norm.weight"].Dispose();
        src.Tensors["model.norm.weight"] = torch.ones(32);
        var e = LoadFails("llama3-gqa-tied", src);
        Assert.Contains("wrong shape: model.norm.weight is [32], the config needs [64]", e.Message);
    }

    [Fact]
    public void AllProblemsAreReportedTogether()
    {
        using var src = Copy("llama-mha-linear");
        src.Tensors.Remove("lm_head.weight", out var t); t!.Dispose();
        src.Tensors["extra.weight"] = torch.ones(2);
        var e = LoadFails("llama-mha-linear", src);
        Assert.Contains("missing 1 key [lm_head.weight]", e.Message);
        Assert.Contains("unexpected 1 key [extra.weight]", e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Fact]
    public void TiedModelIgnoresAStoredLmHeadCopy()
    {
        using var src = Copy("qwen3-gqa");
        src.Tensors["lm_head.weight"] = src.Tensors["model.embed_tokens.weight"].clone();
        using var lm = CausalLM.Create(ModelFixtures.Config("qwen3-gqa"), ScalarType.Float32);
        var report = WeightLoader.Load(lm, src);
        Assert.Contains("lm_head.weight", report.Ignored);
        Assert.True(lm.IsMaterialized);
    }

    [Fact]
    public void UntiedModelNeedsLmHead()
    {
        var cfg = ModelFixtures.Config("llama-mha-linear");
        using var lm = CausalLM.Create(cfg, ScalarType.Float32);
        Assert.Contains(lm.named_parameters(), p => p.name == "lm_head.weight");
        using var tied = CausalLM.Create(cfg with { TieWordEmbeddings = true }, ScalarType.Float32);
        Assert.DoesNotContain(tied.named_parameters(), p => p.name == "lm_head.weight");
    }

    [Fact]
    public void ParameterNamesAreTheHfKeys()
    {
        using var src = SafeTensorsWeightSource.Open(ModelFixtures.Dir("qwen3-gqa"));
        using var lm = CausalLM.Create(ModelFixtures.Config("qwen3-gqa"), ScalarType.BFloat16);
        var ours = lm.named_parameters().Select(p => p.name).OrderBy(n => n, StringComparer.Ordinal);
        Assert.Equal(src.Keys.OrderBy(n => n, StringComparer.Ordinal), ours);
        Assert.All(lm.parameters(), p => Assert.True(p.is_meta));   // construction allocated nothing
    }

    [Fact]
    public void LoadsInRequestedDtype()
    {
        using var lm = ModelFixtures.Load("llama-dynamic", ScalarType.BFloat16);   // file holds float32
        Assert.All(lm.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        Assert.All(lm.parameters(), p => Assert.False(p.requires_grad));
    }
}

public class FromPretrainedTests
{
    [Fact]
    public void LoadsAShardedFolder()
    {
        using var lm = CausalLM.FromPretrained(ModelFixtures.Dir("llama3-gqa-tied"), ScalarType.Float32);
        Assert.True(lm.IsMaterialized);
        Assert.Null(lm.lm_head);
        Assert.Equal(new[] { 2, 3 }, lm.Config.EosTokenIds);
    }

    [Fact]
    public void UnavailableAttentionKindIsAClearError()
    {
        var e = Assert.Throws<HiciException>(() =>
            CausalLM.FromPretrained(ModelFixtures.Dir("qwen3-gqa"), ScalarType.Float32, attention: new AttentionSetting("sparse")));
        Assert.Contains("attention 'sparse' is not available", e.Message);
    }

    [Fact]
    public void MissingFolderIsAClearError()
    {
        var e = Assert.Throws<HiciException>(() => CausalLM.FromPretrained("/nonexistent/model", ScalarType.Float32));
        Assert.Contains("/nonexistent/model", e.Message);
    }
}
