using System.Text.Json;
using Hici.Evaluation;
using Hici.Models;
using Hici.Tests.Cli;
using Hici.Tests.Models;

namespace Hici.Tests.Evaluation;

/// <summary>
/// `hici eval ppl` against tools/make_ppl_fixtures.py: the reference protocol (windows, all positions, fp32
/// log-softmax, RoPE from the context size) computed independently in torch on the tiny fixture models.
/// </summary>
[Collection("Console")]
public class PerplexityTests
{
    private static readonly string Dir = Path.Combine(TestPaths.Fixtures, "eval", "ppl");
    private static string Bin => Path.Combine(Dir, "tokens.bin");

    public static IEnumerable<object[]> Cases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Dir, "expected.json")));
        int i = 0;
        foreach (var _ in doc.RootElement.GetProperty("cases").EnumerateArray()) yield return new object[] { i++ };
    }

    private static JsonElement Case(int i) =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Dir, "expected.json"))).RootElement.GetProperty("cases")[i];

    private static string[] Args(JsonElement c, string outPath, params string[] extra) =>
        new[] { "eval", "ppl", "--model", ModelFixtures.Dir(c.GetProperty("model").GetString()!), "--data", Bin,
                "--seq-len", c.GetProperty("seq_len").ToString(), "--stride", c.GetProperty("stride").ToString(),
                "--context-size", c.GetProperty("context_size").ToString(), "--out", outPath, "--threads", "1" }.Concat(extra).ToArray();

    [Theory]
    [MemberData(nameof(Cases))]
    public void EqualsTheIndependentComputation(int index)
    {
        var c = Case(index);
        var outPath = Path.Combine(CliRunner.TempDir(), "ppl.json");
        var r = CliRunner.Run(Args(c, outPath));
        Assert.True(r.Code == 0, r.Err);
        var got = Perplexity.Read(outPath);
        var expected = c.GetProperty("window_nll").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(expected.Length, got.Windows);
        int per = c.GetProperty("seq_len").GetInt32() - 1;
        for (int w = 0; w < expected.Length; w++)
            Assert.True(Math.Abs(expected[w] / per - got.WindowNll[w].Nll / per) < 1e-5, $"window {w}: mean NLL {got.WindowNll[w].Nll / per} vs {expected[w] / per}");
        Assert.Equal(c.GetProperty("tokens").GetInt64(), got.Tokens);
        Assert.Equal(c.GetProperty("ppl").GetDouble(), got.Ppl, c.GetProperty("ppl").GetDouble() * 1e-4);
        Assert.False(File.Exists(outPath + ".partial.jsonl"));            // removed once the result is written
    }

    [Fact]
    public void ShardsMergeIntoExactlyTheUnshardedResult()
    {
        var c = Case(3);                                                   // 10 windows
        var dir = CliRunner.TempDir();
        Assert.Equal(0, CliRunner.Run(Args(c, Path.Combine(dir, "all.json"))).Code);
        var shards = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            var p = Path.Combine(dir, $"s{i}.json");
            var r = CliRunner.Run(Args(c, p, "--shard", $"{i}/3"));
            Assert.True(r.Code == 0, r.Err);
            shards.Add(p);
        }
        var m = CliRunner.Run(new[] { "eval", "merge-shards", shards[2], shards[0], shards[1], "--out", Path.Combine(dir, "merged.json") });
        Assert.True(m.Code == 0, m.Err);
        Assert.Equal(File.ReadAllText(Path.Combine(dir, "all.json")), File.ReadAllText(Path.Combine(dir, "merged.json")));
        var missing = CliRunner.Run(new[] { "eval", "merge-shards", shards[0], shards[1], "--out", Path.Combine(dir, "x.json") });
        Assert.Contains("shard 2/3 missing", CliRunner.AssertOneLineError(missing));
    }

    [Fact]
    public void AnInterruptedRunResumesToTheSameNumbers()
    {
        var c = Case(0);
        var o = new PerplexityOptions(256, 256, 256);
        var tokens = Perplexity.ReadTokens(Bin, 256);
        using var lm = Load(c);
        var whole = Perplexity.Run(lm, Bin, tokens, o, wholeSequence: false);
        var partial = Path.Combine(CliRunner.TempDir(), "ppl.json.partial.jsonl");
        var log = new ResumeLog<double>(partial, "test run") { FlushEvery = TimeSpan.Zero };
        Assert.Throws<OperationCanceledException>(() =>
            Perplexity.Run(lm, Bin, tokens, o, wholeSequence: false, log, (done, _) => { if (done == 2) throw new OperationCanceledException("killed"); }));
        var again = new ResumeLog<double>(partial, "test run");
        Assert.Equal(2, again.Resumed);
        int computed = 0;
        var resumed = Perplexity.Run(lm, Bin, tokens, o, wholeSequence: false, again, (_, _) => computed++);
        Assert.Equal(whole.Nll, resumed.Nll);                               // bit for bit
        Assert.Equal(whole.Ppl, resumed.Ppl);
        Assert.Throws<HiciException>(() => new ResumeLog<double>(partial, "another run"));
    }

    private static CausalLM Load(JsonElement c)
    {
        var dir = ModelFixtures.Dir(c.GetProperty("model").GetString()!);
        var cfg = Hici.IO.HfConfigReader.Read(dir);
        cfg = cfg with { RopeScaling = Perplexity.RopeScalingFor(cfg, c.GetProperty("context_size").GetInt32()) ?? cfg.RopeScaling };
        using var w = Hici.IO.SafeTensorsWeightSource.Open(dir);
        return CausalLM.Load(cfg, w, TorchSharp.torch.ScalarType.Float32);
    }

    [Fact]
    public void BadDataIsOneLineNamingTheFile()
    {
        var dir = CliRunner.TempDir();
        var c = Case(0);
        var shortBin = Path.Combine(dir, "short.bin");
        File.WriteAllBytes(shortBin, File.ReadAllBytes(Bin)[..512]);       // 256 tokens: no window of 256
        var e1 = CliRunner.AssertOneLineError(CliRunner.Run(Args(c, Path.Combine(dir, "o.json")).Select(a => a == Bin ? shortBin : a).ToArray()));
        Assert.Contains(shortBin, e1);
        Assert.Contains("no window", e1);
        var odd = Path.Combine(dir, "odd.bin");
        File.WriteAllBytes(odd, new byte[3]);
        Assert.Contains("not a whole number", CliRunner.AssertOneLineError(CliRunner.Run(Args(c, Path.Combine(dir, "o.json")).Select(a => a == Bin ? odd : a).ToArray())));
        var wide = Path.Combine(dir, "wide.bin");
        File.WriteAllBytes(wide, new byte[] { 1, 0, 0, 0, 44, 1, 0, 0 });  // uint32 ids 1, 300
        File.WriteAllText(wide + ".json", "{\"dtype\": \"uint32\"}");
        var e3 = CliRunner.AssertOneLineError(CliRunner.Run(Args(c, Path.Combine(dir, "o.json")).Select(a => a == Bin ? wide : a).ToArray()));
        Assert.Contains("token 1 is id 300, outside the model's vocabulary [0, 256)", e3);
    }

    [Fact]
    public void WindowsFollowTheReferenceRange()
    {
        Assert.Equal(new[] { 0, 256, 512 }, Perplexity.WindowStarts(1000, 256, 256));        // range(0, 744, 256)
        Assert.Equal(new[] { 0 }, Perplexity.WindowStarts(257, 256, 256));
        Assert.Empty(Perplexity.WindowStarts(256, 256, 256));
    }
}
