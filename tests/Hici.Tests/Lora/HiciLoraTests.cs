using Hici.Loading;
using Hici.Hierarchical;
using Hici.IO;
using Hici.Lora;
using Hici.Models;
using Hici.Tests.Models;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Hici.Tests.Lora;

/// <summary>
/// The published HiCI layout end to end on a real HiCI model (tests/fixtures/hici/model-qwen3): LoRA on the
/// attention and on the LocalConstructor / GlobalIntegrator projections (legacy prefixes in the adapter and in
/// trainable_params.bin), against tools/hici_reference.py with W + (α/r)·B·A (tools/make_lora_fixtures.py).
/// </summary>
public class HiciLoraTests(ITestOutputHelper output)
{
    private static string ModelDir => Path.Combine(ModelFixtures.Root, "tests", "fixtures", "hici", "model-qwen3");
    private static string Dir => LoraFixtures.Dir("hici-qwen3");
    private static string AdapterDir => Path.Combine(Dir, "adapter");
    private static string TrainablePath => Path.Combine(Dir, "trainable_params.bin");

    private static AttentionSetting Attention(AttentionKind kind, string forward) => TestAttention.Setting(kind,
        HiciConfig.Load(ModelDir) with { CausalMode = HiciConfig.ParseCausalMode("causal_gi"), Forward = HiciConfig.ParseForward(forward) });

    private static ModelConfig Config(string dir, AttentionKind kind, string forward) =>
        HfConfigReader.Read(dir) with { Attention = Attention(kind, forward) };

    /// <summary>Through the loader every command uses: a folder, the trainable_params.bin over it, the adapter last.</summary>
    private static LoadedModel Load(string dir, AttentionKind kind, string forward, string? trainable = null, string? adapter = null) =>
        ModelLoader.Load(new ModelLoadRequest(dir) { Attention = Attention(kind, forward), TrainableFile = trainable, AdapterDir = adapter, Strict = true });

    public static TheoryData<string, string> Cases => new()
    {
        { "hici", "train" },
        { "hici", "inference" },
        { "full", "train" },          // HiCI loaded but unused: the HiCI LoRA must not matter
    };

    private static (Tensor Ids, Tensor Expected) Expected(string kind, string forward)
    {
        var key = kind == "full" ? "lp.full" : $"lp.{forward}.causal_gi";
        var ids = LoraFixtures.Expected("hici-qwen3", "input_ids");
        var exp = LoraFixtures.Expected("hici-qwen3", key);
        return (ids.narrow(0, 0, exp.shape[0]), exp);
    }

    [Theory, MemberData(nameof(Cases))]
    public void LoraOnHiciProjectionsMatchesTheReference(string kind, string forward)
    {
        using var scope = torch.NewDisposeScope();
        using var loaded = Load(ModelDir, kind == "hici" ? AttentionKind.Hici : AttentionKind.Full, forward, TrainablePath, AdapterDir);
        var lm = loaded.Transformer;
        var report = loaded.Adapter!;   // strict: every key used, every layer covered
        Assert.Equal(24, report.Loaded.Count);   // 2 layers × (attention + LocalConstructor + GlobalIntegrator) × q/k/v/o
        Assert.Contains("model.layers.1.self_attn.local_constructor.o_proj", report.Loaded);
        Assert.Contains("model.layers.0.self_attn.global_integrator.v_proj", report.Loaded);

        var (ids, expected) = Expected(kind, forward);
        double unmerged = LoraFixtures.MaxLogprobDiff(lm, ids, expected);
        LoraApplier.MergeAll(lm);
        double merged = LoraFixtures.MaxLogprobDiff(lm, ids, expected);
        output.WriteLine($"{kind}/{forward}: max|Δ logprob| unmerged {unmerged:E2}, merged {merged:E2}");
        Assert.True(unmerged <= 1e-4, $"unmerged {unmerged:E3}");
        Assert.True(merged <= 1e-4, $"merged {merged:E3}");
    }

