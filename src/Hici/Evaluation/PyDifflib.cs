using System.Text;

namespace Hici.Evaluation;

/// <summary>
/// Python's <c>difflib.SequenceMatcher(None, a, b).ratio()</c> on two strings (compared by code point), with
/// its "autojunk" rule (in a b of ≥ 200 elements, elements occurring more than 1% + 1 times are not used to
/// start matches, only to extend them). LongBench's <c>code_sim_score</c> calls <c>fuzzywuzzy.fuzz.ratio</c>,
/// which is this ratio when python-Levenshtein is not installed (LongBench's requirements do not list it).
/// </summary>
public static class PyDifflib
{
    public static double Ratio(string a, string b)
    {
        int[] x = CodePoints(a), y = CodePoints(b);
        int total = x.Length + y.Length;
        if (total == 0) return 1.0;
        return 2.0 * Matches(x, y) / total;
    }

    /// <summary><c>fuzz.ratio(s1, s2)</c> of fuzzywuzzy: 100 when equal, 0 when either is empty, else round(100·ratio).</summary>
    public static int FuzzRatio(string s1, string s2)
    {
        if (s1 == s2) return 100;
        if (s1.Length == 0 || s2.Length == 0) return 0;
        return (int)Math.Round(100 * Ratio(s1, s2), MidpointRounding.ToEven);
    }

    private static int[] CodePoints(string s)
    {
        var list = new List<int>(s.Length);
        foreach (var r in s.EnumerateRunes()) list.Add(r.Value);
        return list.ToArray();
    }

    private static int Matches(int[] a, int[] b)
    {
        var b2j = new Dictionary<int, List<int>>();
        for (int i = 0; i < b.Length; i++)
        {
            if (!b2j.TryGetValue(b[i], out var l)) b2j[b[i]] = l = new List<int>();
            l.Add(i);
        }
        if (b.Length >= 200)
        {
            int ntest = b.Length / 100 + 1;
            foreach (var k in b2j.Where(kv => kv.Value.Count > ntest).Select(kv => kv.Key).ToList()) b2j.Remove(k);
        }
        int matches = 0;
        var queue = new Stack<(int, int, int, int)>();
        queue.Push((0, a.Length, 0, b.Length));
        while (queue.Count > 0)
        {
            var (alo, ahi, blo, bhi) = queue.Pop();
            var (i, j, k) = LongestMatch(a, b, b2j, alo, ahi, blo, bhi);
            if (k == 0) continue;
            matches += k;
            // same order as difflib's list-as-stack (the sum does not depend on it, the blocks found do)
            if (alo < i && blo < j) queue.Push((alo, i, blo, j));
            if (i + k < ahi && j + k < bhi) queue.Push((i + k, ahi, j + k, bhi));
        }
        return matches;
    }

    private static (int, int, int) LongestMatch(int[] a, int[] b, Dictionary<int, List<int>> b2j, int alo, int ahi, int blo, int bhi)
    {
        int besti = alo, bestj = blo, bestsize = 0;
        var j2len = new Dictionary<int, int>();
        for (int i = alo; i < ahi; i++)
        {
            var newj2len = new Dictionary<int, int>();
            if (b2j.TryGetValue(a[i], out var js))
                foreach (int j in js)
                {
                    if (j < blo) continue;
                    if (j >= bhi) break;
                    int k = (j2len.TryGetValue(j - 1, out int prev) ? prev : 0) + 1;
                    newj2len[j] = k;
                    if (k > bestsize) { besti = i - k + 1; bestj = j - k + 1; bestsize = k; }
                }
            j2len = newj2len;
        }
        // no junk function: "popular" elements are not junk, so matches extend over them
        while (besti > alo && bestj > blo && a[besti - 1] == b[bestj - 1]) { besti--; bestj--; bestsize++; }
        while (besti + bestsize < ahi && bestj + bestsize < bhi && a[besti + bestsize] == b[bestj + bestsize]) bestsize++;
        return (besti, bestj, bestsize);
    }
}
