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
    [InlineData("Required command", new string[0])]
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
}
