using System.Text;

namespace Hici.Text;

/// <summary>A tokenizer.json "decoder" step: token strings in, token strings out (HF's decode_chain).</summary>
internal interface IDecoder
{
    List<string> DecodeChain(List<string> tokens);
}

/// <summary>Maps byte-level characters back to bytes and decodes UTF-8 (invalid bytes → U+FFFD per
/// maximal invalid subsequence, like Rust's from_utf8_lossy). A token containing any other character
/// is taken as its own UTF-8 bytes.</summary>
internal sealed class ByteLevelDecoder : IDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (var token in tokens)
        {
            bool allMapped = true;
            foreach (char c in token) if (ByteLevel.CharToByte(c) < 0) { allMapped = false; break; }
            if (allMapped) foreach (char c in token) bytes.Add((byte)ByteLevel.CharToByte(c));
            else bytes.AddRange(Encoding.UTF8.GetBytes(token));
        }
        return [Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes))];
    }
}

internal sealed class ReplaceDecoder(ISplitPattern pattern, string content) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) =>
        tokens.Select(t => ReplaceNormalizer.Replace(pattern, content, t)).ToList();
}

/// <summary>&lt;0xNN&gt; tokens → bytes. Unlike a lossy UTF-8 decode, HF emits one U+FFFD per byte
/// when a run of byte tokens is not valid UTF-8 (transformers.js differs here).</summary>
internal sealed class ByteFallbackDecoder : IDecoder
{
    static readonly UTF8Encoding Strict = new(false, throwOnInvalidBytes: true);

    public List<string> DecodeChain(List<string> tokens)
    {
        var output = new List<string>(tokens.Count);
        var pending = new List<byte>();
        foreach (var token in tokens)
        {
            if (TryParseByte(token, out byte b)) { pending.Add(b); continue; }
            Flush(pending, output);
            output.Add(token);
        }
        Flush(pending, output);
        return output;
    }

    static void Flush(List<byte> pending, List<string> output)
    {
        if (pending.Count == 0) return;
        try { output.Add(Strict.GetString(pending.ToArray())); }
        catch (DecoderFallbackException) { for (int i = 0; i < pending.Count; i++) output.Add("\uFFFD"); }
        pending.Clear();
    }

    internal static bool TryParseByte(string token, out byte value)
    {
        value = 0;
        return token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out value);
    }
}

internal sealed class FuseDecoder : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
}

/// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing copies of one character per token.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) => tokens.Select(Strip).ToList();

    string Strip(string token)
    {
        int from = 0, to = token.Length;
        while (from < start && from < to && token[from] == content) from++;
        for (int i = 0; i < stop && to > from && token[to - 1] == content; i++) to--;
        return token[from..to];
    }
}

/// <summary>▁ → space; in the first token every ▁ is dropped unless prepend_scheme is "never".</summary>
internal sealed class MetaspaceDecoder(char replacement, MetaspacePrepend prepend) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        var output = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            output.Add(i == 0 && prepend != MetaspacePrepend.Never
                ? t.Replace(replacement.ToString(), "", StringComparison.Ordinal)
                : t.Replace(replacement, ' '));
        }
        return output;
    }
}

internal sealed class SequenceDecoder(IReadOnlyList<IDecoder> steps) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        foreach (var step in steps) tokens = step.DecodeChain(tokens);
        return tokens;
    }
}
