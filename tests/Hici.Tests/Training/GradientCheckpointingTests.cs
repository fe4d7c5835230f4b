using Hici.Hierarchical;
using Hici.IO;
using Hici.Lora;
using Hici.Models;
using Hici.Tests.Text;
using Hici.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Training;

/// <summary>
/// --gradient-checkpointing (<see cref="MicroBatchStep"/>'s layer-wise recompute) gives the gradients of the
/// plain backward, bit for bit, for every trainable tensor (LoRA A/B on attention and HiCI projections, HiCI
/// modules, embeddings incl. Qwen3's tied one, norms) on the tiny Llama and Qwen3 HiCI fixtures in every causal
/// mode, with LoRA dropout (its masks must be replayed) and mixed segment ratios (the draw must be replayed), and
/// leaves the random states where the plain step leaves them. Exact resume holds with it on.
/// </summary>
[Collection("Console")]
public class GradientCheckpointingTests
{
    public static readonly TheoryData<string, string, bool> Cases = Build();

    private static TheoryData<string, string, bool> Build()
    {
        var d = new TheoryData<string, string, bool>();
        foreach (var m in new[] { "llama", "qwen3" })
            foreach (var mode in new[] { "none", "causal_gi", "causal_shift", "causal_shift_g", "causal_gi_gonly" })
                foreach (var mixed in new[] { false, true })
                    d.Add(m, mode, mixed);
        return d;
    }

    private static TrainOptions Options(string model, string mode, bool mixed, string output)
    {
        var o = GradientParityTests.Options(model, "all", mode, output);
        var h = (HiciAttentionOptions)o.Attention.Options!;
        return o with
        {
            Lora = o.Lora! with { Dropout = 0.25 },
            Attention = o.Attention with { Options = h with { Config = h.Config with { MixedSegmentRatios = mixed ? HiciConfig.DefaultMixedRatios : null } } },
        };
    }

    /// <summary>One micro-batch (2 rows, loss / 2 as with --grad-accum 2) from fixed random states; the gradients and what the random states are afterwards.</summary>
    private static (double Loss, Dictionary<string, Tensor> Grads, byte[] Rng, SegmenterState? Seg) Step(TrainingModel tm, Tensor ids, bool checkpointing)
    {
        var seg = HiciImplementation.SegmenterOf(tm.Model);
        seg?.SetState(new SegmenterState(7, 0.25));
        torch.manual_seed(123);
        foreach (var (_, p) in tm.Trainable) p.grad = null;
        double loss = MicroBatchStep.Run(tm.Model, ids, ids, 2048, 2, checkpointing);
        var grads = tm.Trainable.ToDictionary(t => t.Name, t => t.Param.grad?.detach().clone() ?? throw new Xunit.Sdk.XunitException($"{t.Name}: no gradient"));
        using var rng = torch.get_rng_state();
        return (loss, grads, rng.data<byte>().ToArray(), seg?.GetState());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void CheckpointedGradientsEqualThePlainBackward(string model, string mode, bool mixed)
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDir();
        using var tm = TrainingModel.Build(Options(model, mode, mixed, dir.Path));
        RandomiseLoraB(tm);
        var ids = torch.randint(0, tm.Model.Config.VocabSize, new long[] { 2, 32 }, generator: new Generator(9));
        var plain = Step(tm, ids, checkpointing: false);
        var ckpt = Step(tm, ids, checkpointing: true);
        Assert.Equal(plain.Loss, ckpt.Loss);
        Assert.True(plain.Grads.Count >= 40, $"only {plain.Grads.Count} trainable tensors");
        foreach (var (name, g) in plain.Grads)
        {
            Assert.True(g.abs().max().item<float>() > 0, $"{name}: zero gradient (the test would not see a difference)");
            Assert.True(g.eq(ckpt.Grads[name]).all().item<bool>(), $"{name}: checkpointed gradient differs by {(g - ckpt.Grads[name]).abs().max().item<float>():E2}");
        }
        Assert.Equal(plain.Rng, ckpt.Rng);
        Assert.Equal(plain.Seg, ckpt.Seg);
    }

    /// <summary>LoRA B starts at zero; seeded values (as after some training) let the LoRA path, and its dropout, reach the gradients of A.</summary>
    internal static void RandomiseLoraB(TrainingModel tm)
    {
        using var noGrad = no_grad();
        var gen = new Generator(5);
        foreach (var (_, p) in tm.Trainable.Where(t => t.Name.Contains(".lora_B.", StringComparison.Ordinal)))
            p.copy_(torch.randn(p.shape, generator: gen) * 0.05);
    }

    [Fact]
    public void ResumeIsExactWithCheckpointingAndMatchesThePlainRun()
    {
        int threads = torch.get_num_threads();
        torch.set_num_threads(1);
        try
        {
            using var dir = new TempDir();
            var bin = TrainerTests.RandomData(dir.Path);
            var plain = TrainerTests.Run(TrainerTests.Options(Path.Combine(dir.Path, "p"), 4), bin);
            var straight = TrainerTests.Run(TrainerTests.Options(Path.Combine(dir.Path, "a"), 4) with { GradientCheckpointing = true }, bin);
            var ckpt2 = Path.Combine(dir.Path, "a", "checkpoint-2");
            var resumed = TrainerTests.Run(TrainerTests.Options(Path.Combine(dir.Path, "b"), 4) with { GradientCheckpointing = true }, bin, ckpt2);
            Assert.Equal(straight.Metrics.Select(m => m.Loss), resumed.Metrics.Select(m => m.Loss));
            Assert.Equal(straight.Metrics.Select(m => m.GradNorm), resumed.Metrics.Select(m => m.GradNorm));
            Assert.Equal(plain.Metrics.Select(m => m.Loss), straight.Metrics.Select(m => m.Loss));
            Assert.Equal(plain.Metrics.Select(m => m.GradNorm), straight.Metrics.Select(m => m.GradNorm));
        }
        finally { torch.set_num_threads(threads); }
    }

    [Fact]
    public void MemoryEstimateKeepsOneLayerOfActivations()
    {
        var cfg = HfConfigReader.Read(TestData.Fixture("hici", "model-llama")) with { NumHiddenLayers = 32, HiddenSize = 4096, IntermediateSize = 11008, NumAttentionHeads = 32, NumKeyValueHeads = 32 };
        var plain = TrainingMemory.Estimate(cfg, ScalarType.BFloat16, 7_000_000_000, 40_000_000, 0, 1, 16384, 2048);
        var ckpt = TrainingMemory.Estimate(cfg, ScalarType.BFloat16, 7_000_000_000, 40_000_000, 0, 1, 16384, 2048, checkpointing: true);
        Assert.Equal(plain.Weights, ckpt.Weights);
        // 32 layers' activations → one layer's plus the 32 layer inputs of 16384 × 4096 bf16 (128 MiB each)
        Assert.True(ckpt.Activations >= 32L * 16384 * 4096 * 2, $"{ckpt.Activations}");
        Assert.True(ckpt.Activations < plain.Activations / 4, $"{ckpt.Activations} vs {plain.Activations}");
    }
}
