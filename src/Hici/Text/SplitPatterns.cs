using System.Globalization;
using System.Text.RegularExpressions;

namespace Hici.Text;

/// <summary>Finds the non-overlapping matches of a Split pre-tokenizer's pattern, left to right.</summary>
internal interface ISplitPattern
{
    void FindMatches(string text, List<(int Start, int End)> matches);
}

internal static class SplitPatterns
{
    // The pre-tokenizer regexes of Llama-3 (OpenAI cl100k_base) and Qwen2/Qwen3 (digits one by one).
    public const string Llama3 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    public const string Qwen2 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    public const string Gpt2 = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public static ISplitPattern FromRegex(string pattern, string file) => pattern switch
    {
        Llama3 => new Cl100kStyleSplitter(maxDigits: 3),
        Qwen2 => new Cl100kStyleSplitter(maxDigits: 1),
        _ => new RegexSplitPattern(pattern, file),
    };

    public static ISplitPattern FromString(string literal) => new LiteralSplitPattern(literal);
}

/// <summary>
/// Hand-written matcher for the cl100k-style pattern (Llama-3; Qwen with single digits). .NET's
/// Regex matches UTF-16 code units, so \p{L} and \p{N} never match astral letters and digits
/// (𝐀, 𠀀, 𝟏) and the pattern would split them differently from Oniguruma, which HF's
/// `tokenizers` uses. This walks code points, and is several times faster than Regex.
/// Whitespace is Unicode White_Space (as in Oniguruma and .NET's \s, unlike JavaScript's \s).
/// </summary>
internal sealed class Cl100kStyleSplitter(int maxDigits) : ISplitPattern
{
    enum Kind : byte { Letter, Number, Space, Other }

    public void FindMatches(string text, List<(int Start, int End)> matches)
    {
        for (int i = 0; i < text.Length;)
        {
            int end = MatchAt(text, i);
            matches.Add((i, end));
            i = end;
        }
    }

    static Kind KindAt(string s, int i, out int width)
    {
        int cp = Unicode.CanonicalNormalizer.CodePointAt(s, i, out width);
        if (width == 1 && char.IsWhiteSpace((char)cp)) return Kind.Space;
        switch (CharUnicodeInfo.GetUnicodeCategory(cp))
        {
            case UnicodeCategory.UppercaseLetter:
            case UnicodeCategory.LowercaseLetter:
            case UnicodeCategory.TitlecaseLetter:
            case UnicodeCategory.ModifierLetter:
            case UnicodeCategory.OtherLetter:
                return Kind.Letter;
            case UnicodeCategory.DecimalDigitNumber:
            case UnicodeCategory.LetterNumber:
            case UnicodeCategory.OtherNumber:
                return Kind.Number;
            default:
                return Kind.Other;
        }
    }

    static int RunEnd(string s, int i, Kind kind, int maxCount = int.MaxValue)
    {
        int count = 0;
        while (i < s.Length && count < maxCount && KindAt(s, i, out int w) == kind) { i += w; count++; }
        return i;
    }

    static bool IsCrLf(char c) => c == '\r' || c == '\n';

    // Oniguruma folds case by Unicode rules, so (?i:'s) also accepts U+017F LATIN SMALL LETTER LONG S.
    static bool IsCi(char c, char lower) => c == lower || c == char.ToUpperInvariant(lower) || (lower == 's' && c == '\u017F');

