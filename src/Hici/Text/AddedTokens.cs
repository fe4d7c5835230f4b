using System.Globalization;

namespace Hici.Text;

/// <summary>A token added on top of the model vocabulary (tokenizer.json "added_tokens").</summary>
/// <param name="Special">Skipped by Decode(skipSpecialTokens: true).</param>
/// <param name="SingleWord">Only matches when not inside a word.</param>
/// <param name="LStrip">Swallows the whitespace on its left.</param>
/// <param name="RStrip">Swallows the whitespace on its right.</param>
/// <param name="Normalized">Matched against the normalized text instead of the raw text.</param>
public sealed record AddedToken(int Id, string Content, bool Special, bool SingleWord = false,
    bool LStrip = false, bool RStrip = false, bool Normalized = false);

/// <summary>
/// Finds added tokens in text the way HF `tokenizers` does: leftmost-longest matching (its
/// Aho-Corasick automaton), then single_word / lstrip / rstrip applied to each match.
/// </summary>
internal sealed class AddedTokenMatcher
{
    sealed class Node
    {
        public Dictionary<char, Node>? Next;
        public AddedToken? Token;
    }

    readonly Node _root = new();

    /// <param name="patterns">(text to match, token) pairs; normalized tokens match their normalized form.</param>
    public AddedTokenMatcher(IEnumerable<(string Pattern, AddedToken Token)> patterns)
    {
        foreach (var (pattern, token) in patterns)
        {
            if (pattern.Length == 0) continue;
            var node = _root;
            foreach (char c in pattern)
            {
                node.Next ??= new Dictionary<char, Node>();
                if (!node.Next.TryGetValue(c, out var child)) node.Next[c] = child = new Node();
                node = child;
            }
            node.Token ??= token;
        }
    }

    public bool IsEmpty => _root.Next is null;

    /// <summary>Splits text into pieces covering it: (start, end, token or null for plain text).</summary>
    public void Split(string text, List<(int Start, int End, AddedToken? Token)> pieces)
    {
        int offset = 0;
        for (int i = 0; i < text.Length;)
        {
            var (token, end) = LongestAt(text, i);
            if (token is null) { i++; continue; }
            int start = i;
            if (token.SingleWord && !(IsWordBoundaryBefore(text, start) && IsWordBoundaryAfter(text, end)))
            {
                // HF discards the match and resumes after it, like its automaton's iterator.
                i = end;
                continue;
            }
            if (token.LStrip)
            {
                int s = start;
                while (s > 0 && char.IsWhiteSpace(text[s - 1])) s--;
                start = Math.Max(s, offset);
            }
            if (token.RStrip)
                while (end < text.Length && char.IsWhiteSpace(text[end])) end++;
            if (offset < start) pieces.Add((offset, start, null));
            pieces.Add((start, end, token));
            offset = i = end;
        }
        if (offset < text.Length) pieces.Add((offset, text.Length, null));
    }

    (AddedToken? Token, int End) LongestAt(string text, int i)
    {
        var node = _root;
        AddedToken? best = null;
        int bestEnd = i;
        for (int j = i; j < text.Length && node.Next is not null && node.Next.TryGetValue(text[j], out var child); j++)
        {
            node = child;
            if (node.Token is not null) { best = node.Token; bestEnd = j + 1; }
        }
        return (best, bestEnd);
    }

    // Rust's regex \w: letters, marks, decimal digits, letter numbers, connector punctuation, joiners.
    static bool IsWordChar(int cp)
    {
        if (cp is 0x200C or 0x200D) return true;
        var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat <= UnicodeCategory.EnclosingMark // the letter and mark categories come first
            || cat is UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.ConnectorPunctuation;
    }

    static bool IsWordBoundaryBefore(string text, int start)
    {
        if (start == 0) return true;
        int i = char.IsLowSurrogate(text[start - 1]) && start >= 2 ? start - 2 : start - 1;
        return !IsWordChar(Unicode.CanonicalNormalizer.CodePointAt(text, i, out _));
    }

    static bool IsWordBoundaryAfter(string text, int end) =>
        end >= text.Length || !IsWordChar(Unicode.CanonicalNormalizer.CodePointAt(text, end, out _));
}
