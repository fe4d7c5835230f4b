using System.Buffers;
using Microsoft.ML.Tokenizers;

namespace Hici.Text;

/// <summary>
/// An <see cref="HfTokenizer"/> seen as a <c>Microsoft.ML.Tokenizers.Tokenizer</c> (2.0.x), for code written
/// against that abstraction (ML.NET, Semantic Kernel, Microsoft.ML.GenAI). Ids are exactly
/// <see cref="HfTokenizer.Encode"/>'s; see docs/tokenizers.md ("Using HiCI.NET tokenizers through
/// Microsoft.ML.Tokenizers") for offsets, settings and truncation.
/// </summary>
public sealed class MlTokenizerAdapter : Tokenizer
{
    readonly HfTokenizer _tok;

    /// <param name="tokenizer">The HF tokenizer to expose.</param>
    /// <param name="addSpecialTokens">Run the post-processor (BOS/EOS of the template), as HF's
    /// <c>add_special_tokens=True</c> default does.</param>
    /// <param name="skipSpecialTokens">Decode drops special tokens (HF's <c>skip_special_tokens</c>).</param>
    public MlTokenizerAdapter(HfTokenizer tokenizer, bool addSpecialTokens = true, bool skipSpecialTokens = false)
    {
        _tok = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        AddSpecialTokens = addSpecialTokens;
        SkipSpecialTokens = skipSpecialTokens;
    }

    public static MlTokenizerAdapter From(HfTokenizer tokenizer, bool addSpecialTokens = true, bool skipSpecialTokens = false) =>
        new(tokenizer, addSpecialTokens, skipSpecialTokens);

    /// <summary>Loads a tokenizer folder (or tokenizer.json) with <see cref="HfTokenizer.Load"/> and wraps it.</summary>
    public static MlTokenizerAdapter Load(string path, bool addSpecialTokens = true, bool skipSpecialTokens = false) =>
        new(HfTokenizer.Load(path), addSpecialTokens, skipSpecialTokens);

    public HfTokenizer HfTokenizer => _tok;
    public bool AddSpecialTokens { get; }
    public bool SkipSpecialTokens { get; }

    /// <summary>Ids → token strings as the vocabulary spells them (byte-level "Ġthe", SentencePiece "▁the").</summary>
    public string? MapIdToToken(int id) => _tok.IdToToken(id);

    public int? MapTokenToId(string token) => _tok.TokenToId(token);

    // The HF pipeline's normalizer and pre-tokenizer are not ML.NET components: the base properties stay null.

