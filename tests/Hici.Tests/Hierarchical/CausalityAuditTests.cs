using Hici.Loading;
using Hici.Hierarchical;
using Hici.Models;
using Hici.Tests.Cli;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Hierarchical;

/// <summary>
/// Pins which positions each HiCI mode lets see the future, on the tiny fixture models (T = 32, 4 segments of
/// 8, the token at 28 — the middle of the last segment — replaced): none → earlier segments move;
/// causal_gi / causal_gi_gonly → only earlier positions of the same segment move; causal_shift /
/// causal_shift_g and full attention → nothing earlier moves.
/// </summary>
[Collection("Console")]
public class CausalityAuditTests
{
    private static string Folder(string model) => Path.GetDirectoryName(Fixture.PathOf($"model-{model}/config.json"))!;

    private static AuditResult Audit(string model, AttentionKind kind, string mode, string forward = "train", int t = 32, int? position = null)
    {
        using var scope = NewDisposeScope();
        var hc = HiciConfig.Load(Folder(model)) with { CausalMode = HiciConfig.ParseCausalMode(mode), Forward = HiciConfig.ParseForward(forward) };
        var setting = TestAttention.Setting(kind, hc);
        using var m = ModelLoader.Load(new ModelLoadRequest(Folder(model)) { Attention = setting });
        var rng = new Random(5);
        var ids = Enumerable.Range(0, t).Select(_ => (long)rng.Next(256)).ToArray();
        var seg = CausalityAudit.Segments(setting, t);
        int p = position ?? CausalityAudit.DefaultPosition(seg, t);
        return CausalityAudit.Run(m.Model, ids, p, (ids[p] + 17) % 256, seg);
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("llama")]
    public void NoneLeaksIntoEarlierSegments(string model)
    {
        var r = Audit(model, AttentionKind.Hici, "none");
        Assert.Equal(28, r.Position);
        Assert.Equal(4, r.Blocks.Count);
        foreach (var b in r.Blocks.Take(3)) Assert.True(b.Moved == b.Earlier && b.Earlier == 8, $"segment {b.Index}: {b.Moved}/{b.Earlier}");
        Assert.False(r.IsCausal);
        Assert.StartsWith("LEAKS: positions 0-27", r.Verdict);
    }

    [Theory]
    [InlineData("qwen3", "causal_gi")]
    [InlineData("llama", "causal_gi")]
    [InlineData("qwen3", "causal_gi_gonly")]
    [InlineData("llama", "causal_gi_gonly")]
    public void CausalGiLeaksOnlyInsideTheSegment(string model, string mode)
    {
        var r = Audit(model, AttentionKind.Hici, mode);
        foreach (var b in r.Blocks.Take(3)) Assert.Equal(0, b.Moved);
        Assert.Equal(4, r.Blocks[3].Earlier);
        Assert.Equal(4, r.Blocks[3].Moved);
        Assert.Equal("LEAKS: positions 24-27 before the perturbed token changed", r.Verdict);
    }

    [Theory]
    [InlineData("qwen3", "causal_shift", "train")]
    [InlineData("llama", "causal_shift", "train")]
    [InlineData("qwen3", "causal_shift_g", "train")]
    [InlineData("llama", "causal_shift_g", "train")]
    [InlineData("qwen3", "causal_shift", "inference")]
    public void ShiftModesAreCausal(string model, string mode, string forward)
    {
        int t = forward == "inference" ? 30 : 32;                  // inference: S = 7, padded to 35
        foreach (int p in new[] { 9, 20, t - 2 })
        {
            var r = Audit(model, AttentionKind.Hici, mode, forward, t, p);
            Assert.True(r.IsCausal, $"{model} {mode} {forward} position {p}: {r.Verdict}");
            Assert.True(r.LaterMoved > 0, "the replacement must reach later positions");
        }
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("llama")]
    public void FullAttentionIsCausal(string model)
    {
        var r = Audit(model, AttentionKind.Full, "none");
        Assert.Equal(16, r.Position);
        Assert.True(r.IsCausal, r.Verdict);
        Assert.Equal(15, r.LaterMoved);
        Assert.All(r.Delta.Take(16), d => Assert.Equal(0f, d));
    }

    [Fact]
    public void CliPrintsTheTableAndVerdict()
    {
        var r = CliRunner.Run("audit-causality", "--model", Folder("qwen3"), "--attention", "hici", "--causal-mode", "causal_gi", "--length", "32", "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        var lines = r.Out.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("0        0-7         0 / 8"));
        Assert.Contains(lines, l => l.StartsWith("3        24-31       4 / 4") && l.EndsWith("← perturbed token"));
        Assert.Contains("verdict     LEAKS: positions 24-27 before the perturbed token changed", r.Out);

        r = CliRunner.Run("audit-causality", "--model", Folder("llama"), "--attention", "hici", "--causal-mode", "causal_shift", "--length", "32", "--position", "13", "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("verdict     causal", r.Out);

        var e = CliRunner.AssertOneLineError(CliRunner.Run("audit-causality", "--model", Folder("llama"), "--length", "32", "--position", "32"));
        Assert.Contains("--position 32 is outside 1..31", e);
        e = CliRunner.AssertOneLineError(CliRunner.Run("audit-causality", "--model", Folder("llama"), "--attention", "hici", "--length", "30"));
        Assert.Contains("not a multiple of the segment length", e);
    }
}
