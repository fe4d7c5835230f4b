using System.Text;

namespace Hici.Text;

/// <summary>
/// A Hugging Face fast tokenizer (tokenizer.json + tokenizer_config.json) reproducing the Python
/// `tokenizers`/`transformers` results: BPE models with SentencePiece-style byte fallback
/// (Llama-2, Mistral) or byte-level alphabets (Llama-3, Qwen). See docs/tokenizers.md.
/// Thread-safe after loading.
/// </summary>
public sealed class HfTokenizer : ITextTokenizer
{
    readonly AddedTokenMatcher _rawMatcher, _normalizedMatcher;
    readonly INormalizer? _normalizer;
    readonly IPreTokenizer? _preTokenizer;
    readonly BpeModel _model;
    readonly IPostProcessor? _postProcessor;
    readonly IDecoder? _decoder;
    readonly string?[] _idToToken;      // decode-time string of every id (added tokens included)
    readonly bool[] _isSpecial;
    readonly Dictionary<string, int> _tokenToId;
    readonly bool _cleanUpSpaces;

    internal HfTokenizer(HfTokenizerParts parts)
    {
        _normalizer = parts.Normalizer;
        _preTokenizer = parts.PreTokenizer;
        _model = parts.Model;
        _postProcessor = parts.PostProcessor;
        _decoder = parts.Decoder;
        _idToToken = parts.IdToToken;
        _tokenToId = parts.TokenToId;
        _cleanUpSpaces = parts.CleanUpTokenizationSpaces;
        AddedTokens = parts.AddedTokens;
        _isSpecial = new bool[_idToToken.Length];
        foreach (var t in AddedTokens) if (t.Special) _isSpecial[t.Id] = true;
        _rawMatcher = new AddedTokenMatcher(AddedTokens.Where(t => !t.Normalized).Select(t => (t.Content, t)));
        _normalizedMatcher = new AddedTokenMatcher(AddedTokens.Where(t => t.Normalized)
            .Select(t => (_normalizer?.Normalize(t.Content) ?? t.Content, t)));
        BosToken = parts.BosToken;
        EosToken = parts.EosToken;
        BosId = parts.BosToken is null ? null : TokenToId(parts.BosToken);
        EosId = parts.EosToken is null ? null : TokenToId(parts.EosToken);
        ChatTemplate = parts.ChatTemplate;
        TokenizerClass = parts.TokenizerClass;
        SourcePath = parts.SourcePath;
        ConfigPath = parts.ConfigPath;
        var eos = new List<int>();
        if (EosId is int e) eos.Add(e);
        foreach (var name in EndOfTurnTokens)
            if (AddedTokens.FirstOrDefault(t => t.Content == name && t.Special) is { } t && !eos.Contains(t.Id)) eos.Add(t.Id);
        EosIds = eos;
    }

    static readonly string[] EndOfTurnTokens = ["<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|endoftext|>", "<|end_of_text|>", "</s>"];

    /// <summary>Loads a tokenizer from a folder holding tokenizer.json (and, optionally,
    /// tokenizer_config.json), or from the path of a tokenizer.json file.</summary>
    /// <exception cref="HiciException">Missing, oversized, malformed or unsupported files.</exception>
    public static HfTokenizer Load(string path) => new(HfTokenizerLoader.Load(path));

    public int VocabSize => _idToToken.Length;
    public int? BosId { get; }
    public int? EosId { get; }
    public IReadOnlyList<int> EosIds { get; }
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>bos_token / eos_token of tokenizer_config.json (chat templates use them).</summary>
    public string? BosToken { get; }
    public string? EosToken { get; }

