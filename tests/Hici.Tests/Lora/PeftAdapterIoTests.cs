using System.Text.Json.Nodes;
using Hici.IO;
using Hici.Lora;
using Hici.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Lora;

/// <summary>Writing adapters back, and adapters that do not fit: each refused with the file and the problem named.</summary>
public class PeftAdapterIoTests
{
    private const string Q0 = "base_model.model.model.layers.0.self_attn.q_proj";

    [Theory]
    [InlineData("qwen3-gqa")]
    [InlineData("llama-mha-linear")]
    public void WriteThenReadGivesTheSameAdapter(string name)
    {
        using var tmp = new TempDir();
        using var original = PeftAdapter.Open(LoraFixtures.Adapter(name));
        using var lm = LoraFixtures.WithAdapter(name);
        var storedType = original.Weights.DType(original.Weights.Keys.First());
        PeftAdapter.Save(lm, tmp.Path, original.Config, storedType);

        using var back = PeftAdapter.Open(tmp.Path);
        Assert.Equal(original.Config.Lora.R, back.Config.Lora.R);
        Assert.Equal(original.Config.Lora.Alpha, back.Config.Lora.Alpha);
        Assert.Equal(original.Config.Lora.Dropout, back.Config.Lora.Dropout);
        Assert.Equal(original.Config.Lora.TargetRegex, back.Config.Lora.TargetRegex);
        Assert.Equal(original.Config.Lora.TargetModules, back.Config.Lora.TargetModules);
        Assert.Equal(original.Config.BaseModelNameOrPath, back.Config.BaseModelNameOrPath);
        Assert.Equal(original.Weights.Keys.OrderBy(k => k), back.Weights.Keys.OrderBy(k => k));
        foreach (var k in original.Weights.Keys)
        {
            using var a = original.Weights.Load(k);
            using var b = back.Weights.Load(k);
            Assert.Equal(a.dtype, b.dtype);
            Assert.True(a.eq(b).all().item<bool>(), k);
        }
        // what PEFT 0.5 writes, so PEFT and the reference scripts read it
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.Path, PeftAdapterConfig.FileName)))!.AsObject();
        Assert.Equal("LORA", (string?)json["peft_type"]);
        Assert.Equal("none", (string?)json["bias"]);
        Assert.Equal("CAUSAL_LM", (string?)json["task_type"]);
        Assert.Equal(json.Select(p => p.Key).OrderBy(k => k, StringComparer.Ordinal), json.Select(p => p.Key));
        Assert.Empty(Directory.GetFiles(tmp.Path, "*.tmp-*"));
    }

    [Fact]
    public void SavedFloat32AdapterReproducesTheModel()
    {
        using var tmp = new TempDir();
        using var scope = torch.NewDisposeScope();
        using (var lm = LoraFixtures.WithAdapter("qwen3-gqa"))
            PeftAdapter.Save(lm, tmp.Path, PeftAdapterConfig.Read(LoraFixtures.Adapter("qwen3-gqa")));
        using var again = LoraFixtures.WithAdapter("qwen3-gqa", adapterDir: tmp.Path);
        var ids = LoraFixtures.Expected("qwen3-gqa", "input_ids");
        Assert.True(LoraFixtures.MaxLogprobDiff(again, ids, LoraFixtures.Expected("qwen3-gqa", "logprobs_fp32")) <= 1e-4);
    }

    [Fact]
    public void SaveRefusesAConfigThatDisagreesWithTheLayers()
    {
        using var tmp = new TempDir();
        using var lm = LoraFixtures.WithAdapter("qwen3-gqa");
        var cfg = PeftAdapterConfig.Read(LoraFixtures.Adapter("qwen3-gqa"));
        var e = Assert.Throws<HiciException>(() => PeftAdapter.Save(lm, tmp.Path, cfg with { Lora = cfg.Lora with { R = 4 } }));
        Assert.Contains("has r = 8", e.Message);
        Assert.Empty(Directory.GetFiles(tmp.Path));
    }

    // ---------------------------------------------------------------- adapter_config.json

    [Theory]
    [InlineData("\"bias\": \"all\"", "bias 'all' is not supported")]
    [InlineData("\"modules_to_save\": [\"lm_head\"]", "modules_to_save [\"lm_head\"] is not supported")]
    [InlineData("\"r\": 0", "r must be a positive integer")]
    [InlineData("\"r\": null", "r is missing")]
    [InlineData("\"target_modules\": null", "target_modules is missing")]
    [InlineData("\"target_modules\": []", "target_modules is empty")]
    [InlineData("\"target_modules\": [\"q_proj\", 3]", "target_modules must hold module names")]
    [InlineData("\"target_modules\": \"(q_proj\"", "target_modules regex '(q_proj' is not valid")]
    [InlineData("\"lora_dropout\": 1.5", "lora_dropout must be a number in [0, 1)")]
    [InlineData("\"lora_alpha\": -16", "lora_alpha must be positive")]
    [InlineData("\"peft_type\": \"PREFIX_TUNING\"", "peft_type 'PREFIX_TUNING' is not supported")]
    [InlineData("\"task_type\": \"SEQ_CLS\"", "task_type 'SEQ_CLS' is not supported")]
    [InlineData("\"use_dora\": true", "use_dora true is not supported")]
    [InlineData("\"fan_in_fan_out\": true", "fan_in_fan_out true")]
    [InlineData("\"rank_pattern\": {\"q_proj\": 4}", "rank_pattern")]
    [InlineData("\"layers_to_transform\": [0]", "layers_to_transform")]
    public void ConfigProblemsNameTheFileAndField(string replacement, string expected)
    {
        using var tmp = new TempDir();
        var path = tmp.Sub(PeftAdapterConfig.FileName);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(LoraFixtures.Adapter("qwen3-gqa"), PeftAdapterConfig.FileName)))!.AsObject();
        var patch = JsonNode.Parse("{" + replacement + "}")!.AsObject();
        foreach (var (k, v) in patch) json[k] = v?.DeepClone();
        File.WriteAllText(path, json.ToJsonString());
        var e = Assert.Throws<HiciException>(() => PeftAdapterConfig.Read(tmp.Path));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void ConfigThatIsNotJsonOrAbsent()
    {
        using var tmp = new TempDir();
        var e = Assert.Throws<HiciException>(() => PeftAdapter.Open(tmp.Path));
        Assert.Contains("adapter_config.json: no such file", e.Message);
        File.WriteAllText(tmp.Sub(PeftAdapterConfig.FileName), "{ r: 8");
        Assert.Contains("not valid JSON", Assert.Throws<HiciException>(() => PeftAdapter.Open(tmp.Path)).Message);
        File.Copy(Path.Combine(LoraFixtures.Adapter("qwen3-gqa"), PeftAdapterConfig.FileName), tmp.Sub(PeftAdapterConfig.FileName), overwrite: true);
        var noWeights = Assert.Throws<HiciException>(() => PeftAdapter.Open(tmp.Path));
        Assert.Contains("no adapter_model.safetensors or adapter_model.bin", noWeights.Message);
    }

    /// <summary>adapter_model.bin goes through the allow-list unpickler: a pickle that would run code is refused.</summary>
    [Fact]
    public void AHostileAdapterBinIsRefusedByName()
    {
        using var tmp = new TempDir();
        File.Copy(Path.Combine(LoraFixtures.Adapter("qwen3-gqa"), PeftAdapterConfig.FileName), tmp.Sub(PeftAdapterConfig.FileName));
        File.Copy(Path.Combine(ModelFixtures.Root, "tests", "fixtures", "io", "pickle", "hostile", "evil_os_system.bin"), tmp.Sub(PeftAdapter.BinName));
        var e = Assert.Throws<HiciException>(() => PeftAdapter.Open(tmp.Path));
        Assert.Contains(tmp.Sub(PeftAdapter.BinName), e.Message);
        Assert.Contains("refusing global 'posix.system'", e.Message);
    }

    // ---------------------------------------------------------------- adapter tensors

    private static Dictionary<string, Tensor> FixtureTensors()
    {
        using var a = PeftAdapter.Open(LoraFixtures.Adapter("qwen3-gqa"));
        return a.Weights.Keys.ToDictionary(k => k, k => a.Weights.Load(k).DetachFromDisposeScope());
    }

    /// <summary>Loads a doctored copy of the fixture tensors; asserts the error and that the model was not touched.</summary>
    private static string Refused(Action<Dictionary<string, Tensor>> doctor, bool strict = true)
    {
        var t = FixtureTensors();
        doctor(t);
        using var src = new DictionaryWeightSource(t, "doctored/adapter_model.safetensors");
        using var lm = ModelFixtures.Load("qwen3-gqa", ScalarType.Float32);
        LoraApplier.Apply(lm, new LoraConfig());
        var e = Assert.Throws<HiciException>(() => PeftAdapter.Load(lm, src, new LoraConfig(), new PeftLoadOptions(strict)));
        Assert.StartsWith("doctored/adapter_model.safetensors: ", e.Message);
        Assert.All(LoraApplier.Layers(lm), l => Assert.Equal(0f, l.Layer.lora_B.weight!.abs().max().item<float>()));
        return e.Message;
    }

    [Fact]
    public void HalfAPairIsRefused() =>
        Assert.Contains($"'{Q0}.lora_A.weight' has no lora_B partner", Refused(t => t.Remove($"{Q0}.lora_B.weight"), strict: false));

    [Fact]
    public void AModuleTheModelDoesNotHaveIsRefused() =>
        Assert.Contains("the model has no LoRA layer 'model.layers.7.self_attn.q_proj'",
            Refused(t => t["base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight"] = torch.zeros(8, 64), strict: false));

    [Fact]
    public void ShapesContradictingRankOrLayerAreRefused()
    {
        Assert.Contains($"'{Q0}.lora_A.weight' is [64, 8]; r = 8 and the layer (64 → 128) need [8, 64]",
            Refused(t => t[$"{Q0}.lora_A.weight"] = t[$"{Q0}.lora_A.weight"].t().contiguous()));
        Assert.Contains($"'{Q0}.lora_B.weight' is [128, 4]",
            Refused(t => t[$"{Q0}.lora_B.weight"] = torch.zeros(128, 4)));
    }

    [Fact]
    public void UnknownLoraFormsAreRefused()
    {
        Assert.Contains("is not a LoRA Linear key this reader knows",
            Refused(t => t["base_model.model.model.embed_tokens.lora_embedding_A"] = torch.zeros(8, 256), strict: false));
        Assert.Contains("is not a LoRA Linear key this reader knows",
            Refused(t => t[$"{Q0}.lora_A.other.weight"] = torch.zeros(8, 64), strict: false));
    }

    [Fact]
    public void BothNamingsOfOneTensorAreRefused() =>
        Assert.Contains("are the same tensor", Refused(t => t[$"{Q0}.lora_A.default.weight"] = t[$"{Q0}.lora_A.weight"].clone()));

    [Fact]
    public void NonFloatTensorsAreRefused() =>
        Assert.Contains("is Int64, not floating point", Refused(t => t[$"{Q0}.lora_A.weight"] = torch.zeros(8, 64, ScalarType.Int64)));

    [Fact]
    public void StrictRefusesMissingAndUnexpectedNonStrictReportsThem()
    {
        void Doctor(Dictionary<string, Tensor> t)
        {
            foreach (var k in t.Keys.Where(k => k.Contains(".layers.1.")).ToList()) t.Remove(k);
            t["base_model.model.lm_head.weight"] = torch.zeros(256, 64);
        }
        var msg = Refused(Doctor);
        Assert.Contains("missing (left at B = 0): 4", msg);
        Assert.Contains("unexpected (not LoRA weights): 1: base_model.model.lm_head.weight", msg);

        var t = FixtureTensors();
        Doctor(t);
        using var src = new DictionaryWeightSource(t);
        using var lm = ModelFixtures.Load("qwen3-gqa", ScalarType.Float32);
        LoraApplier.Apply(lm, new LoraConfig());
        var report = PeftAdapter.Load(lm, src, new LoraConfig(), new PeftLoadOptions(Strict: false));
        Assert.Equal(4, report.Loaded.Count);
        Assert.Equal(new[] { "model.layers.1.self_attn.k_proj", "model.layers.1.self_attn.o_proj", "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj" }, report.Missing);
        Assert.Equal(new[] { "base_model.model.lm_head.weight" }, report.Unexpected);
    }

    [Fact]
    public void ModelAndAdapterMustAgreeOnRankAndStateBeforeLoading()
    {
        using var adapter = PeftAdapter.Open(LoraFixtures.Adapter("qwen3-gqa"));
        using var lm = ModelFixtures.Load("qwen3-gqa", ScalarType.Float32);
        Assert.Contains("the model has no LoRA layers", Assert.Throws<HiciException>(() => adapter.LoadInto(lm)).Message);
        LoraApplier.Apply(lm, new LoraConfig { R = 4, Alpha = 8 });
        Assert.Contains("has r = 4, scale 2; the adapter config says r = 8, scale 2", Assert.Throws<HiciException>(() => adapter.LoadInto(lm)).Message);

        using var lm2 = ModelFixtures.Load("qwen3-gqa", ScalarType.Float32);
        adapter.ApplyTo(lm2);
        LoraApplier.MergeAll(lm2);
        Assert.Contains("is merged; unmerge before loading", Assert.Throws<HiciException>(() => adapter.LoadInto(lm2)).Message);
    }

    [Fact]
    public void AdapterWhoseRankDisagreesWithItsConfigNamesTheFile()
    {
        using var tmp = new TempDir();
        var dir = LoraFixtures.CopyAdapter(LoraFixtures.Adapter("qwen3-gqa"), tmp.Sub("a"));
        var cfgPath = Path.Combine(dir, PeftAdapterConfig.FileName);
        File.WriteAllText(cfgPath, File.ReadAllText(cfgPath).Replace("\"r\": 8", "\"r\": 4"));
        // Refused on open, before a LoRA layer is sized by the config's r (a forged r was a 550 GB allocation).
        var e = Assert.Throws<HiciException>(() => PeftAdapter.Open(dir).Dispose());
        Assert.Contains(Path.Combine(dir, PeftAdapter.SafeTensorsName), e.Message);
        Assert.Contains("which is not rank r = 4 of adapter_config.json", e.Message);
    }
}
