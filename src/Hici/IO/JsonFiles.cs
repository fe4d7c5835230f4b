using System.Text;
using System.Text.Json;

namespace Hici.IO;

/// <summary>Reads small JSON files (configs, indexes) with a size cap and errors that name the file.</summary>
internal static class JsonFiles
{
    public static byte[] ReadLimited(string path, long maxBytes)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            if (fs.Length > maxBytes)
                throw new HiciException($"{path}: file is {fs.Length} bytes, over the {maxBytes}-byte limit for this kind of file");
            var buf = new byte[fs.Length];
            fs.ReadExactly(buf);
            return buf;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new HiciException($"{path}: cannot read ({e.Message})", e); }
    }

    public static JsonDocument Parse(string path, byte[] bytes)
    {
        try { new UTF8Encoding(false, true).GetCharCount(bytes); }
        catch (DecoderFallbackException) { throw new HiciException($"{path}: not valid UTF-8"); }
        // Editors on Windows add a BOM; the JSON reader does not skip it on byte input.
        var body = bytes.AsMemory();
        if (body.Span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) body = body[3..];
        try
        {
            return JsonDocument.Parse(body, new JsonDocumentOptions
            { MaxDepth = 32, CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e) { throw new HiciException($"{path}: not valid JSON ({e.Message})"); }
    }
}
