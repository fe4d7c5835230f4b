using Hici.Evaluation;
using Hici.Tests.Cli;
using Hici.Tests.Hierarchical;

namespace Hici.Tests.Evaluation;

/// <summary>
/// `hici eval ppl --stream` (segment-by-segment HiCI) gives the windows' NLL of the one-shot forward in the
/// causal modes, and refuses the modes in which a segment's memory depends on its own tokens.
/// </summary>
[Collection("Console")]
public class PerplexityStreamTests
{
    private static string Folder => Path.GetDirectoryName(Fixture.PathOf("model-qwen3/config.json"))!;

    private static string TokenFile()
    {
        var dir = CliRunner.TempDir();
        var path = Path.Combine(dir, "tokens.bin");
        var gen = new Random(11);
        using (var w = new BinaryWriter(File.Create(path)))
            for (int i = 0; i < 200; i++) w.Write((ushort)gen.Next(256));   // vocabulary 256 fits uint16
        return path;
    }

    private static string[] Args(string data, string outPath, string mode, params string[] extra) =>
        new[] { "eval", "ppl", "--model", Folder, "--data", data, "--seq-len", "48", "--stride", "40", "--out", outPath,
                "--attention", "hici", "--causal-mode", mode, "--segment-size", "12", "--threads", "1" }.Concat(extra).ToArray();

    [Theory]
    [InlineData("causal_shift")]
    [InlineData("causal_shift_g")]
    public void StreamedWindowsEqualOneShot(string mode)
    {
        var data = TokenFile();
        var dir = CliRunner.TempDir();
        var oneShot = CliRunner.Run(Args(data, Path.Combine(dir, "a.json"), mode));
        Assert.True(oneShot.Code == 0, oneShot.Err);
        var streamed = CliRunner.Run(Args(data, Path.Combine(dir, "b.json"), mode, "--stream"));
        Assert.True(streamed.Code == 0, streamed.Err);
        Assert.Contains("streamed", streamed.Err);
        var a = Perplexity.Read(Path.Combine(dir, "a.json"));
        var b = Perplexity.Read(Path.Combine(dir, "b.json"));
        Assert.Equal(4, a.Windows);                                   // starts 0, 40, 80, 120 (< 200 − 48)
        Assert.Equal(a.Windows, b.Windows);
        for (int w = 0; w < a.Windows; w++)
            Assert.True(Math.Abs(a.WindowNll[w].Nll - b.WindowNll[w].Nll) / 47 < 1e-5, $"window {w}: {a.WindowNll[w].Nll} vs {b.WindowNll[w].Nll}");
    }

    [Fact]
    public void StreamRefusesALeakingMode()
    {
        var data = TokenFile();
        var r = CliRunner.Run(Args(data, Path.Combine(CliRunner.TempDir(), "c.json"), "causal_gi", "--stream"));
        Assert.Contains("causal_shift", CliRunner.AssertOneLineError(r));
    }
}
