using System.Text;
using System.Text.Json;
using Hici.IO;

namespace Hici.Training;

public enum CorpusFormat { Auto, Text, Jsonl, Alpaca }

/// <summary>One document of a corpus and how far through the input (in bytes) reading has come.</summary>
public sealed record CorpusDocument(string Text, long BytesDone);

/// <summary>
/// Streams documents from a file or folder (sorted, recursive) without holding the corpus in memory:
/// plain text (a file is one document), JSONL with a "text" field per line (RedPajama style) and
/// LongAlpaca-style JSON (an array of {"instruction", "input"?, "output"}; the document is the instruction,
/// the input if any and the output, separated by blank lines). Auto picks by extension: .jsonl, .json, else text.
/// </summary>
public static class CorpusDocuments
{
    public const int MaxLineBytes = 256 << 20;

    public static IReadOnlyList<string> Files(string input)
    {
        if (File.Exists(input)) return new[] { input };
        if (!Directory.Exists(input)) throw new HiciException($"{input}: no such file or folder");
        var files = Directory.EnumerateFiles(input, "*", SearchOption.AllDirectories)
            .Where(f => !Path.GetFileName(f).StartsWith('.')).OrderBy(f => f, StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new HiciException($"{input}: the folder holds no files");
        return files;
    }

    public static CorpusFormat FormatOf(string file, CorpusFormat requested) => requested != CorpusFormat.Auto ? requested
        : file.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) ? CorpusFormat.Jsonl
        : file.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? CorpusFormat.Alpaca
        : CorpusFormat.Text;

    public static IEnumerable<CorpusDocument> Read(IReadOnlyList<string> files, CorpusFormat format)
    {
        long before = 0;
        foreach (var f in files)
        {
            long size = new FileInfo(f).Length;
            foreach (var (text, pos) in ReadFile(f, FormatOf(f, format))) yield return new CorpusDocument(text, before + pos);
            before += size;
        }
    }

    private static IEnumerable<(string, long)> ReadFile(string file, CorpusFormat format)
    {
        switch (format)
        {
            case CorpusFormat.Text:
            {
                var text = InputFiles.ReadText(file, Text.TokenInput.MaxTextBytes);
                yield return (text, new FileInfo(file).Length);
                break;
            }
            case CorpusFormat.Jsonl:
            {
                long done = 0;   // bytes of the lines read so far (blank lines aside): for progress only
                foreach (var (lineNo, line) in InputFiles.ReadLines(file, MaxLineBytes))
                {
                    string? text;
                    using (var d = JsonFiles.ParseLine(file, lineNo, line))
                        text = d.RootElement.ValueKind == JsonValueKind.Object && d.RootElement.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
                    if (text is null) throw new HiciException($"{file}:{lineNo}: no string field \"text\"");
                    done += Encoding.UTF8.GetByteCount(line) + 1;
                    yield return (text, done);
                }
                break;
            }
            case CorpusFormat.Alpaca:
            {
                InputFiles.CheckRegularFile(file);
                using var fs = File.OpenRead(file);
                int i = 0;
                foreach (var ex in AlpacaExamples.Stream(fs, file))
                {
                    i++;
                    var parts = new List<string> { ex.Instruction };
                    if (!string.IsNullOrEmpty(ex.Input)) parts.Add(ex.Input);
                    parts.Add(ex.Output);
                    yield return (string.Join("\n\n", parts), fs.Position);
                }
                break;
            }
            default: throw new ArgumentOutOfRangeException(nameof(format));
        }
    }
}

/// <summary>One LongAlpaca / Alpaca record.</summary>
public sealed record AlpacaExample(string Instruction, string? Input, string Output);

/// <summary>Streams the elements of a JSON array of Alpaca records (a 500 MB LongAlpaca file is never parsed whole).</summary>
public static class AlpacaExamples
{
    public static IEnumerable<AlpacaExample> Stream(Stream s, string origin)
    {
        IEnumerable<JsonElement> items;
        try { items = JsonSerializer.DeserializeAsyncEnumerable<JsonElement>(s).ToBlockingEnumerable(); }
        catch (JsonException ex) { throw new HiciException($"{origin}: not a JSON array ({JsonFiles.Describe(ex)})"); }
        int i = 0;
        using var e = items.GetEnumerator();
        while (true)
        {
            JsonElement el;
            try { if (!e.MoveNext()) break; el = e.Current; }
            catch (JsonException ex) { throw new HiciException($"{origin}: not valid JSON after record {i} ({JsonFiles.Describe(ex)})"); }
            i++;
            if (el.ValueKind != JsonValueKind.Object) throw new HiciException($"{origin}: record {i} is not an object");
            string? Field(string n) => el.TryGetProperty(n, out var v) ? (v.ValueKind == JsonValueKind.String ? v.GetString() : throw new HiciException($"{origin}: record {i}: \"{n}\" is not a string")) : null;
            var ins = Field("instruction") ?? throw new HiciException($"{origin}: record {i} has no \"instruction\"");
            var outp = Field("output") ?? throw new HiciException($"{origin}: record {i} has no \"output\"");
            yield return new AlpacaExample(ins, Field("input"), outp);
        }
    }
}
