using Hici.Training;

namespace Hici.Tests.Training;

public class ScheduleAndSamplerTests
{
    [Fact]
    public void SchedulesFollowTransformers()
    {
        // get_constant_schedule_with_warmup(20): step/20 below 20, then 1 (the first update runs at factor 0)
        var c = new LrSchedule(LrScheduleKind.ConstantWithWarmup, 20, 1000);
        Assert.Equal(0.0, c.Factor(0));
        Assert.Equal(0.5, c.Factor(10));
        Assert.Equal(1.0, c.Factor(20));
        Assert.Equal(1.0, c.Factor(999));
        // linear: (total − step) / (total − warmup) after warm-up
        var l = new LrSchedule(LrScheduleKind.Linear, 10, 110);
        Assert.Equal(0.5, l.Factor(60), 12);
        Assert.Equal(0.0, l.Factor(110), 12);
        // cosine: 0.5 (1 + cos(π progress)); halfway = 0.5, a quarter = (1 + √½)/2
        var k = new LrSchedule(LrScheduleKind.Cosine, 10, 110);
        Assert.Equal(0.5, k.Factor(60), 12);
        Assert.Equal((1 + Math.Sqrt(0.5)) / 2, k.Factor(35), 12);
    }

    [Fact]
    public void SamplerIsSeededAndRestoresItsPosition()
    {
        using var dir = new TempDir();
        var bin = Path.Combine(dir.Path, "t.bin");
        using (var w = new TokenFileWriter(bin, "uint16")) { w.Add(Enumerable.Range(0, 100).ToArray()); w.Commit(); }
        using var f = TokenFile.Open(bin, 1000);
        var a = new TokenSampler(f, 10, seed: 3);
        var first = Enumerable.Range(0, 25).Select(_ => a.Next(1)[0]).ToList();     // 2.5 epochs of 10 windows
        Assert.Equal(Enumerable.Range(0, 10).Select(i => i * 10L).Order(), first.Take(10).Order());   // each window once per epoch
        Assert.NotEqual(first.Take(10), first.Skip(10).Take(10));                                      // a new order each epoch
        var b = new TokenSampler(f, 10, seed: 3);
        for (int i = 0; i < 13; i++) b.Next(1);
        var c = new TokenSampler(f, 10, seed: 3);
        c.Restore(b.State);
        Assert.Equal(first.Skip(13), Enumerable.Range(0, 12).Select(_ => c.Next(1)[0]));
        Assert.Equal(Enumerable.Range(30, 10).Select(i => (long)i), new TokenSampler(f, 10, 3, shuffle: false).Next(4).Skip(30).Take(10));
    }

    [Fact]
    public void ClipNormIsTorchs()
    {
        using var p = new TorchSharp.Modules.Parameter(TorchSharp.torch.zeros(2));
        p.grad = TorchSharp.torch.tensor(new float[] { 3, 4 });
        Assert.Equal(5.0, Trainer.ClipNorm(new[] { p }, 1.0), 5);
        Assert.Equal(1.0, p.grad!.norm().item<float>(), 4);   // scaled by 1 / (5 + 1e-6)
        Assert.Equal(1.0, Trainer.ClipNorm(new[] { p }, 2.0), 4);   // below the limit: untouched
        Assert.Equal(1.0, p.grad!.norm().item<float>(), 4);
    }
}
