using System.Text.Json;

namespace Hici.IO;

/// <summary>
/// Reads JSON files (configs, indexes, tokenizers, id lists) through <see cref="InputFiles"/> (regular file, size
/// limit, strict UTF-8). Every problem is one line naming the file, line and column — never the file's content:
/// System.Text.Json's own messages can quote a whole line, which for a one-line 900 KB id list was the whole file.
/// </summary>
public static class JsonFiles
{
    public static byte[] ReadLimited(string path, long maxBytes) => InputFiles.ReadBytes(path, maxBytes);

    public static JsonDocument Read(string path, long maxBytes, int maxDepth = 64) => Parse(path, ReadLimited(path, maxBytes), maxDepth);

    public static JsonDocument Parse(string origin, byte[] bytes, int maxDepth = 64, bool strict = false) => Parse(origin, bytes.AsMemory(), maxDepth, strict);

    /// <param name="strict">plain JSON only (no comments, trailing commas or BOM), as a format like safetensors requires</param>
    public static JsonDocument Parse(string origin, ReadOnlyMemory<byte> bytes, int maxDepth = 64, bool strict = false)
    {
        InputFiles.CheckUtf8(bytes.Span, origin);
        // Editors on Windows add a BOM; the JSON reader does not skip it on byte input.
        if (!strict && bytes.Span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) bytes = bytes[3..];
        var options = new JsonDocumentOptions
        { MaxDepth = maxDepth, CommentHandling = strict ? JsonCommentHandling.Disallow : JsonCommentHandling.Skip, AllowTrailingCommas = !strict };
        JsonDocument doc;
        try { doc = JsonDocument.Parse(bytes, options); }
        catch (JsonException e)
        {
            throw new HiciException($"{origin}: not valid JSON at line {(e.LineNumber ?? 0) + 1}, column {Column(bytes.Span, e)}: {Reason(e.Message)}", e);
        }
        try { CheckStrings(origin, bytes.Span, options); }
        catch { doc.Dispose(); throw; }
        return doc;
    }

    /// <summary>
    /// A "\udc80" escape parses, but .NET refuses to turn it into a string later (an InvalidOperationException deep in
    /// whatever reads the field). One pass over the escaped strings makes it a user error up front.
    /// </summary>
    static void CheckStrings(string origin, ReadOnlySpan<byte> bytes, JsonDocumentOptions o)
    {
        if (bytes.IndexOf("\\u"u8) < 0) return;
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions
        { MaxDepth = o.MaxDepth, CommentHandling = o.CommentHandling, AllowTrailingCommas = o.AllowTrailingCommas });
        while (reader.Read())
        {
            if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName) || !reader.ValueIsEscaped) continue;
            try { _ = reader.GetString(); }
            catch (InvalidOperationException)
            {
                var (line, col) = InputFiles.LineColumn(bytes, (int)reader.TokenStartIndex);
                throw new HiciException($"{origin}: invalid string at line {line}, column {col}: a \\u escape is a lone UTF-16 surrogate (not a character)");
            }
        }
    }

    /// <summary>The parser's reason without its position suffix or quoted input, at most one short line.</summary>
    static string Reason(string message)
    {
        var s = message;
        foreach (var cut in new[] { " LineNumber:", " Path:", "\n", "\r" })
            if (s.IndexOf(cut, StringComparison.Ordinal) is var i and >= 0) s = s[..i];
        s = new string(s.Select(c => char.IsControl(c) ? ' ' : c).ToArray()).Trim();
        return s.Length > 120 ? s[..117] + "..." : s;
    }

    static long Column(ReadOnlySpan<byte> bytes, JsonException e)
    {
        // BytePositionInLine counts bytes from the line's start; report characters, as editors do.
        long line = e.LineNumber ?? 0, inLine = e.BytePositionInLine ?? 0;
        int start = 0;
        for (long l = 0; l < line && start < bytes.Length; l++)
        {
            int nl = bytes[start..].IndexOf((byte)'\n');
            if (nl < 0) break;
            start += nl + 1;
        }
        return InputFiles.LineColumn(bytes, (int)Math.Min(start + inLine, bytes.Length)).Column;
    }
}
