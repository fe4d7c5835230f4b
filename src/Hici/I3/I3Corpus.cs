using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;
using Hici.IO;
using Hici.Text;

namespace Hici.I3;

/// <summary>Input text formats: plain UTF-8 (one document per file) or the Brown corpus' word/TAG files (tags stripped).</summary>
public enum CorpusFormat { Text, Brown }

/// <summary>
/// Documents for i3 tokenizer and model training from files or folders, and the packed token stream
/// (documents encoded without special tokens, &lt;EOS&gt; after each). A ".bin" file is an already packed
/// stream: little-endian int32 ids.
/// </summary>
public static partial class I3Corpus
{
    public const long MaxDocumentBytes = 256L << 20;

    /// <summary>A Brown corpus file name (ca01 … cr09); the demo lists the corpus with it too.</summary>
    [GeneratedRegex(@"^c[a-r]\d\d$")] public static partial Regex BrownFileName();
    [GeneratedRegex(@" ([,.;:!?)]|'s|n't|'')")] private static partial Regex SpaceBefore();
    [GeneratedRegex(@"(``|\() ")] private static partial Regex SpaceAfter();

    public static CorpusFormat ParseFormat(string s) => s.ToLowerInvariant() switch
    {
        "text" or "txt" => CorpusFormat.Text,
        "brown" => CorpusFormat.Brown,
        _ => throw new HiciException($"--format '{s}': use text or brown"),
    };

    /// <summary>The document files under the given paths (folders: their files in ordinal order; Brown: only ca01…cr09).</summary>
    public static IReadOnlyList<string> Files(IEnumerable<string> paths, CorpusFormat format)
    {
        var files = new List<string>();
        foreach (var p in paths)
        {
            if (File.Exists(p)) files.Add(p);
            else if (Directory.Exists(p))
                files.AddRange(Directory.GetFiles(p).Where(f => format != CorpusFormat.Brown || BrownFileName().IsMatch(Path.GetFileName(f)))
                    .Where(f => format == CorpusFormat.Brown || f.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) || !Path.GetFileName(f).Contains('.'))
                    .OrderBy(f => f, StringComparer.Ordinal));
            else throw new HiciException($"{p}: no such file or folder");
        }
        if (files.Count == 0) throw new HiciException($"{string.Join(", ", paths)}: no input files found");
        return files;
    }

    public static string ReadDocument(string path, CorpusFormat format)
    {
        var text = InputFiles.ReadText(path, MaxDocumentBytes);
        return format == CorpusFormat.Brown ? Detag(text) : text;
    }

    /// <summary>Brown "word/tag" text → plain English: tags dropped, `` and '' made straight quotes, no space before punctuation; paragraphs kept.</summary>
    /// <param name="paragraphSeparator">between paragraphs: "\n" for i3's documents, "\n\n" for the demo's text files</param>
    public static string Detag(string tagged, string paragraphSeparator = "\n")
    {
        var sb = new StringBuilder(tagged.Length);
        foreach (var para in tagged.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var words = para.Split((char[])[' ', '\t', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries)
                .Select(t => { int i = t.LastIndexOf('/'); return i > 0 ? t[..i] : t; });
            var line = string.Join(' ', words);
            if (line.Length == 0) continue;
            line = SpaceAfter().Replace(SpaceBefore().Replace(line, "$1"), "$1").Replace("``", "\"").Replace("''", "\"");
            if (sb.Length > 0) sb.Append(paragraphSeparator);
            sb.Append(line);
        }
        return sb.ToString();
    }

    /// <summary>Encodes every document (no special tokens) and appends &lt;EOS&gt; after each.</summary>
    public static int[] Pack(IEnumerable<string> documents, HfTokenizer tok, Action<int>? progress = null)
    {
        var ids = new List<int>();
        int n = 0;
        foreach (var doc in documents)
        {
            ids.AddRange(tok.Encode(doc, addSpecialTokens: false));
            ids.Add(I3Tokenizer.EosId);
            progress?.Invoke(++n);
        }
        return ids.ToArray();
    }

    /// <summary>Writes a flat token file in the evaluation tools' format: little-endian uint32 ids plus FILE.bin.json {"dtype": "uint32"}.</summary>
    public static void WriteBin(string path, IReadOnlyList<int> ids)
    {
        AtomicFile.Write(path, s =>
        {
            var buf = new byte[4 * 4096];
            for (int i = 0; i < ids.Count; i += 4096)
            {
                int n = Math.Min(4096, ids.Count - i);
                for (int j = 0; j < n; j++) BinaryPrimitives.WriteUInt32LittleEndian(buf.AsSpan(4 * j), checked((uint)ids[i + j]));
                s.Write(buf, 0, 4 * n);
            }
        });
        AtomicFile.Write(path + ".json", s => s.Write("{\"dtype\": \"uint32\"}\n"u8));
    }

    /// <summary>Reads a flat token file (dtype from FILE.bin.json, see <see cref="Hici.Evaluation.Perplexity.ReadTokens"/>); every id must be in [0, vocab).</summary>
    public static int[] ReadBin(string path, int vocab) => Hici.Evaluation.Perplexity.ReadTokens(path, vocab);
}
