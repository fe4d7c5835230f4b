using System.Text;
using System.Text.Json;

namespace Hici.Evaluation;

/// <summary>Reads a JSONL file of records; a line that is not one is an error naming the file and line.</summary>
public static class JsonLines
{
    /// <param name="what">what a line should be, for the error ("a LongBench sample")</param>
    public static List<T> Read<T>(string path, string what, Func<JsonElement, T> parse)
    {
        if (!File.Exists(path)) throw new HiciException($"{path}: no such file");
        var list = new List<T>();
        int lineNo = 0;
        IEnumerable<string> lines;
        try { lines = File.ReadLines(path, new UTF8Encoding(false, throwOnInvalidBytes: true)).ToList(); }
        catch (DecoderFallbackException) { throw new HiciException($"{path}: not valid UTF-8"); }
        foreach (var line in lines)
        {
            lineNo++;
            if (line.Trim().Length == 0) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                list.Add(parse(doc.RootElement));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new HiciException($"{path}:{lineNo}: not {what} ({e.Message})");
            }
        }
        return list;
    }
}
