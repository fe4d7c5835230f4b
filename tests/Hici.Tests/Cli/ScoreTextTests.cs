using System.Text.Json;
using Hici.Tests.Text;

namespace Hici.Tests.Cli;

/// <summary>
/// `hici score --text`: the text is encoded exactly as the reference tokenizer (transformers.js fixtures)
/// encodes it, so scoring the text equals scoring those reference ids.
/// </summary>
[Collection("Console")]
public class ScoreTextTests : IDisposable
{
    private readonly TinyModelWithTokenizer _model = new("llama2");
    public void Dispose() => _model.Dispose();

    private static double[] LogProbs(string outFile) =>
        JsonDocument.Parse(File.ReadAllText(outFile)).RootElement.GetProperty("logprobs").EnumerateArray().Select(e => e.GetDouble()).ToArray();

    [Theory]
    [InlineData("prose")]
    [InlineData("emoji")]
    [InlineData("cjk")]
    public void TextScoresLikeTheReferenceIds(string caseName)
    {
        if (!TokenizerFixtures.Texts.ContainsKey(caseName)) Assert.Fail($"no parity case '{caseName}' in tests/fixtures/tokenizers/texts.json");
        var text = TokenizerFixtures.Texts[caseName].Text;
        var ids = TokenizerFixtures.Expected("llama2", caseName).Ids;      // with BOS, as add_special_tokens=True
        var dir = _model.Dir;
        var textFile = Path.Combine(dir, "in.txt");
        File.WriteAllText(textFile, text, new System.Text.UTF8Encoding(true));   // with a BOM, which is not text
        var idsFile = Path.Combine(dir, "ids.json");
        File.WriteAllText(idsFile, JsonSerializer.Serialize(ids));

        var a = CliRunner.Run("score", "--model", dir, "--text", textFile, "--out", Path.Combine(dir, "a.json"));
        Assert.True(a.Code == 0, a.Err);
        var b = CliRunner.Run("score", "--model", dir, "--ids", idsFile, "--out", Path.Combine(dir, "b.json"));
        Assert.True(b.Code == 0, b.Err);
        var la = LogProbs(Path.Combine(dir, "a.json"));
        Assert.Equal(ids.Length - 1, la.Length);
        Assert.Equal(LogProbs(Path.Combine(dir, "b.json")), la);
    }

    [Fact]
    public void BadTextInputIsAOneLineError()
    {
        var dir = _model.Dir;
        var bad = Path.Combine(dir, "bad.txt");
        File.WriteAllBytes(bad, new byte[] { 0x41, 0xff, 0xfe, 0x42 });
        Assert.Contains("not valid UTF-8", CliRunner.AssertOneLineError(CliRunner.Run("score", "--model", dir, "--text", bad)));
        Assert.Contains("no such file", CliRunner.AssertOneLineError(CliRunner.Run("score", "--model", dir, "--text", Path.Combine(dir, "missing.txt"))));
        var ok = Path.Combine(dir, "ok.txt");
        File.WriteAllText(ok, "Some text to score.");
        var line = CliRunner.AssertOneLineError(CliRunner.Run("score", "--model", dir, "--text", ok, "--tokenizer", TestData.TokenizerDir("qwen3")));
        Assert.Contains("do not belong together", line);
    }

    [Fact]
    public void TokenizerFlagNeedsText()
    {
        var ids = Path.Combine(_model.Dir, "ids.json");
        File.WriteAllText(ids, "[1, 2, 3]");
        Assert.Contains("--tokenizer", CliRunner.AssertOneLineError(CliRunner.Run("score", "--model", _model.Dir, "--ids", ids, "--tokenizer", _model.Dir)));
    }
}
