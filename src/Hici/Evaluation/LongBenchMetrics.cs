using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Hici.Evaluation;

/// <summary>
/// LongBench v1's metrics (<c>LongBench/metrics.py</c>), reproduced with their quirks: the ROUGE-L of the
/// <c>rouge</c> package counts distinct words (its n-gram containers are sets) and sentence-splits on ".",
/// <c>classification_score</c> removes from the list it iterates (skipping the element after a removal),
/// and code similarity is <c>fuzzywuzzy.fuzz.ratio</c> (difflib). Chinese metrics segment with jieba
/// (<see cref="ChineseSegmenter"/>).
/// </summary>
public static class LongBenchMetrics
{
    public delegate double Metric(string prediction, string groundTruth, IReadOnlyList<string> allClasses);

    public static Metric ByName(string name) => name switch
    {
        "qa_f1_score" => (p, g, _) => QaF1(p, g),
        "qa_f1_zh_score" => (p, g, _) => QaF1Zh(p, g),
        "rouge_score" => (p, g, _) => Rouge(p, g),
        "rouge_zh_score" => (p, g, _) => RougeZh(p, g),
        "classification_score" => Classification,
        "retrieval_score" => (p, g, _) => Retrieval(p, g, @"Paragraph (\d+)"),
        "retrieval_zh_score" => (p, g, _) => Retrieval(p, g, @"段落(\d+)"),
        "count_score" => (p, g, _) => Count(p, g),
        "code_sim_score" => (p, g, _) => CodeSim(p, g),
        _ => throw new ArgumentException($"unknown LongBench metric {name}"),
    };

    // ------------------------------------------------------------------ normalisation

    private const string AsciiPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";   // Python's string.punctuation
    private const string ChinesePunctuation = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏.";

    /// <summary><c>normalize_answer</c>: lower → drop ASCII punctuation → articles a/an/the → " " → collapse whitespace.</summary>
    public static string NormalizeAnswer(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (char c in s.ToLowerInvariant()) if (AsciiPunctuation.IndexOf(c) < 0) sb.Append(c);
        return string.Join(' ', PyJson.SplitWhitespace(RemoveArticles(sb.ToString())));
    }

    /// <summary><c>normalize_zh_answer</c>: lower → drop ASCII and Chinese punctuation → drop all whitespace.</summary>
    public static string NormalizeZhAnswer(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (char c in s.ToLowerInvariant())
            if (AsciiPunctuation.IndexOf(c) < 0 && ChinesePunctuation.IndexOf(c) < 0) sb.Append(c);
        return string.Concat(PyJson.SplitWhitespace(sb.ToString()));
    }

    /// <summary><c>re.sub(r"\b(a|an|the)\b", " ", text)</c> with Python's Unicode word characters
    /// (letters, all numbers, "_"; .NET's \w differs on marks and connector punctuation, so no .NET regex).</summary>
    private static string RemoveArticles(string t)
    {
        var sb = new StringBuilder(t.Length);
        int i = 0;
        while (i < t.Length)
        {
            if (!IsWordAt(t, i - 1))
            {
                int len = 0;
                foreach (var art in new[] { "a", "an", "the" })     // alternation order: "a" first, then backtrack
                    if (string.CompareOrdinal(t, i, art, 0, art.Length) == 0 && !IsWordAt(t, i + art.Length) && IsWordAt(t, i))
                    { len = art.Length; break; }
                if (len > 0) { sb.Append(' '); i += len; continue; }
            }
            sb.Append(t[i]);
            i++;
        }
        return sb.ToString();
    }

    private static bool IsWordAt(string t, int i)
    {
        if (i < 0 || i >= t.Length) return false;
        char c = t[i];
        if (c == '_') return true;
        var cat = char.IsSurrogate(c)
            ? (Rune.TryGetRuneAt(t, char.IsLowSurrogate(c) && i > 0 ? i - 1 : i, out var r) ? Rune.GetUnicodeCategory(r) : UnicodeCategory.Surrogate)
            : char.GetUnicodeCategory(c);
        return cat is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter or UnicodeCategory.DecimalDigitNumber
            or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;
    }

    // ------------------------------------------------------------------ metrics

