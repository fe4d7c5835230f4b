namespace Hici.Text;

/// <summary>Text ↔ token ids for a language model.</summary>
public interface ITextTokenizer
{
    /// <summary>Number of ids the tokenizer can produce or decode: highest id + 1, added tokens
    /// included (HF's len(tokenizer)). A model's embedding may be larger (padding rows).</summary>
    int VocabSize { get; }

    int? BosId { get; }

    /// <summary>The eos_token of tokenizer_config.json.</summary>
    int? EosId { get; }

    /// <summary>Ids that end generation: <see cref="EosId"/> plus the end-of-turn special tokens the
    /// vocabulary defines (&lt;|eot_id|&gt;, &lt;|im_end|&gt;, &lt;|endoftext|&gt;, ...).</summary>
    IReadOnlyList<int> EosIds { get; }

    IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>Encodes like HF's tokenizer(text, add_special_tokens=...).input_ids; special tokens
    /// written in the text are always recognised.</summary>
    int[] Encode(string text, bool addSpecialTokens = true);

    /// <summary>Decodes like HF's tokenizer.decode; ids outside the vocabulary are ignored.
    /// <paramref name="cleanUpTokenizationSpaces"/>: null uses tokenizer_config.json's setting.</summary>
    string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false, bool? cleanUpTokenizationSpaces = null);

    /// <summary>The text of one token on its own (for display; streaming text should use
    /// <see cref="CreateStreamDecoder"/>, which keeps the context single tokens lack).</summary>
    string DecodeToken(int id);

    /// <summary>Incremental decoding for generation: bytes of a character split across tokens are
    /// held back until complete (HF's DecodeStream).</summary>
    TokenStreamDecoder CreateStreamDecoder(bool skipSpecialTokens = false);

    string? IdToToken(int id);

    int? TokenToId(string token);
}
