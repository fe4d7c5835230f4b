using Hici.I3;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.I3;

/// <summary>Learning-rate schedule, and exact resume: N steps straight == k steps, checkpoint, new process state, N − k steps.</summary>
public class I3TrainerTests
{
    [Fact]
    public void LearningRateSchedule()
    {
        var o = new I3TrainOptions { LearningRate = 4e-4, WarmupSteps = 100, ScheduleSteps = 5000 };
        Assert.Equal(4e-6, o.LrAt(0), 15);
        Assert.Equal(2.04e-4, o.LrAt(50), 15);
        Assert.Equal(4e-4, o.LrAt(100), 15);
        Assert.Equal(4e-5, o.LrAt(5000), 15);
        Assert.Equal(4e-5, o.LrAt(9000), 15);
        Assert.Equal(4e-5 + 0.5 * 3.6e-4, o.LrAt(2550), 12);   // half way through the cosine
    }

    private static int[] Stream(int n, int seed)
    {
        var r = new Random(seed);
        // a learnable stream: short repeated phrases with noise
        var phrases = Enumerable.Range(0, 20).Select(_ => Enumerable.Range(0, 12).Select(_ => r.Next(512)).ToArray()).ToArray();
        var s = new List<int>();
        while (s.Count < n) s.AddRange(phrases[r.Next(phrases.Length)]);
        return s.Take(n).ToArray();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ResumeRepeatsAStraightRun(bool carry)
    {
        var cfg = I3Config.Tiny with { CompressionStart = 1, CompressionRamp = 2, CarryRwkvState = carry };
        var opts = new I3TrainOptions { Batch = 2, GradAccum = 3, WarmupSteps = 2, ScheduleSteps = 6, MaxSteps = 6, LaneLength = 4, Seed = 7 };
        var data = Stream(3000, 1);
        int threads = torch.get_num_threads();
        torch.set_num_threads(1);
        var dir = Path.Combine(Path.GetTempPath(), "i3-resume-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            List<double> straight = [], resumed = [];
            using (var m = new I3Model(cfg))
            {
                m.Initialize(3);
                using var t = new I3Trainer(m, data, opts);
                for (int i = 0; i < 6; i++) straight.Add(t.TrainStep().Loss);
            }
            using (var m = new I3Model(cfg))
            {
                m.Initialize(3);
                using var t = new I3Trainer(m, data, opts);
                for (int i = 0; i < 4; i++) resumed.Add(t.TrainStep().Loss);
                t.SaveCheckpoint(dir);
            }
            using (var m = new I3Model(cfg))
            {
                m.Initialize(99);   // different init: everything must come from the checkpoint
                using var t = new I3Trainer(m, data, opts with { Seed = 99 });
                t.LoadCheckpoint(dir);
                Assert.Equal(4, t.Step);
                for (int i = 0; i < 2; i++) resumed.Add(t.TrainStep().Loss);
            }
            Assert.Equal(straight, resumed);
            Assert.True(straight[^1] < straight[0], "the loss goes down");
        }
        finally
        {
            torch.set_num_threads(threads);
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }
}
