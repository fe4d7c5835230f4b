using Hici.Text;

namespace Hici.Tests.Text;

/// <summary>Bad tokenizer folders fail with a HiciException that names the file and the problem.</summary>
public sealed class HostileInputTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("hici-tok-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    const string Minimal = """{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}""";

    string Write(string json, string name = "tokenizer.json")
    {
        File.WriteAllText(Path.Combine(_dir, name), json);
        return _dir;
    }

    static string Fails(string path)
    {
        var e = Assert.Throws<HiciException>(() => HfTokenizer.Load(path));
        return e.Message;
    }

    [Fact]
    public void MinimalBpeLoads() => Assert.Equal([2, 0], HfTokenizer.Load(Write(Minimal)).Encode("aba"));

    [Fact]
    public void MissingPath() => Assert.Contains("not found", Fails(Path.Combine(_dir, "nope")));

    [Fact]
    public void FolderWithoutTokenizerJson() => Assert.Contains("no tokenizer.json", Fails(_dir));

    [Fact]
    public void TruncatedJson()
    {
        var real = File.ReadAllText(Path.Combine(TestData.TokenizerDir("qwen3"), "tokenizer.json"));
        var msg = Fails(Write(real[..5000]));
        Assert.Contains("tokenizer.json", msg);
        Assert.Contains("not valid JSON", msg);
    }

    [Fact]
    public void NotAnObject() => Assert.Contains("expected a JSON object", Fails(Write("[1, 2]")));

    [Theory]
    [InlineData("WordPiece")]
    [InlineData("Unigram")]
    [InlineData("WordLevel")]
    public void UnsupportedModelType(string type)
    {
        var msg = Fails(Write("{\"model\": {\"type\": \"" + type + "\", \"vocab\": {\"a\": 0}}}"));
        Assert.Contains("tokenizer.json", msg);
        Assert.Contains($"'{type}' is not supported", msg);
    }

    [Fact]
    public void UnsupportedPreTokenizer()
    {
        var msg = Fails(Write(Minimal.Replace("{\"model\"", "{\"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}, \"model\"")));
        Assert.Contains("pre_tokenizer.type", msg);
        Assert.Contains("BertPreTokenizer", msg);
    }

    [Fact]
    public void MergeOfUnknownToken() => Assert.Contains("model.merges[0]", Fails(Write(Minimal.Replace("\"a b\"", "\"a c\""))));

    [Fact]
    public void NegativeId() => Assert.Contains("model.vocab[\"b\"]", Fails(Write(Minimal.Replace("\"b\": 1", "\"b\": -1"))));

    [Fact]
    public void DuplicateId() => Assert.Contains("used by two tokens", Fails(Write(Minimal.Replace("\"b\": 1", "\"b\": 0"))));

    [Fact]
    public void BadRegex()
    {
        var msg = Fails(Write(Minimal.Replace("{\"model\"", "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}, \"model\"")));
        Assert.Contains("Split pattern", msg);
    }

    [Fact]
    public void OversizedFile()
    {
        using (var f = File.Create(Path.Combine(_dir, "tokenizer.json"))) f.SetLength(600L << 20); // sparse
        Assert.Contains("limit", Fails(_dir));
    }

    [Fact]
    public void BadConfigJson()
    {
        Write(Minimal);
        Write("{\"bos_token\": ", "tokenizer_config.json");
        Assert.Contains("tokenizer_config.json", Fails(_dir));
    }

    [Fact]
    public void WrongFieldType() => Assert.Contains("model.merges", Fails(Write(Minimal.Replace("[\"a b\"]", "42"))));
}
