using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hici.Tests.Text;

/// <summary>The committed outputs of tools/tokenizer_reference.mjs (transformers.js).</summary>
internal static class TokenizerFixtures
{
    /// <param name="DivergentFor">Tokenizers for which transformers.js is known to differ from HF Python
    /// on this text (see docs/tokenizers.md); compared strictly for all others.</param>
    public sealed record TextCase(string Name, string Text,
        [property: JsonPropertyName("divergent_for")] string[] DivergentFor, string? Note);

    public sealed record ExpectedCase(
        string Name,
        int[] Ids,
        [property: JsonPropertyName("ids_no_special")] int[] IdsNoSpecial,
        string Decoded,
        [property: JsonPropertyName("decoded_skip_special")] string DecodedSkipSpecial);

    sealed record TextsFile(List<TextCase> Texts);
    public sealed record Meta(
        [property: JsonPropertyName("vocab_size")] int VocabSize,
        [property: JsonPropertyName("bos_token_id")] int? BosTokenId,
        [property: JsonPropertyName("eos_token_id")] int? EosTokenId,
        [property: JsonPropertyName("added_tokens")] List<JsonElement> AddedTokens);

    sealed record ExpectedFile(string Tokenizer, string Generator, Meta Meta, List<ExpectedCase> Cases);

    static readonly JsonSerializerOptions Options = new() { PropertyNameCaseInsensitive = true };

    static readonly Lazy<Dictionary<string, TextCase>> LazyTexts = new(() =>
        Read<TextsFile>(TestData.Fixture("tokenizers", "texts.json")).Texts.ToDictionary(t => t.Name));

    static readonly Dictionary<string, Lazy<ExpectedFile>> LazyExpected =
        TestData.TokenizerNames.ToDictionary(n => n, n => new Lazy<ExpectedFile>(() =>
            Read<ExpectedFile>(TestData.Fixture("tokenizers", $"{n}.expected.json"))));

    public static IReadOnlyDictionary<string, TextCase> Texts => LazyTexts.Value;

    public static ExpectedCase Expected(string tokenizer, string caseName) =>
        LazyExpected[tokenizer].Value.Cases.Single(c => c.Name == caseName);

    public static Meta ExpectedMeta(string tokenizer) => LazyExpected[tokenizer].Value.Meta;

    public static T Read<T>(string path) =>
        JsonSerializer.Deserialize<T>(File.ReadAllText(path), Options) ?? throw new InvalidDataException($"{path}: empty fixture");

    /// <summary>(tokenizer, case) pairs for xunit theories: null = all, true = strict, false = divergent.</summary>
    public static TheoryData<string, string> Cases(bool? strict)
    {
        var data = new TheoryData<string, string>();
        foreach (var tok in TestData.TokenizerNames)
            foreach (var t in Texts.Values)
                if (strict is null || t.DivergentFor.Contains(tok) != strict) data.Add(tok, t.Name);
        return data;
    }
}
