using Hici.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Tests.Training;

/// <summary>
/// --dtype bf16 (bf16 compute, fp32 master weights and AdamW state, as the reference's DeepSpeed bf16 runs) on the
/// tiny HiCI Llama fixture: the optimizer sees only fp32 tensors and keeps fp32 moments, the bf16 weights are the
/// masters rounded, the loss falls, and the first step's loss and gradients stay within a measured bound of the
/// fp32 run's (bf16 keeps 8 significant bits, 2^-8 ≈ 0.4 % per rounding).
/// </summary>
[Collection("Console")]
public class Bf16TrainingTests
{
    /// <summary>Relative bounds for bf16 against fp32 on the first step (measured: see docs/training.md).</summary>
    public const double LossRel = 5e-3, GradRel = 0.15, GradMedianRel = 0.05;

    [Fact]
    public void FirstStepIsWithinTheBoundOfFp32()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDir();
        var ids = torch.randint(0, 256, new long[] { 2, 32 }, generator: new Generator(4));
        var o = TrainerTests.Options(dir.Path, 1) with { Lora = TrainerTests.Options(dir.Path, 1).Lora! with { Dropout = 0 } };
        (double Loss, Dictionary<string, Tensor> Grads) Step(ScalarType dt)
        {
            using var tm = TrainingModel.Build(o with { DType = dt });
            GradientCheckpointingTests.RandomiseLoraB(tm);
            HiciImplementationSeg(tm);
            double l = MicroBatchStep.Run(tm.Model, ids, ids, 2048, 1, checkpointing: false);
            return (l, tm.Trainable.ToDictionary(t => t.Name, t => t.Param.grad!.detach().to(ScalarType.Float32).clone().DetachFromDisposeScope()));
        }
        var f = Step(ScalarType.Float32);
        var b = Step(ScalarType.BFloat16);
        double lossRel = Math.Abs(b.Loss - f.Loss) / f.Loss;
        Assert.True(lossRel <= LossRel, $"bf16 loss {b.Loss} vs fp32 {f.Loss}: relative {lossRel:E2}");
        var rels = f.Grads.Select(kv => (Name: kv.Key, Rel: (b.Grads[kv.Key] - kv.Value).norm().item<float>() / (double)kv.Value.norm().item<float>()))
            .OrderBy(x => x.Rel).ToList();
        var (worstName, worst) = rels[^1];
        double median = rels[rels.Count / 2].Rel;
        Console.WriteLine($"bf16 vs fp32 first step: loss relative {lossRel:E2}, gradient relative ‖Δ‖ median {median:E2}, worst {worst:E2} ({worstName}) over {rels.Count} tensors");
        Assert.True(worst <= GradRel, $"{worstName}: bf16 gradient off the fp32 one by {worst:E2} (relative ‖Δ‖)");
        Assert.True(median <= GradMedianRel, $"median relative gradient difference {median:E2}");
        foreach (var g in f.Grads.Values.Concat(b.Grads.Values)) g.Dispose();
    }

    private static void HiciImplementationSeg(TrainingModel tm) =>
        Hici.Hierarchical.HiciImplementation.SegmenterOf(tm.Model)?.SetState(new Hici.Hierarchical.SegmenterState(1, 0.25));

    [Fact]
    public void Bf16KeepsFp32MastersAndOptimizerStateAndLearns()
    {
        using var dir = new TempDir();
        var bin = TrainerTests.RandomData(dir.Path, period: 16);
        var o = TrainerTests.Options(Path.Combine(dir.Path, "r"), 20) with
        {
            DType = ScalarType.BFloat16, LearningRate = 1e-2, HiciLearningRate = 1e-2, SaveSteps = 100,
        };
        using var tm = TrainingModel.Build(o);
        using var file = TokenFile.Open(bin, tm.Model.Config.VocabSize);
        using var t = new Trainer(o, tm, new PretrainBatches(new TokenSampler(file, o.ModelMaxLength, o.Seed), null), "pretrain");
        var r = t.Run();
        Assert.True(r.Metrics[^1].Loss < 0.5 * r.Metrics[0].Loss, $"bf16 loss {r.Metrics[0].Loss} → {r.Metrics[^1].Loss}");
        int bf16Params = 0;
        foreach (var (name, model, master) in t.Masters.Items)
        {
            Assert.Equal(ScalarType.Float32, master.dtype);
            if (model.dtype == ScalarType.BFloat16)
            {
                bf16Params++;
                Assert.False(ReferenceEquals(model, master));
                Assert.True(master.to(ScalarType.BFloat16).eq(model).all().item<bool>(), $"{name}: the bf16 weight is not its master rounded");
            }
            else Assert.Equal(ScalarType.Float32, model.dtype);        // LoRA A/B are fp32 and their own masters
        }
        Assert.True(bf16Params >= 10, $"only {bf16Params} bf16 trainables (embeddings, norms, HiCI)");
        var masterSet = t.Masters.Masters.ToHashSet(ReferenceEqualityComparer.Instance);
        var states = t.Optimizer.state_dict().State.OfType<AdamW.State>().ToList();
        Assert.Equal(t.Masters.Items.Count, states.Count);
        Assert.All(states, s =>
        {
            Assert.Equal(ScalarType.Float32, s.exp_avg.dtype);
            Assert.Equal(ScalarType.Float32, s.exp_avg_sq.dtype);
        });
        Assert.All(t.Optimizer.parameters(), p => Assert.Contains(p, masterSet));
    }
}
