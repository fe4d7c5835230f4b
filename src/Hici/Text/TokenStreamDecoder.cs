namespace Hici.Text;

/// <summary>
/// Turns a stream of generated ids into text chunks, as HF's DecodeStream does: each step decodes a
/// short window of recent ids and returns what was added, or null while the window ends inside an
/// incomplete UTF-8 sequence (byte-fallback or byte-level tokens) so no U+FFFD is ever emitted early.
/// Decoding with context also keeps word-initial spaces that decoding one token alone would strip.
/// </summary>
public sealed class TokenStreamDecoder
{
    readonly Func<IReadOnlyList<int>, string> _decode;
    readonly List<int> _ids = new();
    string _prefix = "";
    int _prefixIndex;

    /// <param name="decode">Full decode of a list of ids (without clean-up of tokenization spaces).</param>
    public TokenStreamDecoder(Func<IReadOnlyList<int>, string> decode) => _decode = decode;

    /// <summary>Adds one id; returns the new text, or null when more ids are needed.</summary>
    public string? Step(int id)
    {
        if (_prefix.Length == 0 && _ids.Count > 0)
        {
            var p = _decode(_ids);
            if (!p.EndsWith('\uFFFD')) { _prefix = p; _prefixIndex = _ids.Count; }
        }
        _ids.Add(id);
        var text = _decode(_ids);
        if (text.Length <= _prefix.Length || text.EndsWith('\uFFFD')) return null;
        if (!text.StartsWith(_prefix, StringComparison.Ordinal))
            throw new InvalidOperationException($"stream decode: decoding after id {id} no longer starts with the text already returned");
        var added = text[_prefix.Length..];
        int newPrefixIndex = _ids.Count - _prefixIndex;
        _ids.RemoveRange(0, _prefixIndex);
        _prefix = _decode(_ids);
        _prefixIndex = newPrefixIndex;
        return added;
    }

    /// <summary>Returns whatever is still held back (incomplete sequences become U+FFFD) and resets.</summary>
    public string Flush()
    {
        var text = _ids.Count == 0 ? "" : _decode(_ids);
        var rest = text.StartsWith(_prefix, StringComparison.Ordinal) ? text[_prefix.Length..] : text;
        _ids.Clear();
        _prefix = "";
        _prefixIndex = 0;
        return rest;
    }
}
