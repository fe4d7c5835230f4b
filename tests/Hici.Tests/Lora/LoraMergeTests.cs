using System.Text.Json.Nodes;
using Hici.IO;
using Hici.Lora;
using Hici.Models;
using Hici.Tests.Models;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Hici.Tests.Lora;

/// <summary>The merged HF folder scores as base + adapter (+ trainable overlay) does.</summary>
public class LoraMergeTests(ITestOutputHelper output)
{
    private static string Trainable => Path.Combine(LoraFixtures.Dir("qwen3-gqa"), "trainable_params.bin");
    private static string HiciAdapter => Path.Combine(LoraFixtures.Dir("qwen3-gqa"), "adapter-hici");

    private static CausalLM LoadFolder(string dir, ScalarType dtype)
    {
        using var src = SafeTensorsWeightSource.Open(dir);
        var lm = CausalLM.Load(HfConfigReader.Read(dir), src, dtype);
        lm.eval();
        return lm;
    }

    private static Tensor Logprobs(CausalLM lm, Tensor ids)
    {
        using var noGrad = torch.no_grad();
        return nn.functional.log_softmax(lm.Forward(ids)[0].to(ScalarType.Float32), -1);
    }

    [Theory]
    [InlineData("qwen3-gqa")]
    [InlineData("llama-mha-linear")]
    public void Float32MergeScoresAsBasePlusAdapter(string name)
    {
        using var tmp = new TempDir();
        var outDir = tmp.Sub("merged");
        var report = LoraMerge.MergeAndSave(ModelFixtures.Dir(name), LoraFixtures.Adapter(name), null, outDir,
            options: new MergeOptions { DType = ScalarType.Float32, Strict = true });
        Assert.Equal(8, report.Adapter.Loaded.Count);
        Assert.Equal(new[] { "config.json", "model.safetensors" }, Directory.GetFiles(outDir).Select(Path.GetFileName).OrderBy(f => f));
        Assert.Empty(Directory.GetDirectories(tmp.Path).Where(d => d.Contains(".tmp-")));

        // Identical to base + adapter merged in memory; against the unmerged forward (x·Wᵀ + s·(x·Aᵀ)·Bᵀ, a
        // different float32 evaluation order) only rounding noise remains (measured ~1e-5).
        using var scope = torch.NewDisposeScope();
        using var merged = LoadFolder(outDir, ScalarType.Float32);
        using var withAdapter = LoraFixtures.WithAdapter(name);
        var ids = LoraFixtures.Expected(name, "input_ids");
        var unmergedLp = Logprobs(withAdapter, ids);
        LoraApplier.MergeAll(withAdapter);
        double vsMerged = (Logprobs(merged, ids) - Logprobs(withAdapter, ids)).abs().max().item<float>();
        double vsUnmerged = (Logprobs(merged, ids) - unmergedLp).abs().max().item<float>();
        double vsPython = LoraFixtures.MaxLogprobDiff(merged, ids, LoraFixtures.Expected(name, "logprobs_fp32"));
        output.WriteLine($"{name}: merged folder vs in-memory merge {vsMerged:E2}, vs unmerged {vsUnmerged:E2}, vs python {vsPython:E2}");
        Assert.Equal(0.0, vsMerged);
        Assert.True(vsUnmerged <= 1e-4, $"{vsUnmerged:E3}");
        Assert.True(vsPython <= 1e-4, $"{vsPython:E3}");
        Assert.Equal("float32", (string?)JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!["torch_dtype"]);
    }

