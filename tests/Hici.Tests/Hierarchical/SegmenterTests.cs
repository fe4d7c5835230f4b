using Hici.Hierarchical;
using Hici.IO;
using Hici.Models;
using TorchSharp;

namespace Hici.Tests.Hierarchical;

/// <summary>The segmenter belongs to the model, is seeded, and its random state can be saved and restored.</summary>
public class SegmenterTests
{
    private static readonly HiciConfig Mixed = new() { MixedSegmentRatios = HiciConfig.DefaultMixedRatios };

    private static int[] Draws(HiciSegmenter s, int n) =>
        Enumerable.Range(0, n).Select(_ => s.TrainingSegmentSize(64, layerIdx: 0, training: true)).ToArray();

    [Fact]
    public void SameSeedSameDrawsOtherSeedOtherDraws()
    {
        var a = Draws(new HiciSegmenter(Mixed, seed: 7), 40);
        Assert.Equal(a, Draws(new HiciSegmenter(Mixed, seed: 7), 40));
        Assert.NotEqual(a, Draws(new HiciSegmenter(Mixed, seed: 8), 40));
        Assert.Equal(new[] { 8, 16, 32 }, a.Distinct().OrderBy(x => x));   // every ratio of the list is drawn
    }

    [Fact]
    public void RestoredStateContinuesTheSameSequence()
    {
        var s = new HiciSegmenter(Mixed, seed: 11);
        Draws(s, 13);
        var saved = s.GetState();
        var expected = Draws(s, 25);
        int lastRatioSize = s.TrainingSegmentSize(64, layerIdx: 3, training: true);

        var resumed = new HiciSegmenter(Mixed, seed: 999);     // another seed: the state alone decides
        resumed.SetState(saved);
        Assert.Equal(expected, Draws(resumed, 25));
        Assert.Equal(lastRatioSize, resumed.TrainingSegmentSize(64, layerIdx: 3, training: true));   // later layers reuse the draw
    }

    [Fact]
    public void DrawsAreRoughlyUniform()
    {
        var counts = Draws(new HiciSegmenter(Mixed, seed: 1), 3000).GroupBy(x => x).ToDictionary(g => g.Key, g => g.Count());
        foreach (var c in counts.Values) Assert.InRange(c, 900, 1100);   // 1000 expected; ±3.2σ
    }

    [Fact]
    public void OneSegmenterPerModelSharedByItsLayersAndSeededFromTheOptions()
    {
        var cfg = HfConfigReader.Read(Fixture.PathOf("model-qwen3/config.json"));
        var hc = HiciConfig.Load(Path.GetDirectoryName(Fixture.PathOf("model-qwen3/config.json"))!) with { MixedSegmentRatios = HiciConfig.DefaultMixedRatios };
        using var a = CausalLM.Create(cfg with { Attention = HiciAttentionOptions.Setting(hc, segmenterSeed: 5) }, torch.ScalarType.Float32);
        using var b = CausalLM.Create(cfg with { Attention = HiciAttentionOptions.Setting(hc, segmenterSeed: 5) }, torch.ScalarType.Float32);
        var segA = HiciImplementation.SegmenterOf(a)!;
        Assert.All(a.model.layers, l => Assert.Same(segA, ((HiciAttention)l.self_attn).Segmenter));
        Assert.NotSame(segA, HiciImplementation.SegmenterOf(b));                 // no state shared between models
        Assert.Equal(segA.GetState(), HiciImplementation.SegmenterOf(b)!.GetState());
        Assert.Equal(Draws(segA, 20), Draws(HiciImplementation.SegmenterOf(b)!, 20));
    }
}