    /// <summary>The raw Jinja chat_template of tokenizer_config.json (the default one if it has several).</summary>
    public string? ChatTemplate { get; }
    public string? TokenizerClass { get; }
    public string SourcePath { get; }
    public string? ConfigPath { get; }

    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        return EncodeCore(text, addSpecialTokens, normalize: true, spans: null).ToArray();
    }

    /// <summary>True when the pipeline has a normalizer / a pre-tokenizer (MlTokenizerAdapter's settings).</summary>
    internal bool HasNormalizer => _normalizer is not null;
    internal bool HasPreTokenizer => _preTokenizer is not null;

    /// <summary>
    /// <see cref="Encode"/> that also reports, for every id, the [Start, End) characters of
    /// <paramref name="normalizedText"/> it stands for: the text with each piece between raw added tokens
    /// normalized (equal to <paramref name="text"/> when there is no normalizer or
    /// <paramref name="normalize"/> is false). Model tokens are aligned by their bytes, which are checked to
    /// spell the normalized text exactly; a token holding part of a character's UTF-8 bytes gets that whole
    /// character (neighbours overlap, as in HF). Ids from the post-processor get an empty span at the start
    /// (before the text) or end (after it). Null spans: the tokens of some word could not be aligned
    /// (continuing_subword_prefix, add_prefix_space, Metaspace, unk...), so no offsets are claimed at all.
    /// </summary>
    /// <param name="normalize">False: the text is taken as already normalized (the normalizer is skipped).</param>
    internal int[] EncodeWithSpans(string text, bool addSpecialTokens, bool normalize,
        out string normalizedText, out (int Start, int End)[]? spans)
    {
        ArgumentNullException.ThrowIfNull(text);
        var rec = new SpanRecorder(this);
        var ids = EncodeCore(text, addSpecialTokens, normalize, rec);
        normalizedText = rec.Normalized.ToString();
        spans = rec.Aligned ? rec.Finish(ids, PrefixCount(_postProcessor, addSpecialTokens), normalizedText.Length) : null;
        return ids.ToArray();
    }

    List<int> EncodeCore(string text, bool addSpecialTokens, bool normalize, SpanRecorder? spans)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        var pieces = new List<(int Start, int End, AddedToken? Token)>();
        _rawMatcher.Split(text, pieces);
        var words = new List<Word>();
        var sub = new List<(int Start, int End, AddedToken? Token)>();
        foreach (var (start, end, token) in pieces)
        {
            if (token is not null) { ids.Add(token.Id); spans?.Literal(text, start, end); continue; }
            var piece = text.Substring(start, end - start);
            if (normalize && _normalizer is not null) piece = _normalizer.Normalize(piece);
            if (piece.Length == 0) continue;
            int pieceStart = spans?.Append(piece) ?? 0;
            words.Clear();
            if (_normalizedMatcher.IsEmpty) { words.Add(new Word(piece, start == 0)); spans?.Region(pieceStart, pieceStart + piece.Length); }
            else
            {
                sub.Clear();
                _normalizedMatcher.Split(piece, sub);
                foreach (var (s, e, t) in sub)
                {
                    if (t is not null) { Flush(words, ids, spans); ids.Add(t.Id); spans?.Token(pieceStart + s, pieceStart + e); }
                    else { words.Add(new Word(piece.Substring(s, e - s), start == 0 && s == 0)); spans?.Region(pieceStart + s, pieceStart + e); }
                }
            }
            Flush(words, ids, spans);
        }
        return _postProcessor?.Process(ids, addSpecialTokens) ?? ids;
    }

    void Flush(List<Word> words, List<int> ids, SpanRecorder? spans)
    {
        if (words.Count == 0) return;
        int first = ids.Count;
        _preTokenizer?.PreTokenize(words);
        foreach (var w in words) _model.Tokenize(w.Text, ids);
        words.Clear();
        spans?.Model(ids, first);
    }

    // Ids a post-processor puts before the sequence ("$A") of a single-sequence template.
    static int PrefixCount(IPostProcessor? p, bool addSpecialTokens) => p switch
    {
        TemplatePostProcessor t when addSpecialTokens => t.Pieces.TakeWhile(x => x is not null).Sum(x => x!.Length),
        SequencePostProcessor s => s.Steps.Sum(x => PrefixCount(x, addSpecialTokens)),
        _ => 0,
    };

    static bool IsByteLevel(IPreTokenizer? p) => p switch
    {
        ByteLevelPreTokenizer => true,
        SequencePreTokenizer s => s.Steps.Any(IsByteLevel),
        _ => false,
    };

    /// <summary>Builds the normalized text and the span of every id while <see cref="EncodeCore"/> runs.</summary>
    sealed class SpanRecorder(HfTokenizer tok)
    {
        readonly bool _byteLevel = IsByteLevel(tok._preTokenizer);
        readonly List<(int Start, int End)> _spans = new();
        int _regionStart = -1, _regionEnd = -1;
        public readonly StringBuilder Normalized = new();
        public bool Aligned { get; private set; } = true;

        public void Literal(string text, int start, int end)
        {
            int at = Normalized.Length;
            Normalized.Append(text, start, end - start);
            _spans.Add((at, Normalized.Length));
        }

        public int Append(string piece) { int at = Normalized.Length; Normalized.Append(piece); return at; }

        public void Token(int start, int end) => _spans.Add((start, end));

        // The words of one flush are adjacent: their union is one region of the normalized text.
        public void Region(int start, int end)
        {
            if (_regionStart < 0) _regionStart = start;
            _regionEnd = end;
        }

        public void Model(List<int> ids, int first)
        {
            int regionStart = _regionStart, regionEnd = _regionEnd;
            _regionStart = _regionEnd = -1;
            if (!Aligned) return;
            var region = Normalized.ToString(regionStart, regionEnd - regionStart);
            var expected = Encoding.UTF8.GetBytes(region);
            // byte index → [start, end) of the character holding it
            var charStart = new int[expected.Length];
            var charEnd = new int[expected.Length];
            for (int c = 0, b = 0; c < region.Length;)
            {
                System.Text.Rune.DecodeFromUtf16(region.AsSpan(c), out var rune, out int used);
                int n = rune.Utf8SequenceLength;
                for (int k = 0; k < n; k++) { charStart[b + k] = c; charEnd[b + k] = c + used; }
                b += n;
                c += used;
            }
            int pos = 0;
            Span<byte> buf = stackalloc byte[4];
            for (int i = first; i < ids.Count; i++)
            {
                int startByte = pos;
                if (!TokenBytes(ids[i], expected, ref pos, buf) || pos == startByte) { Aligned = false; return; }
                _spans.Add((regionStart + charStart[startByte], regionStart + charEnd[pos - 1]));
            }
            if (pos != expected.Length) Aligned = false;
        }

        // Advances pos over the bytes token id spells if they are the next bytes of expected.
        bool TokenBytes(int id, byte[] expected, ref int pos, Span<byte> buf)
        {
            if (tok.IdToToken(id) is not { } s) return false;
            if (_byteLevel)
            {
                foreach (char ch in s)
                {
                    int b = ByteLevel.CharToByte(ch);
                    if (b < 0 || pos >= expected.Length || expected[pos] != b) return false;
                    pos++;
                }
                return true;
            }
            if (s.Length == 6 && s.StartsWith("<0x", StringComparison.Ordinal) && tok._model.FallbackByte(id) is int fb and >= 0)
            {
                if (pos >= expected.Length || expected[pos] != fb) return false;
                pos++;
                return true;
            }
            for (int c = 0; c < s.Length;)
            {
                System.Text.Rune.DecodeFromUtf16(s.AsSpan(c), out var rune, out int used);
                int n = rune.EncodeToUtf8(buf);
                if (pos + n > expected.Length || !buf[..n].SequenceEqual(expected.AsSpan(pos, n))) return false;
                pos += n;
                c += used;
            }
            return true;
        }

        public (int Start, int End)[] Finish(List<int> ids, int prefix, int length)
        {
            if (ids.Count - prefix < _spans.Count) throw new InvalidOperationException("post-processor layout not understood");
            var result = new (int, int)[ids.Count];
            for (int i = 0; i < ids.Count; i++)
                result[i] = i < prefix ? (0, 0) : i - prefix < _spans.Count ? _spans[i - prefix] : (length, length);
            return result;
        }
    }

    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false, bool? cleanUpTokenizationSpaces = null)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var tokens = new List<string>(ids.Count);
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)_idToToken.Length || _idToToken[id] is not { } token) continue;
            if (skipSpecialTokens && _isSpecial[id]) continue;
            tokens.Add(token);
        }
        var text = _decoder is null ? string.Join(' ', tokens) : string.Concat(_decoder.DecodeChain(tokens));
        return (cleanUpTokenizationSpaces ?? _cleanUpSpaces) ? CleanUpTokenization(text) : text;
    }

    public string DecodeToken(int id) => Decode([id], cleanUpTokenizationSpaces: false);

    public TokenStreamDecoder CreateStreamDecoder(bool skipSpecialTokens = false) =>
        new(ids => Decode(ids, skipSpecialTokens, cleanUpTokenizationSpaces: false));

    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    public int? TokenToId(string token) => _tokenToId.TryGetValue(token, out int id) ? id : null;

    // transformers' clean_up_tokenization: undoes the spaces old English tokenizers put before punctuation.
    static string CleanUpTokenization(string text) => new StringBuilder(text)
        .Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",")
        .Replace(" ' ", "'").Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s")
        .Replace(" 've", "'ve").Replace(" 're", "'re").ToString();
}