    /// <summary>In the checkpoint's own dtype (bf16) the merged weights are bit-identical to an in-memory merge.</summary>
    [Fact]
    public void BFloat16MergeIsBitIdenticalToMergingInMemory()
    {
        using var tmp = new TempDir();
        var outDir = tmp.Sub("merged");
        LoraMerge.MergeAndSave(ModelFixtures.Dir("qwen3-gqa"), LoraFixtures.Adapter("qwen3-gqa"), null, outDir);
        using var scope = torch.NewDisposeScope();
        using var merged = LoadFolder(outDir, ScalarType.BFloat16);
        using var inMemory = LoraFixtures.WithAdapter("qwen3-gqa", ScalarType.BFloat16);
        LoraApplier.MergeAll(inMemory);
        var mine = inMemory.named_parameters().Where(p => !p.name.Contains(".lora_")).ToDictionary(p => p.name, p => p.parameter);
        foreach (var (path, p) in merged.named_parameters())
        {
            Assert.Equal(ScalarType.BFloat16, p.dtype);
            Assert.True(p.eq(mine[path]).all().item<bool>(), path);
        }
        var ids = LoraFixtures.Expected("qwen3-gqa", "input_ids");
        Assert.Equal(0f, (Logprobs(merged, ids) - Logprobs(inMemory, ids)).abs().max().item<float>());
    }

    /// <summary>
    /// The published layout: adapter with HiCI LoRA (legacy prefixes) + trainable_params.bin with embed/norm/
    /// q_norm/k_norm overrides and HiCI tensors. The model folder scores as python's base + LoRA + overrides;
    /// hici.safetensors holds the HiCI tensors with python's W + (α/r)·B·A in their projections.
    /// </summary>
    [Fact]
    public void TrainableOverlayAndHiciLoraMatchTheReference()
    {
        using var tmp = new TempDir();
        var outDir = tmp.Sub("merged");
        var hiciCfg = tmp.Sub("hici_config.json");
        File.WriteAllText(hiciCfg, "{\"num_local_slots\": 2}");   // validated by the merge, copied as given
        MergeReport report;
        using (var overlay = TorchPickleWeightSource.Open(Trainable))
            report = LoraMerge.MergeAndSave(ModelFixtures.Dir("qwen3-gqa"), HiciAdapter, overlay, outDir,
                options: new MergeOptions { DType = ScalarType.Float32, Strict = true, HiciConfigPath = hiciCfg });
        foreach (var n in report.Notes) output.WriteLine(n);
        Assert.Equal(16, report.HiciLoraMerged.Count);     // 2 layers × (LC q/k/v/o + GI q/k/v/o)
        Assert.Contains("model.layers.1.self_attn.q_norm.weight", report.Overridden);
        Assert.Contains("model.embed_tokens.weight", report.Overridden);
        Assert.Equal("{\"num_local_slots\": 2}", File.ReadAllText(Path.Combine(outDir, LoraMerge.HiciConfigName)));

        using var scope = torch.NewDisposeScope();
        using var merged = LoadFolder(outDir, ScalarType.Float32);
        var ids = LoraFixtures.Expected("qwen3-gqa", "input_ids");
        double vsPython = LoraFixtures.MaxLogprobDiff(merged, ids, LoraFixtures.Expected("qwen3-gqa", "logprobs_trainable_fp32"));
        output.WriteLine($"merged + overlay vs python {vsPython:E2}");
        Assert.True(vsPython <= 1e-4, $"{vsPython:E3}");

        using var hici = SafeTensorsWeightSource.Open(Path.Combine(outDir, LoraMerge.HiciWeightsName));
        using var expected = SafeTensorsWeightSource.Open(Path.Combine(LoraFixtures.Dir("qwen3-gqa"), "expected.safetensors"));
        using var trainable = TorchPickleWeightSource.Open(Trainable);
        Assert.Equal(trainable.Keys.Count(k => k.Contains("local_constructor") || k.Contains("global_integrator")), hici.Keys.Count);
        foreach (var key in hici.Keys)
        {
            using var got = hici.Load(key);
            using var want = expected.Contains("hici_merged." + key) ? expected.Load("hici_merged." + key) : trainable.Load(key);
            Assert.True((got - want).abs().max().item<float>() <= 1e-6, key);
        }
        Assert.True(expected.Keys.Count(k => k.StartsWith("hici_merged.")) == 16);
    }

