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
        var ids = new List<int>(text.Length / 3 + 4);
        var pieces = new List<(int Start, int End, AddedToken? Token)>();
        _rawMatcher.Split(text, pieces);
        var words = new List<Word>();
        var sub = new List<(int Start, int End, AddedToken? Token)>();
        foreach (var (start, end, token) in pieces)
        {
            if (token is not null) { ids.Add(token.Id); continue; }
            var piece = text.Substring(start, end - start);
            if (_normalizer is not null) piece = _normalizer.Normalize(piece);
            if (piece.Length == 0) continue;
            words.Clear();
            if (_normalizedMatcher.IsEmpty) words.Add(new Word(piece, start == 0));
            else
            {
                sub.Clear();
                _normalizedMatcher.Split(piece, sub);
                foreach (var (s, e, t) in sub)
                {
                    if (t is not null) { Flush(words, ids); ids.Add(t.Id); }
                    else words.Add(new Word(piece.Substring(s, e - s), start == 0 && s == 0));
                }
            }
            Flush(words, ids);
        }
        var result = _postProcessor?.Process(ids, addSpecialTokens) ?? ids;
        return result.ToArray();
    }

    void Flush(List<Word> words, List<int> ids)
    {
        if (words.Count == 0) return;
        _preTokenizer?.PreTokenize(words);
        foreach (var w in words) _model.Tokenize(w.Text, ids);
        words.Clear();
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
