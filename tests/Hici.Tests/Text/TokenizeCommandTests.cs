using Hici.Tests.Cli;

namespace Hici.Tests.Text;

/// <summary>Runs `hici tokenize` in-process through the real command tree (CliRunner), capturing the
/// console; in the shared "Console" collection because Console is process-wide.</summary>
[Collection("Console")]
public sealed class TokenizeCommandTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("hici-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static (int Code, string Out, string Err) Hici(params string[] args) => CliRunner.Run(args);

    static string Tok(string name) => TestData.TokenizerDir(name);

    /// <summary>The ids printed for a reference text are the reference ids.</summary>
    [Theory]
    [InlineData("llama2", true)]
    [InlineData("qwen3", false)]
    public void TextPrintsReferenceIds(string tokenizer, bool addSpecial)
    {
        var expected = TokenizerFixtures.Expected(tokenizer, "special_qwen");
        var (code, stdout, stderr) = Hici("tokenize", "--tokenizer", Tok(tokenizer), "--text",
            TokenizerFixtures.Texts["special_qwen"].Text, "--add-special-tokens", addSpecial ? "true" : "false");
        Assert.True(code == 0, stderr);
        Assert.Equal($"[{string.Join(',', addSpecial ? expected.Ids : expected.IdsNoSpecial)}]", stdout.Trim());
    }

    [Fact]
    public void JsonlPrintsOneLinePerText()
    {
        var path = Path.Combine(_dir, "in.jsonl");
        string[] names = ["prose", "emoji", "empty"];
        File.WriteAllLines(path, names.Select(n => System.Text.Json.JsonSerializer.Serialize(new { text = TokenizerFixtures.Texts[n].Text, id = n })).Append(""));
        var (code, stdout, stderr) = Hici("tokenize", "--tokenizer", Tok("llama3"), "--input-jsonl", path);
        Assert.True(code == 0, stderr);
        var expected = names.Select(n => $"{{\"ids\":[{string.Join(',', TokenizerFixtures.Expected("llama3", n).Ids)}]}}");
        Assert.Equal(expected, stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')));
    }

    [Fact]
    public void BadJsonlLineNamesFileAndLine()
    {
        var path = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllLines(path, ["{\"text\": \"ok\"}", "", "{\"txt\": 1}"]);
        var (code, _, stderr) = Hici("tokenize", "--tokenizer", Tok("qwen3"), "--input-jsonl", path);
        Assert.Equal(1, code);
        Assert.Contains($"{path}:3:", CliRunner.AssertOneLineError((code, "", stderr)));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void NeedsExactlyOneInput(bool both)
    {
        var args = new List<string> { "tokenize", "--tokenizer", Tok("qwen3") };
        if (both) args.AddRange(["--text", "x", "--input-jsonl", Path.Combine(_dir, "x.jsonl")]);
        var (code, stdout, stderr) = Hici([.. args]);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Contains("exactly one of --text or --input-jsonl", stderr);
    }

    [Fact]
    public void MissingTokenizerFolderIsAnError()
    {
        var (code, _, stderr) = Hici("tokenize", "--tokenizer", Path.Combine(_dir, "none"), "--text", "x");
        Assert.Equal(1, code);
        Assert.Contains("not found", stderr);
    }
}