    /// <summary>The same merge against base + adapter + overlay put together in memory (non-HiCI part).</summary>
    [Fact]
    public void TrainableMergeScoresAsBasePlusAdapterPlusOverlay()
    {
        using var tmp = new TempDir();
        var outDir = tmp.Sub("merged");
        using (var overlay = TorchPickleWeightSource.Open(Trainable))
            LoraMerge.MergeAndSave(ModelFixtures.Dir("qwen3-gqa"), LoraFixtures.Adapter("qwen3-gqa"), overlay, outDir,
                options: new MergeOptions { DType = ScalarType.Float32 });

        using var scope = torch.NewDisposeScope();
        using var baseSrc = SafeTensorsWeightSource.Open(ModelFixtures.Dir("qwen3-gqa"));
        using var combined = DictionaryWeightSource.CopyOf(baseSrc);
        using (var overlay = TorchPickleWeightSource.Open(Trainable))
            foreach (var k in overlay.Keys.Where(combined.Contains)) combined.Tensors[k] = overlay.Load(k).DetachFromDisposeScope();
        using var inMemory = CausalLM.Load(ModelFixtures.Config("qwen3-gqa"), combined, ScalarType.Float32);
        inMemory.eval();
        using (var adapter = PeftAdapter.Open(LoraFixtures.Adapter("qwen3-gqa"))) adapter.ApplyTo(inMemory);
        using var merged = LoadFolder(outDir, ScalarType.Float32);
        var ids = LoraFixtures.Expected("qwen3-gqa", "input_ids");
        var unmergedLp = Logprobs(inMemory, ids);
        LoraApplier.MergeAll(inMemory);
        double vsMerged = (Logprobs(merged, ids) - Logprobs(inMemory, ids)).abs().max().item<float>();
        double vsUnmerged = (Logprobs(merged, ids) - unmergedLp).abs().max().item<float>();
        output.WriteLine($"merged folder vs in-memory base+adapter+overlay: merged {vsMerged:E2}, unmerged {vsUnmerged:E2}");
        Assert.Equal(0.0, vsMerged);
        Assert.True(vsUnmerged <= 1e-4, $"{vsUnmerged:E3}");
    }

    [Fact]
    public void HiciLoraWithoutHiciWeightsIsDroppedWithANoteOrRefusedWhenStrict()
    {
        using var tmp = new TempDir();
        var report = LoraMerge.MergeAndSave(ModelFixtures.Dir("qwen3-gqa"), HiciAdapter, null, tmp.Sub("a"));
        Assert.Contains(report.Notes, n => n.StartsWith("dropped the LoRA of 16 HiCI projections"));
        Assert.False(File.Exists(Path.Combine(tmp.Sub("a"), LoraMerge.HiciWeightsName)));
        var e = Assert.Throws<HiciException>(() =>
            LoraMerge.MergeAndSave(ModelFixtures.Dir("qwen3-gqa"), HiciAdapter, null, tmp.Sub("b"), options: new MergeOptions { Strict = true }));
        Assert.Contains("has no HiCI weight to merge into", e.Message);
        Assert.False(Directory.Exists(tmp.Sub("b")));
        Assert.Single(Directory.GetDirectories(tmp.Path));   // no temporary folder left
    }

    // ---------------------------------------------------------------- config.json: RoPE, dtype, vocabulary