    /// <summary><c>f1_score</c> on token multisets; 0 when nothing is shared.</summary>
    public static double F1(IReadOnlyList<string> prediction, IReadOnlyList<string> truth)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var t in truth) counts[t] = counts.GetValueOrDefault(t) + 1;
        int same = 0;
        foreach (var p in prediction)
            if (counts.TryGetValue(p, out int n) && n > 0) { counts[p] = n - 1; same++; }
        if (same == 0) return 0;
        double precision = 1.0 * same / prediction.Count, recall = 1.0 * same / truth.Count;
        return 2 * precision * recall / (precision + recall);
    }

    public static double QaF1(string prediction, string truth) =>
        F1(PyJson.SplitWhitespace(NormalizeAnswer(prediction)), PyJson.SplitWhitespace(NormalizeAnswer(truth)));

    public static double QaF1Zh(string prediction, string truth)
    {
        static List<string> Tokens(string s) => ChineseSegmenter.Cut(s).Select(NormalizeZhAnswer).Where(t => t.Length > 0).ToList();
        return F1(Tokens(prediction), Tokens(truth));
    }

    /// <summary>ROUGE-L F of the <c>rouge</c> package (<c>Rouge().get_scores([p], [g], avg=True)["rouge-l"]["f"]</c>),
    /// 0 where it raises (an empty hypothesis or reference, or Python's recursion limit in its LCS walk).</summary>
    public static double Rouge(string prediction, string truth) => RougeL(prediction, truth, FramesBelowRecon);

    public static double RougeZh(string prediction, string truth) =>
        RougeL(string.Join(' ', ChineseSegmenter.Cut(prediction)), string.Join(' ', ChineseSegmenter.Cut(truth)), FramesBelowRecon + 1);

    /// <summary>Python frames on the stack when <c>rouge_score._recon</c> is first entered from LongBench's
    /// eval.py (module, scorer, rouge_score, get_scores, _get_avg_scores, lambda, rouge_l_summary_level,
    /// _union_lcs, _recon_lcs); rouge_zh_score adds one. With Python's default limit of 1000 frames, an LCS walk
    /// longer than the rest raises RecursionError, which LongBench's bare <c>except</c> scores as 0.</summary>
    public const int FramesBelowRecon = 9;
    public const int PythonRecursionLimit = 1000;

    private static List<string> Sentences(string text)
    {
        var list = new List<string>();
        foreach (var piece in text.Split('.'))
            if (piece.Length > 0) list.Add(string.Join(' ', PyJson.SplitWhitespace(piece)));
        return list;
    }

    private static double RougeL(string prediction, string truth, int framesBelow)
    {
        var hyp = Sentences(prediction);
        var reference = Sentences(truth);
        if (hyp.Count == 0 || reference.Count == 0) return 0.0;              // ValueError → except → 0
        var hypWords = hyp.Select(s => s.Split(' ')).ToList();
        var refWords = reference.Select(s => s.Split(' ')).ToList();
        int m = refWords.SelectMany(w => w).Distinct(StringComparer.Ordinal).Count();
        int n = hypWords.SelectMany(w => w).Distinct(StringComparer.Ordinal).Count();
        var union = new HashSet<string>(StringComparer.Ordinal);
        foreach (var r in refWords)
            foreach (var h in hypWords)
            {
                var lcs = ReconLcs(r, h, out int frames);
                if (framesBelow + frames > PythonRecursionLimit) return 0.0;    // RecursionError → 0
                union.UnionWith(lcs);
            }
        double llcs = union.Count, rLcs = llcs / m, pLcs = llcs / n;
        return 2.0 * (pLcs * rLcs / (pLcs + rLcs + 1e-8));
    }

    /// <summary>The words of the LCS of x (reference) and y as <c>_recon_lcs</c> walks back (ties go left),
    /// and how many nested <c>_recon</c> calls that walk makes.</summary>
    private static List<string> ReconLcs(string[] x, string[] y, out int frames)
    {
        int n = x.Length, mm = y.Length;
        var table = new int[n + 1, mm + 1];
        for (int i = 1; i <= n; i++)
            for (int j = 1; j <= mm; j++)
                table[i, j] = x[i - 1] == y[j - 1] ? table[i - 1, j - 1] + 1 : Math.Max(table[i - 1, j], table[i, j - 1]);
        var words = new List<string>();
        int a = n, b = mm;
        frames = 1;
        while (a > 0 && b > 0)
        {
            if (x[a - 1] == y[b - 1]) { words.Add(x[a - 1]); a--; b--; }
            else if (table[a - 1, b] > table[a, b - 1]) a--;
            else b--;
            frames++;
        }
        return words;
    }

    /// <summary><c>classification_score</c>, including the list-mutation-while-iterating of the reference.</summary>
    public static double Classification(string prediction, string truth, IReadOnlyList<string> allClasses)
    {
        var matches = allClasses.Where(c => prediction.Contains(c, StringComparison.Ordinal)).ToList();
        for (int i = 0; i < matches.Count; i++)
        {
            string term = matches[i];
            if (truth.Contains(term, StringComparison.Ordinal) && term != truth)
                matches.RemoveAt(matches.IndexOf(term));      // list.remove: the first equal element; the loop index moves on
        }
        return matches.Contains(truth) ? 1.0 / matches.Count : 0.0;
    }

    private static readonly Regex Digits = new(@"\d+", RegexOptions.CultureInvariant);

    public static double Retrieval(string prediction, string truth, string pattern)
    {
        var m = Regex.Match(truth, pattern);
        if (!m.Success) throw new HiciException($"retrieval answer '{truth}' has no '{pattern}' id");
        return Ratio(prediction, m.Groups[1].Value);
    }

    public static double Count(string prediction, string truth) => Ratio(prediction, truth);

    private static double Ratio(string prediction, string truth)
    {
        var numbers = Digits.Matches(prediction);
        if (numbers.Count == 0) return 0.0;
        return numbers.Count(x => x.Value == truth) / (double)numbers.Count;
    }

    /// <summary><c>code_sim_score</c>: the first line without ` # // (after lstrip of "\n"), fuzz.ratio / 100.</summary>
    public static double CodeSim(string prediction, string truth)
    {
        string line = "";
        foreach (var l in prediction.TrimStart('\n').Split('\n'))
            if (!l.Contains('`') && !l.Contains('#') && !l.Contains("//", StringComparison.Ordinal)) { line = l; break; }
        return PyDifflib.FuzzRatio(line, truth) / 100.0;
    }
}
