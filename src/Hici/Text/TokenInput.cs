using System.Text.Json;

namespace Hici.Text;

/// <summary>
/// Token ids for a model from the files users give commands: a JSON array of ids, or a UTF-8 text encoded
/// with an HF tokenizer. Input is checked as hostile (size, encoding, id range) with errors that name the file.
/// </summary>
public static class TokenInput
{
    /// <summary>Input limits: 1 GiB of text, and an id list of up to ~100M ids (a JSON document costs about its size again).</summary>
    public const long MaxTextBytes = 1L << 30, MaxIdsBytes = 1L << 30;

    /// <summary>A JSON array of at least <paramref name="minCount"/> integers in [0, vocab).
    /// <paramref name="purpose"/> completes "needs at least N token ids …" (e.g. "to score").</summary>
    public static long[] ReadIds(string path, long vocab, int minCount = 1, string purpose = "")
    {
        using (var doc = Hici.IO.JsonFiles.Read(path, MaxIdsBytes))
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Array)
                throw new HiciException($"{path}: expected a JSON array of token ids, found {root.ValueKind.ToString().ToLowerInvariant()}");
            var ids = new long[root.GetArrayLength()];
            int i = 0;
            foreach (var e in root.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long id))
                    throw new HiciException($"{path}: element {i} is {e.GetRawText()}, not an integer token id");
                if (id < 0 || id >= vocab)
                    throw new HiciException($"{path}: token id {id} at position {i} is outside the vocabulary [0, {vocab})");
                ids[i++] = id;
            }
            if (ids.Length < minCount)
                throw new HiciException($"{path}: needs at least {minCount} token id{(minCount == 1 ? "" : "s")}{(purpose.Length > 0 ? " " + purpose : "")} (got {ids.Length})");
            return ids;
        }
    }

    /// <summary>
    /// The tokenizer at <paramref name="tokenizerPath"/> (a folder or tokenizer.json), checked to fit a model
    /// vocabulary of <paramref name="vocab"/> ids.
    /// </summary>
    public static HfTokenizer LoadTokenizer(string tokenizerPath, long vocab, string? instead = null)
    {
        if (Directory.Exists(tokenizerPath) && !File.Exists(Path.Combine(tokenizerPath, "tokenizer.json")))
            throw new HiciException($"{tokenizerPath}: no tokenizer.json" + (instead is null ? "" : " " + instead));
        var tok = HfTokenizer.Load(tokenizerPath);
        if (tok.VocabSize > vocab)
            throw new HiciException($"{tokenizerPath}: the tokenizer has {tok.VocabSize} ids but the model's vocabulary is {vocab}: they do not belong together");
        return tok;
    }

    /// <summary>A UTF-8 text file (a leading BOM dropped) encoded with special tokens as the tokenizer adds them.</summary>
    public static long[] EncodeTextFile(string path, HfTokenizer tok)
    {
        string content = Hici.IO.InputFiles.ReadText(path, MaxTextBytes);   // regular file, strict UTF-8, BOM dropped
        return Encode(tok, content, addSpecialTokens: true);
    }

    public static long[] Encode(HfTokenizer tok, string text, bool addSpecialTokens) =>
        tok.Encode(text, addSpecialTokens).Select(i => (long)i).ToArray();
}