    [Theory]
    [InlineData("qwen3-gqa", 200, 1.5625)]         // max_pos 128, exact ratio
    [InlineData("qwen3-gqa", 128, null)]           // fits
    [InlineData("llama-mha-linear", 300, 3.0)]     // max_pos 64 × existing linear 2 = 128; ceil(300/128)
    [InlineData("llama-mha-linear", 100, null)]
    public void RopeScalingFollowsTheTrainingRule(string name, int context, double? factor)
    {
        using var tmp = new TempDir();
        var outDir = tmp.Sub("m");
        LoraMerge.MergeAndSave(ModelFixtures.Dir(name), LoraFixtures.Adapter(name), null, outDir, context);
        var baseCfg = HfConfigReader.Read(ModelFixtures.Dir(name));
        var cfg = HfConfigReader.Read(outDir);
        if (factor is null) { Assert.Equal(baseCfg.RopeScaling, cfg.RopeScaling); return; }
        Assert.Equal(new RopeScaling("linear", factor.Value), cfg.RopeScaling);
        Assert.Equal(baseCfg.MaxPositionEmbeddings, cfg.MaxPositionEmbeddings);
        var text = File.ReadAllText(Path.Combine(outDir, "config.json"));
        Assert.Contains(factor == 3.0 ? "\"factor\": 3.0" : "\"factor\": 1.5625", text);
    }

    [Fact]
    public void RopeRuleOnRealConfigs()
    {
        var llama2 = new ModelConfig { ModelType = "llama", VocabSize = 32000, HiddenSize = 8, IntermediateSize = 8, NumHiddenLayers = 1, NumAttentionHeads = 1, NumKeyValueHeads = 1, HeadDim = 8, MaxPositionEmbeddings = 4096 };
        Assert.Equal(25.0, RopeForContext.Factor(llama2, 100000, "c"));
        Assert.Equal(4.0, RopeForContext.Factor(llama2, 16384, "c"));
        var qwen3 = llama2 with { ModelType = "qwen3", MaxPositionEmbeddings = 40960 };
        Assert.Equal(1.2, RopeForContext.Factor(qwen3, 49152, "c")!.Value, 12);
        Assert.Null(RopeForContext.Factor(qwen3, 40960, "c"));
    }

    [Fact]
    public void ContextBeyondANonLinearRopeIsRefused()
    {
        using var tmp = new TempDir();
        var e = Assert.Throws<HiciException>(() =>
            LoraMerge.MergeAndSave(ModelFixtures.Dir("llama3-gqa-tied"), LoraFixtures.Adapter("qwen3-gqa"), null, tmp.Sub("m"), 4096));
        Assert.Contains("rope_scaling is already 'llama3'", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(tmp.Path));
    }

    [Theory]
    [InlineData(2)]     // Llama-2's added [PAD] row(s): lm_head grows by the mean row
    [InlineData(-3)]    // Qwen3-style smaller trained vocabulary: lm_head keeps its first rows
    public void OverlayEmbeddingResizesTheVocabulary(int extraRows)
    {
        using var tmp = new TempDir();
        using var scope = torch.NewDisposeScope();
        using var baseSrc = SafeTensorsWeightSource.Open(ModelFixtures.Dir("llama-mha-linear"));
        var embed = baseSrc.Load("model.embed_tokens.weight", ScalarType.Float32);
        var newEmbed = extraRows > 0 ? torch.cat(new[] { embed, torch.randn(extraRows, 64) }, 0) : embed.narrow(0, 0, 256 + extraRows).clone();
        using var overlay = new DictionaryWeightSource(new() { ["model.embed_tokens.weight"] = newEmbed.DetachFromDisposeScope() }, "trainable_params.bin");
        var outDir = tmp.Sub("m");
        var report = LoraMerge.MergeAndSave(ModelFixtures.Dir("llama-mha-linear"), LoraFixtures.Adapter("llama-mha-linear"), overlay, outDir,
            options: new MergeOptions { DType = ScalarType.Float32 });
        output.WriteLine(string.Join("\n", report.Notes));
        Assert.Equal(256 + extraRows, HfConfigReader.Read(outDir).VocabSize);
        using var merged = SafeTensorsWeightSource.Open(outDir);
        var head = merged.Load("lm_head.weight");
        var oldHead = baseSrc.Load("lm_head.weight", ScalarType.Float32);
        Assert.Equal(new long[] { 256 + extraRows, 64 }, head.shape);
        if (extraRows > 0)
        {
            Assert.True((head.narrow(0, 0, 256) - oldHead).abs().max().item<float>() == 0);
            var mean = oldHead.mean(new long[] { 0 });
            for (int i = 0; i < extraRows; i++) Assert.True((head[256 + i] - mean).abs().max().item<float>() <= 1e-6);
        }
        else Assert.True((head - oldHead.narrow(0, 0, 256 + extraRows)).abs().max().item<float>() == 0);
        using var lm = LoadFolder(outDir, ScalarType.Float32);   // loads and runs with the new vocabulary
        Assert.Equal(256 + extraRows, lm.Forward(torch.tensor(new long[] { 1, 2, 3 })).shape[2]);
    }

