using System.Text.Json;
using Hici.Tests.Cli;

namespace Hici.Tests.Evaluation;

/// <summary>`hici eval attention-stats` on the HiCI fixture model (tests/fixtures/hici/model-qwen3: M=4, K=2).</summary>
[Collection("Console")]
public class AttentionStatsTests
{
    private static readonly string Model = Path.Combine(TestPaths.Fixtures, "hici", "model-qwen3");

    private static string Ids(string dir, int n)
    {
        var p = Path.Combine(dir, "ids.json");
        File.WriteAllText(p, "[" + string.Join(",", Enumerable.Range(0, n).Select(i => (i * 37 + 11) % 200)) + "]");
        return p;
    }

    /// <summary>Runs attention-stats with segments of 16 in <paramref name="mode"/>; returns the JSON and the output folder.</summary>
    private static (JsonDocument Doc, string Dir) Run(string mode, int tokens)
    {
        var dir = CliRunner.TempDir();
        var outPath = Path.Combine(dir, "stats.json");
        var r = CliRunner.Run("eval", "attention-stats", "--model", Model, "--attention", "hici", "--causal-mode", mode,
            "--segment-size", "16", "--ids", Ids(dir, tokens), "--out", outPath, "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        return (JsonDocument.Parse(File.ReadAllText(outPath)), dir);
    }

    [Fact]
    public void SharesSumToOneAndTheShiftedFirstSegmentHasNoMemory()
    {
        var (doc, dir) = Run("causal_shift", 64);
        Assert.Equal(4, doc.RootElement.GetProperty("segments").GetInt32());
        var layers = doc.RootElement.GetProperty("layers").EnumerateArray().ToList();
        Assert.Equal(2, layers.Count);
        foreach (var l in layers)
        {
            Assert.Equal(1.0, l.GetProperty("global").GetDouble() + l.GetProperty("local").GetDouble() + l.GetProperty("tokens").GetDouble(), 5);
            var g = l.GetProperty("global_per_segment").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            var lo = l.GetProperty("local_per_segment").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            Assert.Equal(0.0, g[0]);                      // causal_shift: segment 0 sees no memory
            Assert.Equal(0.0, lo[0]);
            Assert.All(g.Skip(1).Concat(lo.Skip(1)), x => Assert.True(x > 0 && x < 1));
        }
        foreach (var png in new[] { "stats.png", "stats.heatmap.png" })
            Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, File.ReadAllBytes(Path.Combine(dir, png))[..4]);
    }

    [Fact]
    public void GOnlyModesPutNoMassOnLocalSlots()
    {
        var (doc, _) = Run("causal_shift_g", 48);
        foreach (var l in doc.RootElement.GetProperty("layers").EnumerateArray())
        {
            Assert.Equal(0.0, l.GetProperty("local").GetDouble());
            Assert.True(l.GetProperty("global").GetDouble() > 0);
        }
    }

    public static IEnumerable<object[]> ReferenceCases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestPaths.Fixtures, "eval", "attention_stats.json")));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new object[] { c.GetProperty("mode").GetString()! }).ToList();
    }

    /// <summary>Against tools/make_attention_stats_fixtures.py (the reference HiCI attention, its softmax rows summed per key range).</summary>
    [Theory]
    [MemberData(nameof(ReferenceCases))]
    public void MassEqualsTheIndependentComputation(string mode)
    {
        using var fx = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestPaths.Fixtures, "eval", "attention_stats.json")));
        var c = fx.RootElement.GetProperty("cases").EnumerateArray().Single(e => e.GetProperty("mode").GetString() == mode);
        var (doc, _) = Run(mode, c.GetProperty("tokens").GetInt32());
        var layers = doc.RootElement.GetProperty("layers").EnumerateArray().ToList();
        foreach (var (ours, theirs) in new[] { ("global_per_segment", "global_per_segment"), ("local_per_segment", "local_per_segment") })
            for (int l = 0; l < layers.Count; l++)
            {
                var a = layers[l].GetProperty(ours).EnumerateArray().Select(e => e.GetDouble()).ToArray();
                var b = c.GetProperty(theirs)[l].EnumerateArray().Select(e => e.GetDouble()).ToArray();
                Assert.Equal(b.Length, a.Length);
                for (int s = 0; s < a.Length; s++) Assert.True(Math.Abs(a[s] - b[s]) < 1e-5, $"{mode} layer {l} {ours}[{s}]: {a[s]} vs {b[s]}");
            }
    }

    [Fact]
    public void FullAttentionIsRefused()
    {
        var dir = CliRunner.TempDir();
        var e = CliRunner.AssertOneLineError(CliRunner.Run("eval", "attention-stats", "--model", Model, "--ids", Ids(dir, 32), "--out", Path.Combine(dir, "s.json")));
        Assert.Contains("--attention hici", e);
    }
}