    int MatchAt(string s, int i)
    {
        int n = s.Length;
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if (s[i] == '\'' && i + 1 < n)
        {
            char c = s[i + 1];
            if (IsCi(c, 's') || IsCi(c, 't') || IsCi(c, 'm') || IsCi(c, 'd')) return i + 2;
            if (i + 2 < n)
            {
                char d = s[i + 2];
                if ((IsCi(c, 'r') && IsCi(d, 'e')) || (IsCi(c, 'v') && IsCi(d, 'e')) || (IsCi(c, 'l') && IsCi(d, 'l')))
                    return i + 3;
            }
        }
        var kind = KindAt(s, i, out int w0);
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (kind == Kind.Letter) return RunEnd(s, i, Kind.Letter);
        if (kind is Kind.Space or Kind.Other && !IsCrLf(s[i]) && i + w0 < n && KindAt(s, i + w0, out _) == Kind.Letter)
            return RunEnd(s, i + w0, Kind.Letter);
        // \p{N}{1,maxDigits}
        if (kind == Kind.Number) return RunEnd(s, i, Kind.Number, maxDigits);
        // ' '?[^\s\p{L}\p{N}]+[\r\n]*
        int j = s[i] == ' ' && i + 1 < n && KindAt(s, i + 1, out _) == Kind.Other ? i + 1 : i;
        if (KindAt(s, j, out _) == Kind.Other)
        {
            j = RunEnd(s, j, Kind.Other);
            while (j < n && IsCrLf(s[j])) j++;
            return j;
        }
        // Only whitespace is left. White_Space has no astral code points, so widths are 1 here.
        int wsEnd = RunEnd(s, i, Kind.Space);
        // \s*[\r\n]+ : backtracking makes this end just after the run's last \r or \n
        for (int k = wsEnd - 1; k >= i; k--)
            if (IsCrLf(s[k])) return k + 1;
        // \s+(?!\S) : the whole run at the end of text, else all but its last character
        if (wsEnd == n) return n;
        if (wsEnd - i >= 2) return wsEnd - 1;
        // \s+
        return wsEnd;
    }
}

/// <summary>
/// Any other Split regex, with .NET semantics (documented caveat: astral \p{..} classes). A tokenizer.json is
/// input like any other: its pattern may backtrack catastrophically, or cost time linear in the text per match
/// (quadratic overall). So it runs on .NET's NonBacktracking engine (linear time) whenever the pattern allows
/// (no lookarounds, backreferences or atomic groups), and in every case under a per-match timeout and a total
/// time budget proportional to the text; exceeding either is a user error naming the file.
/// </summary>
internal sealed class RegexSplitPattern : ISplitPattern
{
    public static readonly TimeSpan PerMatchTimeout = TimeSpan.FromSeconds(1);
    /// <summary>Generous: real pre-tokenizer patterns run at well under 1 µs per character.</summary>
    public static TimeSpan Budget(int textLength) => TimeSpan.FromSeconds(2) + TimeSpan.FromTicks(textLength * 20L);   // + 2 µs per char

    readonly Regex _regex;
    readonly string _file, _pattern;
    public bool IsLinear { get; }

    public RegexSplitPattern(string pattern, string file)
    {
        _file = file;
        _pattern = pattern.Length > 60 ? pattern[..57] + "..." : pattern;
        try
        {
            try
            {
                _regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.NonBacktracking, PerMatchTimeout);
                IsLinear = true;
            }
            catch (NotSupportedException)   // constructs only backtracking can run (e.g. GPT-2's \s+(?!\S))
            {
                _regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled, PerMatchTimeout);
            }
        }
        catch (ArgumentException e) { throw new HiciException($"{file}: the Split pattern /{_pattern}/ is not a regex .NET can compile: {e.Message}"); }
    }

    public void FindMatches(string text, List<(int Start, int End)> matches)
    {
        var budget = Budget(text.Length);
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            for (var m = _regex.Match(text); m.Success; m = m.NextMatch())
            {
                if (m.Length > 0) matches.Add((m.Index, m.Index + m.Length));
                if (System.Diagnostics.Stopwatch.GetElapsedTime(start) > budget)
                    throw new HiciException($"{_file}: the Split pattern /{_pattern}/ needs more than {budget.TotalSeconds:F0} s for a text of {text.Length} characters " +
                                            "(it costs time per match that grows with the text); the tokenizer's pattern is unusable");
            }
        }
        catch (RegexMatchTimeoutException)
        {
            throw new HiciException($"{_file}: the Split pattern /{_pattern}/ took over {PerMatchTimeout.TotalSeconds:F0} s on one match " +
                                    "(catastrophic backtracking); the tokenizer's pattern is unusable");
        }
    }
}

internal sealed class LiteralSplitPattern(string literal) : ISplitPattern
{
    public void FindMatches(string text, List<(int Start, int End)> matches)
    {
        if (literal.Length == 0) return;
        for (int i = text.IndexOf(literal, StringComparison.Ordinal); i >= 0; i = text.IndexOf(literal, i + literal.Length, StringComparison.Ordinal))
            matches.Add((i, i + literal.Length));
    }
}