    [Fact]
    public void OverlayKeysTheModelDoesNotHaveAreRefused()
    {
        using var tmp = new TempDir();
        using var overlay = new DictionaryWeightSource(new()
        {
            ["model.layers.0.self_attn.q_norm.weight"] = torch.ones(16).DetachFromDisposeScope(),
            ["model.norm.weight"] = torch.ones(32).DetachFromDisposeScope(),
        }, "elsewhere/trainable_params.bin");
        var e = Assert.Throws<HiciException>(() =>
            LoraMerge.MergeAndSave(ModelFixtures.Dir("llama-mha-linear"), LoraFixtures.Adapter("llama-mha-linear"), overlay, tmp.Sub("m")));
        Assert.StartsWith("elsewhere/trainable_params.bin: trainable params do not fit the base model", e.Message);
        Assert.Contains("'model.layers.0.self_attn.q_norm.weight' is not a weight of this llama model", e.Message);
        Assert.Contains("'model.norm.weight' is [32], the model's is [64]", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(tmp.Path));
    }

    // ---------------------------------------------------------------- folder writing

    [Fact]
    public void ShardsTokenizerAndRefusesANonEmptyOutput()
    {
        using var tmp = new TempDir();
        var adapterDir = LoraFixtures.CopyAdapter(LoraFixtures.Adapter("qwen3-gqa"), tmp.Sub("adapter"));
        File.WriteAllText(Path.Combine(adapterDir, "tokenizer_config.json"), "{}");
        File.WriteAllText(Path.Combine(adapterDir, "tokenizer.json"), "{}");
        var outDir = tmp.Sub("m");
        Directory.CreateDirectory(outDir);   // an existing empty folder is fine
        LoraMerge.MergeAndSave(ModelFixtures.Dir("qwen3-gqa"), adapterDir, null, outDir,
            options: new MergeOptions { MaxShardBytes = 64 * 1024 });
        var files = Directory.GetFiles(outDir).Select(Path.GetFileName).ToList();
        Assert.Contains("model.safetensors.index.json", files);
        Assert.Contains("tokenizer.json", files);
        Assert.Contains("tokenizer_config.json", files);
        Assert.True(files.Count(f => f!.StartsWith("model-0000")) > 1);

        using var scope = torch.NewDisposeScope();
        using var merged = LoadFolder(outDir, ScalarType.BFloat16);
        using var inMemory = LoraFixtures.WithAdapter("qwen3-gqa", ScalarType.BFloat16);
        LoraApplier.MergeAll(inMemory);
        var ids = LoraFixtures.Expected("qwen3-gqa", "input_ids");
        Assert.Equal(0f, (Logprobs(merged, ids) - Logprobs(inMemory, ids)).abs().max().item<float>());

        var e = Assert.Throws<HiciException>(() => LoraMerge.MergeAndSave(ModelFixtures.Dir("qwen3-gqa"), adapterDir, null, outDir));
        Assert.Contains("exists and is not empty", e.Message);
    }
}