    protected override EncodeResults<EncodedToken> EncodeToTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        var (ids, normalized, spans, length) = Run(text, textSpan, settings);
        if (spans is null) throw NoOffsets();
        int count = CutFromStart(spans, settings.MaxTokenCount, out int consumed, length);
        var tokens = new EncodedToken[count];
        for (int i = 0; i < count; i++)
            tokens[i] = new EncodedToken(ids[i], _tok.IdToToken(ids[i]) ?? "", new Range(spans[i].Start, spans[i].End));
        return new EncodeResults<EncodedToken> { Tokens = tokens, NormalizedText = normalized, CharsConsumed = consumed };
    }

    protected override EncodeResults<int> EncodeToIds(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        var (ids, normalized, spans, length) = Run(text, textSpan, settings);
        if (settings.MaxTokenCount >= ids.Length)
            return new EncodeResults<int> { Tokens = ids, NormalizedText = normalized, CharsConsumed = length };
        if (spans is null) throw NoOffsets();
        int count = CutFromStart(spans, settings.MaxTokenCount, out int consumed, length);
        return new EncodeResults<int> { Tokens = ids[..count], NormalizedText = normalized, CharsConsumed = consumed };
    }

    protected override int CountTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        var (ids, _, spans, length) = Run(text, textSpan, settings);
        if (settings.MaxTokenCount >= ids.Length) return ids.Length;
        if (spans is null) throw NoOffsets();
        return CutFromStart(spans, settings.MaxTokenCount, out _, length);
    }

    protected override int GetIndexByTokenCount(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings, bool fromEnd,
        out string? normalizedText, out int tokenCount)
    {
        var (ids, normalized, spans, length) = Run(text, textSpan, settings);
        normalizedText = normalized;
        if (settings.MaxTokenCount >= ids.Length) { tokenCount = ids.Length; return fromEnd ? 0 : length; }
        if (spans is null) throw NoOffsets();
        if (!fromEnd)
        {
            tokenCount = CutFromStart(spans, settings.MaxTokenCount, out int consumed, length);
            return consumed;
        }
        // The shortest suffix start j ≥ n − max where no character is shared with token j − 1.
        int n = spans.Length, j = n - settings.MaxTokenCount;
        while (j < n && !CanCut(spans, j)) j++;
        tokenCount = n - j;
        return j == n ? length : spans[j].Start;
    }

    public override string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return _tok.Decode(ids as IReadOnlyList<int> ?? ids.ToArray(), SkipSpecialTokens);
    }

    /// <summary>Writes the decoded text if it fits; otherwise the decode of the longest id prefix whose text
    /// fits and is a prefix of the full decode (never a partial character), with
    /// <see cref="OperationStatus.DestinationTooSmall"/>.</summary>
    public override OperationStatus Decode(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var all = ids as int[] ?? ids.ToArray();
        var full = _tok.Decode(all, SkipSpecialTokens);
        if (full.Length <= destination.Length)
        {
            full.CopyTo(destination);
            (idsConsumed, charsWritten) = (all.Length, full.Length);
            return OperationStatus.Done;
        }
        // Largest k whose decode is short enough (lengths grow with k), then back off until it is a prefix.
        int lo = 0, hi = all.Length;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (_tok.Decode(all[..mid], SkipSpecialTokens).Length <= destination.Length) lo = mid; else hi = mid - 1;
        }
        for (int k = lo; k >= 0; k--)
        {
            var text = _tok.Decode(all[..k], SkipSpecialTokens);
            if (text.Length <= destination.Length && full.StartsWith(text, StringComparison.Ordinal))
            {
                text.CopyTo(destination);
                (idsConsumed, charsWritten) = (k, text.Length);
                return OperationStatus.DestinationTooSmall;
            }
        }
        (idsConsumed, charsWritten) = (0, 0);
        return OperationStatus.DestinationTooSmall;
    }

    (int[] Ids, string? Normalized, (int Start, int End)[]? Spans, int Length) Run(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        if (settings.MaxTokenCount <= 0)
            throw new ArgumentOutOfRangeException(nameof(settings), settings.MaxTokenCount, "MaxTokenCount must be positive.");
        if (!settings.ConsiderPreTokenization && _tok.HasPreTokenizer)
            throw new NotSupportedException(
                "ConsiderPreTokenization = false is not supported: this tokenizer.json's pre-tokenizer (e.g. Split + ByteLevel) " +
                "is part of its model (byte-level vocabularies cannot see raw text), so skipping it gives ids no HF tokenizer produces.");
        var s = text ?? textSpan.ToString();
        bool normalize = settings.ConsiderNormalization;
        var ids = _tok.EncodeWithSpans(s, AddSpecialTokens, normalize, out var normalizedText, out var spans);
        // Offsets refer to NormalizedText when it is returned, else to the input text (the same string then).
        string? normalized = normalize && _tok.HasNormalizer ? normalizedText : null;
        return (ids, normalized, spans, normalizedText.Length);
    }

    // A cut before token k is allowed when tokens k − 1 and k share no character (a character's UTF-8 bytes
    // split across byte tokens stay together).
    static bool CanCut((int Start, int End)[] spans, int k) => k == 0 || k == spans.Length || spans[k].Start >= spans[k - 1].End;

    static int CutFromStart((int Start, int End)[] spans, int max, out int consumed, int length)
    {
        int k = Math.Min(max, spans.Length);
        while (k > 0 && !CanCut(spans, k)) k--;
        consumed = k == spans.Length ? length : k == 0 ? 0 : spans[k - 1].End;
        return k;
    }

    static NotSupportedException NoOffsets() => new(
        "Token offsets are not available for this tokenizer.json: its tokens could not be aligned byte for byte with the " +
        "normalized text (continuing_subword_prefix/end_of_word_suffix, ByteLevel add_prefix_space, Metaspace, or unk tokens). " +
        "EncodeToIds/CountTokens without MaxTokenCount still work.");
}

public static class MlTokenizerExtensions
{
    /// <summary>This tokenizer as a <c>Microsoft.ML.Tokenizers.Tokenizer</c>; see <see cref="MlTokenizerAdapter"/>.</summary>
    public static MlTokenizerAdapter AsMlTokenizer(this HfTokenizer tokenizer, bool addSpecialTokens = true, bool skipSpecialTokens = false) =>
        new(tokenizer, addSpecialTokens, skipSpecialTokens);
}
