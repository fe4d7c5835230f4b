using JiebaNet.Segmenter;

namespace Hici.Evaluation;

/// <summary>
/// <c>jieba.cut(text, cut_all=False)</c> (precise mode with the HMM for unknown words, jieba's defaults) via
/// jieba.NET 0.42.2, the .NET port of jieba 0.42 with the same dictionary (dict.txt) and HMM tables, copied
/// next to the assembly in <c>jieba/</c>. LongBench's Chinese metrics (qa_f1_zh_score, rouge_zh_score)
/// segment with it; see docs/evaluation.md for what was checked.
/// </summary>
public static class ChineseSegmenter
{
    private static readonly Lazy<JiebaSegmenter> Segmenter = new(() =>
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "jieba");
        if (!File.Exists(Path.Combine(dir, "dict.txt")))
            throw new HiciException($"{dir}: jieba's dictionary (dict.txt) is missing; rebuild so the jieba.NET resources are copied");
        ConfigManager.ConfigFileBaseDir = dir;
        return new JiebaSegmenter();
    }, LazyThreadSafetyMode.ExecutionAndPublication);

    private static readonly object Gate = new();

    public static IReadOnlyList<string> Cut(string text)
    {
        if (text.Length == 0) return Array.Empty<string>();
        lock (Gate) return Segmenter.Value.Cut(text, cutAll: false, hmm: true).ToList();
    }
}