    /// <summary>Default targets reach every HiCI projection and nothing else inside the HiCI modules.</summary>
    [Fact]
    public void DefaultTargetsWrapTheHiciProjections()
    {
        using var lm = CausalLM.Create(Config(ModelDir, AttentionKind.Hici, "train"), ScalarType.Float32);
        var paths = LoraApplier.Apply(lm, new LoraConfig());
        Assert.Equal(24, paths.Count);
        Assert.DoesNotContain(paths, p => p.Contains("expand") || p.Contains("compressor"));
        var keys = lm.named_parameters().Select(p => p.name).ToHashSet();
        Assert.Contains("model.layers.0.self_attn.local_constructor.q_proj.lora_A.weight", keys);
        Assert.Contains("model.layers.0.self_attn.local_constructor.q_proj.weight", keys);
        Assert.Contains("model.layers.0.self_attn.global_integrator.o_proj.lora_B.weight", keys);
        // the meta-built HiCI model still loads its base + HiCI weights with LoRA already in place
        using var src = SafeTensorsWeightSource.Open(Path.Combine(ModelDir, "model.safetensors"));
        lm.LoadWeights(src);
        Assert.True(lm.IsMaterialized);
    }

    /// <summary>
    /// merge with base (no HiCI) + adapter + trainable_params → model.safetensors + hici.safetensors +
    /// hici_config.json; that folder, read as one source, scores as the reference.
    /// </summary>
    [Fact]
    public void MergedFolderWithHiciSafetensorsScoresAsTheReference()
    {
        using var tmp = new TempDir();
        var baseDir = tmp.Sub("base");
        Directory.CreateDirectory(baseDir);
        File.Copy(Path.Combine(ModelDir, "config.json"), Path.Combine(baseDir, "config.json"));
        using (var full = SafeTensorsWeightSource.Open(Path.Combine(ModelDir, "model.safetensors")))
        using (var s = torch.NewDisposeScope())
            SafeTensorsWriter.Save(Path.Combine(baseDir, "model.safetensors"),
                full.Keys.Where(k => !HiciKeys.IsInHiciModule(k)).Select(k => (k, full.Load(k))));

        var outDir = tmp.Sub("merged");
        MergeReport report;
        using (var trainable = TorchPickleWeightSource.Open(TrainablePath))
            report = LoraMerge.MergeAndSave(baseDir, AdapterDir, trainable, outDir,
                options: new MergeOptions { DType = ScalarType.Float32, Strict = true, HiciConfigPath = Path.Combine(ModelDir, "hici_config.json") });
        Assert.Equal(16, report.HiciLoraMerged.Count);
        Assert.True(File.Exists(Path.Combine(outDir, LoraMerge.HiciConfigName)));

        using var scope = torch.NewDisposeScope();
        foreach (var (kind, forward) in new[] { ("hici", "train"), ("hici", "inference"), ("full", "train") })
        {
            using var merged = Load(outDir, kind == "hici" ? AttentionKind.Hici : AttentionKind.Full, forward);   // hici.safetensors beside the HF weights
            var lm = merged.Transformer;
            var (ids, expected) = Expected(kind, forward);
            double d = LoraFixtures.MaxLogprobDiff(lm, ids, expected);
            output.WriteLine($"merged folder {kind}/{forward}: max|Δ logprob| {d:E2}");
            Assert.True(d <= 1e-4, $"{kind}/{forward}: {d:E3}");

            using var unmerged = Load(ModelDir, kind == "hici" ? AttentionKind.Hici : AttentionKind.Full, forward, TrainablePath, AdapterDir);
            var inMemory = unmerged.Transformer;
            LoraApplier.MergeAll(inMemory);
            using var noGrad = torch.no_grad();
            var a = nn.functional.log_softmax(lm.Forward(ids), -1);
            var b = nn.functional.log_softmax(inMemory.Forward(ids), -1);
            // Not bit-equal any more: a plain merged Linear lets the local constructor fold its k/v projections into
            // the slot queries (another fp32 summation order) where the LoRA-wrapped one cannot; measured 1.1e-5.
            Assert.True((a - b).abs().max().item<float>() <= 1e-4f);
        }
    }
}
