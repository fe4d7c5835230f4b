using System.Globalization;
using System.Text;

namespace Hici.Text.Unicode;

/// <summary>
/// NFC and NFD in managed code. Use these instead of <see cref="string.Normalize()"/>: the repository
/// runs with InvariantGlobalization, where that silently returns non-ASCII text unchanged, and
/// Qwen-style tokenizers put NFC in front of everything. Tables: UnicodeData.g.cs (generated).
/// </summary>
public static class CanonicalNormalizer
{
    const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    static readonly byte[] CccBmp = new byte[0x10000];
    static readonly Dictionary<int, byte> CccAstral = new();
    static readonly Dictionary<int, int[]> FullDecomposition = new();
    static readonly Dictionary<long, int> Composition = new();
    // Code points that can make NFC/NFD differ from the input: non-starters, characters that
    // decompose, and characters that can be the second half of a composition. Text without them
    // is returned as is, which keeps NFC nearly free on ordinary prose, CJK and Cyrillic.
    static readonly bool[] NfcTriggerBmp = new bool[0x10000];
    static readonly bool[] NfdTriggerBmp = new bool[0x10000];
    static readonly HashSet<int> NfcTriggerAstral = new(), NfdTriggerAstral = new();

    static CanonicalNormalizer()
    {
        foreach (var item in UnicodeData.CombiningClasses.Split(','))
        {
            int colon = item.IndexOf(':');
            var range = item[..colon];
            byte ccc = byte.Parse(item[(colon + 1)..], CultureInfo.InvariantCulture);
            int dash = range.IndexOf('-');
            int a = Hex(dash < 0 ? range : range[..dash]), b = dash < 0 ? a : Hex(range[(dash + 1)..]);
            for (int cp = a; cp <= b; cp++)
            {
                if (cp < 0x10000) CccBmp[cp] = ccc; else CccAstral[cp] = ccc;
                MarkTrigger(cp, nfc: true, nfd: true);
            }
        }
        var single = new Dictionary<int, int[]>();
        foreach (var item in UnicodeData.Decompositions.Split(';'))
        {
            int sep = item.IndexOfAny(['=', '>']);
            int cp = Hex(item[..sep]);
            var parts = item[(sep + 1)..].Split(' ').Select(Hex).ToArray();
            single[cp] = parts;
            bool composes = item[sep] == '=';
            if (composes) Composition[Key(parts[0], parts[1])] = cp;
            MarkTrigger(cp, nfc: !composes, nfd: true);
            if (composes) MarkTrigger(parts[1], nfc: true, nfd: false);
        }
        foreach (var cp in single.Keys) FullDecomposition[cp] = Expand(cp, single).ToArray();
        for (int v = VBase; v < VBase + VCount; v++) MarkTrigger(v, nfc: true, nfd: false);
        for (int t = TBase + 1; t < TBase + TCount; t++) MarkTrigger(t, nfc: true, nfd: false);
        for (int s = SBase; s < SBase + SCount; s++) MarkTrigger(s, nfc: false, nfd: true);
    }

    static int Hex(string s) => int.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
    static long Key(int a, int b) => ((long)a << 21) | (uint)b;

    static IEnumerable<int> Expand(int cp, Dictionary<int, int[]> single) =>
        single.TryGetValue(cp, out var parts) ? parts.SelectMany(p => Expand(p, single)) : [cp];

    static void MarkTrigger(int cp, bool nfc, bool nfd)
    {
        if (cp < 0x10000)
        {
            if (nfc) NfcTriggerBmp[cp] = true;
            if (nfd) NfdTriggerBmp[cp] = true;
        }
        else
        {
            if (nfc) NfcTriggerAstral.Add(cp);
            if (nfd) NfdTriggerAstral.Add(cp);
        }
    }

    public static int CombiningClass(int cp) =>
        cp < 0x10000 ? CccBmp[cp] : CccAstral.GetValueOrDefault(cp);

    public static string Nfc(string s) => Normalize(s, compose: true);
    public static string Nfd(string s) => Normalize(s, compose: false);

