using Hici.Hierarchical;
using Hici.IO;
using Hici.Loading;
using Hici.Lora;
using Hici.Models;
using Hici.Tests.Cli;
using Hici.Tests.Text;
using Hici.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Training;

/// <summary>
/// The training loop on the tiny HiCI Llama fixture (2 layers, hidden 64, vocabulary 256, HiCI in every layer):
/// exact resume, a falling loss, the NaN stop, and the checkpoint layout that merge / convert-trainable take as is.
/// </summary>
[Collection("Console")]
public class TrainerTests
{
    private static readonly string Model = TestData.Fixture("hici", "model-llama");

    internal static string RandomData(string dir, int tokens = 4096, int period = 0)
    {
        var bin = Path.Combine(dir, "data.bin");
        var rng = new Random(5);
        var ids = Enumerable.Range(0, tokens).Select(i => period > 0 ? (i % period) * 7 % 256 : rng.Next(256)).ToArray();
        using var w = new TokenFileWriter(bin, "uint16");
        w.Add(ids);
        w.Commit();
        return bin;
    }

    internal static TrainOptions Options(string output, int steps) => new()
    {
        ModelDir = Model, OutputDir = output, ModelMaxLength = 32, MaxSteps = steps, SaveSteps = 2, BatchSize = 2, GradAccum = 2,
        LearningRate = 1e-3, HiciLearningRate = 3e-3, WarmupSteps = 1, Scheduler = LrScheduleKind.Cosine, HiciGradClip = 0.3,
        Lora = new LoraConfig { R = 4, Alpha = 8, Dropout = 0.1 }, Seed = 11,
        // mixed segment ratios: the segmenter's draws are part of what resume must restore
        Attention = HiciAttentionOptions.Setting(HiciConfig.Load(Path.Combine(Model, HiciConfig.FileName)) with
            { CausalMode = HiciCausalMode.CausalShift, MixedSegmentRatios = HiciConfig.DefaultMixedRatios }),
    };

    internal static TrainResult Run(TrainOptions o, string bin, string? resume = null)
    {
        using var tm = TrainingModel.Build(o);
        using var f = TokenFile.Open(bin, tm.Model.Config.VocabSize);
        using var t = new Trainer(o, tm, new PretrainBatches(new TokenSampler(f, o.ModelMaxLength, o.Seed), null), "pretrain");
        return t.Run(resume);
    }

    [Fact]
    public void ResumeGivesTheSameLossesAsTheStraightRun()
    {
        int threads = torch.get_num_threads();
        torch.set_num_threads(1);
        try
        {
            using var dir = new TempDir();
            var bin = RandomData(dir.Path);
            var straight = Run(Options(Path.Combine(dir.Path, "a"), 4), bin);
            var ckpt2 = Path.Combine(dir.Path, "a", "checkpoint-2");
            Assert.True(Directory.Exists(ckpt2));
            var resumed = Run(Options(Path.Combine(dir.Path, "b"), 4), bin, ckpt2);
            Assert.Equal(4, resumed.Steps);
            var a = straight.Metrics.Select(m => m.Loss).ToArray();
            var b = resumed.Metrics.Select(m => m.Loss).ToArray();     // history restored from the checkpoint + 2 new steps
            Assert.Equal(a, b);
            Assert.Equal(straight.Metrics.Select(m => m.GradNorm), resumed.Metrics.Select(m => m.GradNorm));
        }
        finally { torch.set_num_threads(threads); }
    }

    [Fact]
    public void LossFallsOnARepetitiveText()
    {
        using var dir = new TempDir();
        var bin = RandomData(dir.Path, period: 16);
        var o = Options(Path.Combine(dir.Path, "r"), 30) with { LearningRate = 1e-2, HiciLearningRate = 1e-2, SaveSteps = 100, Trainable = new[] { "embed", "norm", "local_constructor", "global_integrator" } };
        var r = Run(o, bin);
        Assert.True(r.Metrics[^1].Loss < 0.5 * r.Metrics[0].Loss, $"loss {r.Metrics[0].Loss} → {r.Metrics[^1].Loss}");
    }

    [Fact]
    public void NonFiniteLossStopsBeforeTheUpdate()
    {
        using var dir = new TempDir();
        var bin = RandomData(dir.Path);
        var o = Options(Path.Combine(dir.Path, "n"), 4);
        using var tm = TrainingModel.Build(o);
        using (no_grad()) tm.Model.model.norm.weight[0] = tensor(float.NaN);
        using var f = TokenFile.Open(bin, 256);
        using var t = new Trainer(o, tm, new PretrainBatches(new TokenSampler(f, 32, 1), null), "pretrain");
        var e = Assert.Throws<TrainingDivergedException>(() => t.Run());
        Assert.Contains("loss is NaN at step 1", e.Message);
        Assert.Empty(TrainingCheckpoint.List(o.OutputDir));
    }

