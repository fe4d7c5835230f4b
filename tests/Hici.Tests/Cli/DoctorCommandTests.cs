namespace Hici.Tests.Cli;

[Collection("Console")]
public class DoctorCommandTests
{
    [Fact]
    public void ReportsVersionsThreadsAndALoadedBackend()
    {
        int n = Environment.ProcessorCount;   // what every other test runs with, so nothing slows down after this
        var r = CliRunner.Run("doctor", "--threads", n.ToString());
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("native backend    loads", r.Out);
        Assert.Contains("libtorch          2.10", r.Out);
        Assert.Contains("TorchSharp        0.107", r.Out);
        Assert.Contains($"threads           {n} intra-op", r.Out);
        Assert.Matches(@"matmul 512³ fp32  \d+ GFLOP/s", r.Out);
    }

    [Fact]
    public void QuietPrintsNothingAndSucceeds()
    {
        var r = CliRunner.Run("doctor", "--quiet");
        Assert.Equal(0, r.Code);
        Assert.Equal("", r.Out);
    }

    [Fact]
    public void HelpListsEveryCommand()
    {
        var r = CliRunner.Run("--help");
        foreach (var c in new[] { "doctor", "info", "score", "generate", "tokenize" })
            Assert.Matches($@"(?m)^\s+{c}\s", r.Out);
    }

    [Fact]
    public void BareHiciShowsTheCommandsAndFails()
    {
        var r = CliRunner.Run();
        Assert.Equal(1, r.Code);
        Assert.Matches(@"(?m)^\s+score\s", r.Out);
        Assert.Equal("", r.Err);
    }
}
