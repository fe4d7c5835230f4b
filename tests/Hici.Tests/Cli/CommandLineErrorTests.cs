using Hici.Cli.Commands;
using Hici.IO;
using Hici.Tests.Models;
using TorchSharp;

namespace Hici.Tests.Cli;

/// <summary>
/// Mistakes on the command line itself (unknown flag or command, a value of the wrong type, out-of-range
/// --threads, --out into a missing folder, an absurd --max-new-tokens) are one line hici: error: …, exit 1.
/// </summary>
[Collection("Console")]
public class CommandLineErrorTests
{
    private static string Ids()
    {
        var p = Path.Combine(CliRunner.TempDir(), "ids.json");
        File.WriteAllText(p, "[1, 2, 3, 4]");
        return p;
    }

    [Theory]
    [InlineData("'--bogus'", "score", "--bogus")]
    [InlineData("'frobnicate'", "frobnicate")]
    [InlineData("--chunk 'abc': expected an integer", "score", "--model", "m", "--ids", "x", "--chunk", "abc")]
    [InlineData("--threads '99999999999': expected an integer", "doctor", "--threads", "99999999999")]
    [InlineData("--threads 0: must be between 1 and 1024", "doctor", "--threads", "0")]
    [InlineData("--threads -2: must be between 1 and 1024", "info", "--model", "m", "--threads", "-2")]
    [InlineData("--threads 100000: must be between 1 and 1024", "score", "--model", "m", "--ids", "x", "--threads", "100000")]
    [InlineData("--model", "score", "--ids", "x")]
    public void ParseErrorsAreOneLine(string expected, params string[] args)
    {
        var line = CliRunner.AssertOneLineError(CliRunner.Run(args));
        Assert.Contains(expected, line);
        Assert.Equal(1, CliRunner.Run(args).Code);
    }

    [Fact]
    public void HelpStillWorks()
    {
        var r = CliRunner.Run("score", "--help");
        Assert.Equal(0, r.Code);
        Assert.Contains("--threads", r.Out);
        Assert.Equal("", r.Err);
    }

    [Fact]
    public void ScoreOutIntoAMissingFolderFailsBeforeScoring()
    {
        var missing = Path.Combine(CliRunner.TempDir(), "no", "such", "out.json");
        var r = CliRunner.Run("score", "--model", ModelFixtures.Dir("qwen3-gqa"), "--ids", Ids(), "--out", missing, "--threads", "1");
        var line = CliRunner.AssertOneLineError(r);
        Assert.Contains($"--out {missing}: folder", line);
        Assert.DoesNotContain("perplexity", r.Out);   // refused before the model ran
        var dir = CliRunner.TempDir();
        Assert.Contains("is a folder", CliRunner.AssertOneLineError(CliRunner.Run("score", "--model", ModelFixtures.Dir("qwen3-gqa"), "--ids", Ids(), "--out", dir)));
    }

    [Fact]
    public void ScoreOutIsWrittenWithoutTempLeftovers()
    {
        var dir = CliRunner.TempDir();
        var o = Path.Combine(dir, "r.json");
        File.WriteAllText(o, "old");
        var r = CliRunner.Run("score", "--model", ModelFixtures.Dir("qwen3-gqa"), "--ids", Ids(), "--out", o, "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(o));
        Assert.Equal(3, doc.RootElement.GetProperty("logprobs").GetArrayLength());
        Assert.Equal(new[] { o }, Directory.GetFiles(dir));
    }

    [Fact]
    public void HugeMaxNewTokensIsRefusedBeforeAllocating()
    {
        var cfg = HfConfigReader.Read(ModelFixtures.Dir("qwen3-gqa"));
        // 2 layers × 2 KV heads × 32 × 2 (K, V) × 4 bytes = 1 KiB per position
        var e = Assert.Throws<HiciException>(() => GenerateCommand.CheckCacheFits(cfg, torch.ScalarType.Float32, 10, 2_000_000, 1L << 30));
        Assert.Contains("--max-new-tokens 2000000", e.Message);
        Assert.Contains("GiB", e.Message);
        GenerateCommand.CheckCacheFits(cfg, torch.ScalarType.Float32, 10, 1_000_000, 1L << 30);   // 0.95 GiB fits
        e = Assert.Throws<HiciException>(() => GenerateCommand.CheckCacheFits(cfg, torch.ScalarType.Float32, 10, int.MaxValue, long.MaxValue));
        Assert.Contains("--max-new-tokens 2147483647", e.Message);
    }

    [Fact]
    public void HugeMaxNewTokensOnTheCommandLine()
    {
        using var m = new TinyModelWithTokenizer();
        var line = CliRunner.AssertOneLineError(CliRunner.Run("generate", "--model", m.Dir, "--prompt", "hi", "--max-new-tokens", "2147483647"));
        Assert.Contains("--max-new-tokens 2147483647", line);
    }
}

[Collection("Console")]
public class AuditCausalityArgumentTests
{
    [Fact]
    public void IdsWithLengthIsContradictory()
    {
        var p = Path.Combine(CliRunner.TempDir(), "ids.json");
        File.WriteAllText(p, "[1, 2, 3, 4]");
        var line = CliRunner.AssertOneLineError(CliRunner.Run("audit-causality", "--model", ModelFixtures.Dir("qwen3-gqa"), "--ids", p, "--length", "5"));
        Assert.Contains("--ids FILE.json or --length N, not both", line);
    }

    [Fact]
    public void HugeLengthIsAUserErrorNotAnAllocationFailure()
    {
        var r = CliRunner.Run("audit-causality", "--model", ModelFixtures.Dir("qwen3-gqa"), "--length", "100000000");
        Assert.Equal(1, r.Code);
        var line = CliRunner.AssertOneLineError(r);
        Assert.Contains("--length 100000000: auditing 100000000 tokens in one forward needs about", line);
        Assert.Contains("--force", line);
    }
}