    [Fact]
    public void CheckpointsArePeftLayoutAndMergeAsTheyAre()
    {
        using var dir = new TempDir();
        var bin = RandomData(dir.Path);
        var o = Options(Path.Combine(dir.Path, "c"), 4) with { SaveTotalLimit = 1 };
        var r = Run(o, bin);
        var ckpts = TrainingCheckpoint.List(o.OutputDir);
        Assert.Single(ckpts);                                  // --save-total-limit 1 removed checkpoint-2
        var ck = ckpts[0].Dir;
        Assert.EndsWith("checkpoint-4", ck);
        foreach (var f in new[] { "adapter_config.json", "adapter_model.safetensors", "trainable.safetensors", "hici_config.json", "optimizer.bin", "scheduler.json", "trainer_state.json" })
            Assert.True(File.Exists(Path.Combine(ck, f)), f);
        Assert.Empty(Directory.GetDirectories(o.OutputDir, ".checkpoint-*"));
        using (var ad = SafeTensorsWeightSource.Open(Path.Combine(ck, "adapter_model.safetensors")))
        {
            Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", ad.Keys);
            Assert.Contains("base_model.model.model.layers.1.self_attn.local_constructor.q_proj.lora_B.weight", ad.Keys);
            Assert.Contains("base_model.model.model.layers.0.self_attn.global_integrator.k_proj.lora_A.weight", ad.Keys);
        }
        using (var tr = SafeTensorsWeightSource.Open(Path.Combine(ck, "trainable.safetensors")))
        {
            Assert.All(tr.Keys, k => Assert.True(HiciKeys.IsTrainableKey(k), k));
            Assert.Contains("model.embed_tokens.weight", tr.Keys);
            Assert.Contains("model.layers.0.self_attn.local_constructor.memory_slots", tr.Keys);
        }
        // merge and convert-trainable take the checkpoint as it is
        var merged = Path.Combine(dir.Path, "merged");
        var m = CliRunner.Run("merge", "--model", Model, "--adapter", ck, "--trainable", Path.Combine(ck, "trainable.safetensors"), "--output", merged, "--hici-config", Path.Combine(ck, "hici_config.json"));
        Assert.True(m.Code == 0, m.Err);
        var conv = CliRunner.Run("convert-trainable", "--input", Path.Combine(ck, "trainable.safetensors"), "--output", Path.Combine(dir.Path, "trainable_params.bin"), "--format", "reference");
        Assert.True(conv.Code == 0, conv.Err);
        // the merged folder scores as the trained model: HiCI loaded from hici.safetensors, LoRA folded in
        using (var lm = ModelLoader.Load(new ModelLoadRequest(merged) { Attention = o.Attention }).Transformer)
            Assert.True(lm.IsMaterialized);

        // without --hici-config, merge takes the checkpoint's own hici_config.json
        var merged2 = Path.Combine(dir.Path, "merged2");
        var m2 = CliRunner.Run("merge", "--model", Model, "--adapter", ck, "--trainable", Path.Combine(ck, "trainable.safetensors"), "--output", merged2);
        Assert.True(m2.Code == 0, m2.Err);
        Assert.Contains("(from the adapter folder)", m2.Out);
        Assert.Equal(File.ReadAllText(Path.Combine(ck, "hici_config.json")), File.ReadAllText(Path.Combine(merged2, "hici_config.json")));
        using (var lm2 = ModelLoader.Load(new ModelLoadRequest(merged2) { Attention = new AttentionSetting(HiciImplementation.Id, null) }).Transformer)
            Assert.Equal(HiciCausalMode.CausalShift, ((HiciAttentionOptions)lm2.Config.Attention.Options!).Config.CausalMode);
        // convert-trainable takes the checkpoint folder, checks the HiCI shapes against its config and prints the reference's flags
        var conv2 = CliRunner.Run("convert-trainable", "--input", ck, "--output", Path.Combine(dir.Path, "t2.bin"), "--format", "reference");
        Assert.True(conv2.Code == 0, conv2.Err);
        Assert.Contains("--num_local_slots 4 --global_slots 2 --num_heads 4", conv2.Out);
        var bad = Path.Combine(dir.Path, "bad");
        Directory.CreateDirectory(bad);
        File.Copy(Path.Combine(ck, "trainable.safetensors"), Path.Combine(bad, "trainable.safetensors"));
        File.WriteAllText(Path.Combine(bad, "hici_config.json"), """{"num_local_slots": 5, "global_slots": 2, "num_heads": 4, "bottleneck_dim": 32, "shared_compress_dim": 16}""");
        var e = CliRunner.AssertOneLineError(CliRunner.Run("convert-trainable", "--input", bad, "--output", Path.Combine(dir.Path, "t3.bin")));
        Assert.Contains("memory_slots", e);
    }
}
