using Hici.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Generation;

public class SamplerTests
{
    static Tensor Logits() => tensor(new float[] { 1.0f, 3.0f, 2.0f, 0.5f, -1.0f });

    [Fact]
    public void GreedyPicksArgmax()
    {
        using var s = new Sampler(new SamplingOptions());
        Assert.Equal(1, s.Next(Logits()));
    }

    [Fact]
    public void TopKOneIsGreedyWhateverTheSeed()
    {
        for (int seed = 0; seed < 20; seed++)
        {
            using var s = new Sampler(new SamplingOptions { Temperature = 5.0, TopK = 1, Seed = seed });
            Assert.Equal(1, s.Next(Logits()));
        }
    }

    [Fact]
    public void TopKMasksAllButKLargest()
    {
        using var s = new Sampler(new SamplingOptions { Temperature = 1.0, TopK = 2, Seed = 1 });
        var w = s.Warp(Logits()).data<float>().ToArray();
        Assert.Equal(new[] { false, true, true, false, false }, w.Select(float.IsFinite).ToArray());
    }

    [Fact]
    public void TopPKeepsSmallestSetReachingP()
    {
        // probs of [1,3,2,0.5,-1] ≈ [0.0869, 0.6422, 0.2362, 0.0527, 0.0118]
        using var s = new Sampler(new SamplingOptions { Temperature = 1.0, TopP = 0.7, Seed = 1 });
        var w = s.Warp(Logits()).data<float>().ToArray();
        Assert.Equal(new[] { false, true, true, false, false }, w.Select(float.IsFinite).ToArray());
        using var s2 = new Sampler(new SamplingOptions { Temperature = 1.0, TopP = 0.5, Seed = 1 });
        var w2 = s2.Warp(Logits()).data<float>().ToArray();
        Assert.Equal(new[] { false, true, false, false, false }, w2.Select(float.IsFinite).ToArray());
    }

    [Fact]
    public void SameSeedSameSamplesAndFrequenciesFollowSoftmax()
    {
        var a = new List<long>(); var b = new List<long>();
        using (var s = new Sampler(new SamplingOptions { Temperature = 1.0, Seed = 7 })) for (int i = 0; i < 2000; i++) a.Add(s.Next(Logits()));
        using (var s = new Sampler(new SamplingOptions { Temperature = 1.0, Seed = 7 })) for (int i = 0; i < 2000; i++) b.Add(s.Next(Logits()));
        Assert.Equal(a, b);
        double f1 = a.Count(x => x == 1) / 2000.0;
        Assert.InRange(f1, 0.642 - 0.04, 0.642 + 0.04);
    }

    [Theory]
    [InlineData(-1.0, 0, 1.0)]
    [InlineData(1.0, -3, 1.0)]
    [InlineData(1.0, 0, 0.0)]
    [InlineData(1.0, 0, 1.5)]
    public void BadOptionsAreRejected(double t, int k, double p)
        => Assert.Throws<HiciException>(() => new Sampler(new SamplingOptions { Temperature = t, TopK = k, TopP = p }));
}

public class StopStringMatcherTests
{
    [Fact]
    public void HoldsBackPrefixAndCutsAtStop()
    {
        var m = new StopStringMatcher(new[] { "</end>" });
        Assert.Equal("Hello ", m.Push("Hello </"));
        Assert.Equal("", m.Push("en"));
        Assert.Equal("", m.Push("d> more"));
        Assert.True(m.Stopped);
    }

    [Fact]
    public void ReleasesHeldTextWhenItTurnsOutNotToBeAStop()
    {
        var m = new StopStringMatcher(new[] { "STOP" });
        Assert.Equal("a", m.Push("aST"));
        Assert.Equal("STx", m.Push("x"));
        Assert.Equal("", m.Push("S"));
        Assert.Equal("S", m.Flush());
        Assert.False(m.Stopped);
    }
}
