namespace Hici.Tests.Text;

/// <summary>Ids and decoded text must equal the independent reference (transformers.js), case by case.</summary>
public class TokenizerParityTests
{
    public static TheoryData<string, string> StrictCases => TokenizerFixtures.Cases(strict: true);
    public static TheoryData<string, string> DivergentCases => TokenizerFixtures.Cases(strict: false);
    public static TheoryData<string, string> AllCases => TokenizerFixtures.Cases(strict: null);

    [Theory]
    [MemberData(nameof(StrictCases))]
    public void EncodeMatchesReference(string tokenizer, string caseName)
    {
        var tok = TestData.Tokenizer(tokenizer);
        var text = TokenizerFixtures.Texts[caseName].Text;
        var expected = TokenizerFixtures.Expected(tokenizer, caseName);
        Assert.Equal(expected.Ids, tok.Encode(text, addSpecialTokens: true));
        Assert.Equal(expected.IdsNoSpecial, tok.Encode(text, addSpecialTokens: false));
    }

    [Theory]
    [MemberData(nameof(StrictCases))]
    public void DecodeMatchesReference(string tokenizer, string caseName)
    {
        var tok = TestData.Tokenizer(tokenizer);
        var expected = TokenizerFixtures.Expected(tokenizer, caseName);
        Assert.Equal(expected.Decoded, tok.Decode(expected.Ids));
        Assert.Equal(expected.DecodedSkipSpecial, tok.Decode(expected.Ids, skipSpecialTokens: true));
    }

    /// <summary>Streaming must add up to the full decode, whatever byte sequences tokens split.</summary>
    [Theory]
    [MemberData(nameof(AllCases))]
    public void StreamingDecodeAddsUpToDecode(string tokenizer, string caseName)
    {
        var tok = TestData.Tokenizer(tokenizer);
        var ids = TokenizerFixtures.Expected(tokenizer, caseName).Ids;
        var stream = tok.CreateStreamDecoder();
        var sb = new System.Text.StringBuilder();
        foreach (var id in ids)
        {
            var chunk = stream.Step(id);
            if (chunk is not null)
            {
                Assert.DoesNotContain('\uFFFD', chunk);
                sb.Append(chunk);
            }
        }
        sb.Append(stream.Flush());
        Assert.Equal(tok.Decode(ids, cleanUpTokenizationSpaces: false), sb.ToString());
    }

    /// <summary>The listed divergences are real (so docs/tokenizers.md stays true) and our ids still
    /// decode back to the text.</summary>
    [Theory]
    [MemberData(nameof(DivergentCases))]
    public void DivergentCasesDifferFromTransformersJs(string tokenizer, string caseName)
    {
        var tok = TestData.Tokenizer(tokenizer);
        var text = TokenizerFixtures.Texts[caseName].Text;
        var ids = tok.Encode(text, addSpecialTokens: false);
        Assert.NotEqual(TokenizerFixtures.Expected(tokenizer, caseName).IdsNoSpecial, ids);
        Assert.Equal(text, tok.Decode(ids, cleanUpTokenizationSpaces: false));
    }

    /// <summary>A result of the Python `tokenizers` library on the same Qwen3 tokenizer.json, reported in
    /// invergent-ai/surogate#176: "!" + U+0085 pre-tokenizes to ["!", "\u0085"], ids [0, 126, 227].</summary>
    [Fact]
    public void Qwen3NextLineMatchesHfPython()
    {
        Assert.Equal([0, 126, 227], TestData.Tokenizer("qwen3").Encode("!\u0085"));
    }

    public static TheoryData<string> Tokenizers => new(TestData.TokenizerNames);

    [Theory]
    [MemberData(nameof(Tokenizers))]
    public void VocabularyMatchesReference(string tokenizer)
    {
        var tok = TestData.Tokenizer(tokenizer);
        var meta = TokenizerFixtures.ExpectedMeta(tokenizer);
        Assert.Equal(meta.VocabSize, tok.VocabSize);
        Assert.Equal(meta.BosTokenId, tok.BosId);
        Assert.Equal(meta.EosTokenId, tok.EosId);
        Assert.Equal(meta.AddedTokens.Select(t => (t[0].GetInt32(), t[1].GetString(), t[2].GetBoolean())),
            tok.AddedTokens.Select(t => (t.Id, (string?)t.Content, t.Special)));
        foreach (var t in tok.AddedTokens)
        {
            Assert.Equal(t.Id, tok.TokenToId(t.Content));
            Assert.Equal(t.Content, tok.IdToToken(t.Id));
        }
        Assert.Contains(tok.EosId!.Value, tok.EosIds);
    }
}