    static string Normalize(string s, bool compose)
    {
        var bmp = compose ? NfcTriggerBmp : NfdTriggerBmp;
        var astral = compose ? NfcTriggerAstral : NfdTriggerAstral;
        int first = -1, lastStarter = 0;
        for (int i = 0; i < s.Length;)
        {
            int cp = CodePointAt(s, i, out int width);
            bool trigger = cp < 0x10000 ? bmp[cp] : astral.Contains(cp);
            if (trigger) { first = i; break; }
            lastStarter = i;
            i += width;
        }
        if (first < 0) return s;
        // Everything before the last starter ahead of the first trigger is unaffected.
        int from = Math.Min(lastStarter, first);
        var cps = new List<int>(s.Length - from + 8);
        for (int i = from; i < s.Length;)
        {
            Decompose(CodePointAt(s, i, out int width), cps);
            i += width;
        }
        Reorder(cps);
        if (compose) Compose(cps);
        var sb = new StringBuilder(s.Length + 8);
        sb.Append(s, 0, from);
        foreach (var cp in cps)
        {
            if (cp < 0x10000) sb.Append((char)cp);
            else sb.Append(char.ConvertFromUtf32(cp));
        }
        return sb.ToString();
    }

    /// <summary>The code point at <paramref name="i"/>; a lone surrogate is returned as itself so
    /// that malformed input passes through unchanged instead of throwing.</summary>
    internal static int CodePointAt(string s, int i, out int width)
    {
        char c = s[i];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            width = 2;
            return char.ConvertToUtf32(c, s[i + 1]);
        }
        width = 1;
        return c;
    }

    static void Decompose(int cp, List<int> output)
    {
        int sIndex = cp - SBase;
        if (sIndex >= 0 && sIndex < SCount)
        {
            output.Add(LBase + sIndex / NCount);
            output.Add(VBase + sIndex % NCount / TCount);
            int t = sIndex % TCount;
            if (t != 0) output.Add(TBase + t);
            return;
        }
        if (FullDecomposition.TryGetValue(cp, out var parts)) output.AddRange(parts);
        else output.Add(cp);
    }

    // Canonical ordering: a stable sort of each run of non-starters by combining class.
    static void Reorder(List<int> cps)
    {
        for (int i = 1; i < cps.Count; i++)
        {
            int c = CombiningClass(cps[i]);
            if (c == 0) continue;
            for (int j = i; j > 0 && CombiningClass(cps[j - 1]) > c; j--)
                (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]);
        }
    }

    // The canonical composition algorithm of UAX #15 (a blocked mark cannot compose).
    static void Compose(List<int> cps)
    {
        if (cps.Count == 0) return;
        int starterPos = 0, starter = cps[0];
        int lastClass = CombiningClass(starter) == 0 ? 0 : 256;
        int target = 1;
        for (int i = 1; i < cps.Count; i++)
        {
            int ch = cps[i], chClass = CombiningClass(ch);
            int composite = ComposePair(starter, ch);
            if (composite >= 0 && (lastClass < chClass || lastClass == 0))
            {
                cps[starterPos] = starter = composite;
                continue;
            }
            if (chClass == 0) { starterPos = target; starter = ch; }
            lastClass = chClass;
            cps[target++] = ch;
        }
        cps.RemoveRange(target, cps.Count - target);
    }

    static int ComposePair(int a, int b)
    {
        int lIndex = a - LBase, vIndex = b - VBase;
        if (lIndex >= 0 && lIndex < LCount && vIndex >= 0 && vIndex < VCount)
            return SBase + (lIndex * VCount + vIndex) * TCount;
        int sIndex = a - SBase, tIndex = b - TBase;
        if (sIndex >= 0 && sIndex < SCount && sIndex % TCount == 0 && tIndex > 0 && tIndex < TCount)
            return a + tIndex;
        return Composition.TryGetValue(Key(a, b), out var c) ? c : -1;
    }
}
