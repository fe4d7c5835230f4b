using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

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
    /// <param name="uniqueKeys">a key twice in one object is an error (a <see cref="JsonObject"/> cannot hold it: it throws on first use)</param>
    public static JsonDocument Parse(string origin, ReadOnlyMemory<byte> bytes, int maxDepth = 64, bool strict = false, bool uniqueKeys = false)
    {
        InputFiles.CheckUtf8(bytes.Span, origin);
        // Editors on Windows add a BOM; the JSON reader does not skip it on byte input.
        if (!strict && bytes.Span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) bytes = bytes[3..];
        var options = new JsonDocumentOptions
        {
            MaxDepth = maxDepth, CommentHandling = strict ? JsonCommentHandling.Disallow : JsonCommentHandling.Skip, AllowTrailingCommas = !strict,
            AllowDuplicateProperties = !uniqueKeys,
        };
        JsonDocument doc;
        try { doc = JsonDocument.Parse(bytes, options); }
        catch (JsonException e)
        {
            throw new HiciException($"{origin}: not valid JSON at line {(e.LineNumber ?? 0) + 1}, column {Column(bytes.Span, e)}: {Reason(e.Message)}", e);
        }
        catch (InvalidOperationException e)
        {
            // The duplicate-key check unescapes property names while parsing: a lone surrogate there throws this.
            CheckStrings(origin, bytes.Span, options);   // names the string's line and column
            throw new HiciException($"{origin}: not valid JSON: {Reason(e.Message)}", e);
        }
        try { CheckStrings(origin, bytes.Span, options); }
        catch { doc.Dispose(); throw; }
        return doc;
    }

    /// <summary>The file as a mutable tree, read and checked as <see cref="Read"/> does (the tree is parsed from checked bytes).</summary>
    public static JsonNode? ReadNode(string path, long maxBytes, int maxDepth = 64) => ParseNode(path, ReadLimited(path, maxBytes), maxDepth);

    /// <summary>The file's top-level object; anything else is an error naming the file.</summary>
    public static JsonObject ReadObject(string path, long maxBytes, int maxDepth = 64) =>
        ReadNode(path, maxBytes, maxDepth) as JsonObject ?? throw new HiciException($"{path}: expected a JSON object");

    public static JsonNode? ParseNode(string origin, ReadOnlyMemory<byte> bytes, int maxDepth = 64)
    {
        using (Parse(origin, bytes, maxDepth, uniqueKeys: true)) { }   // the one-line errors (syntax, UTF-8, lone surrogates, a key twice) come from here
        if (bytes.Span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) bytes = bytes[3..];
        return JsonNode.Parse(bytes.Span, documentOptions: new JsonDocumentOptions
        { MaxDepth = maxDepth, CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
    }

    /// <summary>One line of a JSONL file (from <see cref="InputFiles.ReadLines"/>); errors name the file and line.</summary>
    public static JsonDocument ParseLine(string path, int lineNo, string line) => Parse($"{path}:{lineNo}", Encoding.UTF8.GetBytes(line));

    /// <summary>One line of a JSONL file as a mutable tree.</summary>
    public static JsonNode? ParseLineNode(string path, int lineNo, string line) => ParseNode($"{path}:{lineNo}", Encoding.UTF8.GetBytes(line));

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

    /// <summary>Where and why, for a streamed parse whose bytes are gone: "line L, byte B: reason" (one short line).</summary>
    public static string Describe(JsonException e) => $"line {(e.LineNumber ?? 0) + 1}, byte {(e.BytePositionInLine ?? 0) + 1}: {Reason(e.Message)}";

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
