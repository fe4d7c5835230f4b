using System.Text;
using System.Text.Json;

namespace Hici.Evaluation;

/// <summary>Reads a JSONL file of records; a line that is not one is an error naming the file and line.</summary>
public static class JsonLines
{
    public const long MaxLineBytes = 256L << 20;

    /// <param name="what">what a line should be, for the error ("a LongBench sample")</param>
    public static List<T> Read<T>(string path, string what, Func<JsonElement, T> parse)
    {
        var list = new List<T>();
        // Regular file, bounded lines, strict UTF-8, one-line JSON errors: the shared readers (Hici.IO).
        foreach (var (lineNo, line) in Hici.IO.InputFiles.ReadLines(path, MaxLineBytes))
        {
            using var doc = Hici.IO.JsonFiles.Parse($"{path}:{lineNo}", Encoding.UTF8.GetBytes(line));
            try { list.Add(parse(doc.RootElement)); }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new HiciException($"{path}:{lineNo}: not {what} ({e.Message.Split('\n')[0]})");
            }
        }
        return list;
    }
}
