using System.Text;

namespace Hici.Text;

/// <summary>A piece of normalized text on its way to the model. AtOrigin: it starts at offset 0
/// of the caller's text (Metaspace's prepend_scheme "first" depends on it).</summary>
internal readonly record struct Word(string Text, bool AtOrigin);

/// <summary>A tokenizer.json "pre_tokenizer": splits normalized text into words for the model.</summary>
internal interface IPreTokenizer
{
    /// <summary>Replaces <paramref name="words"/> by their pre-tokenized pieces (empty pieces dropped).</summary>
    void PreTokenize(List<Word> words);
}

internal enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

/// <summary>HF's Split: find matches, then keep/merge delimiters per the behavior.</summary>
internal sealed class SplitPreTokenizer(ISplitPattern pattern, SplitBehavior behavior, bool invert) : IPreTokenizer
{
    public void PreTokenize(List<Word> words)
    {
        var output = new List<Word>(words.Count * 4);
        var matches = new List<(int Start, int End)>();
        var parts = new List<(int Start, int End, bool IsMatch)>();
        foreach (var word in words)
        {
            matches.Clear();
            parts.Clear();
            pattern.FindMatches(word.Text, matches);
            int prev = 0;
            foreach (var (s, e) in matches)
            {
                if (prev < s) parts.Add((prev, s, invert));
                parts.Add((s, e, !invert));
                prev = e;
            }
            if (prev < word.Text.Length) parts.Add((prev, word.Text.Length, invert));
            foreach (var (s, e) in ApplyBehavior(parts))
                if (e > s) output.Add(new Word(word.Text.Substring(s, e - s), word.AtOrigin && s == 0));
        }
        words.Clear();
        words.AddRange(output);
    }

    // Mirrors NormalizedString::split in HF tokenizers.
    List<(int Start, int End)> ApplyBehavior(List<(int Start, int End, bool IsMatch)> parts)
    {
        var result = new List<(int Start, int End)>(parts.Count);
        bool previousMatch = false;
        switch (behavior)
        {
            case SplitBehavior.Isolated:
                foreach (var (s, e, _) in parts) result.Add((s, e));
                break;
            case SplitBehavior.Removed:
                foreach (var (s, e, m) in parts) if (!m) result.Add((s, e));
                break;
            case SplitBehavior.Contiguous:
                foreach (var (s, e, m) in parts)
                {
                    if (m == previousMatch && result.Count > 0) result[^1] = (result[^1].Start, e);
                    else result.Add((s, e));
                    previousMatch = m;
                }
                break;
            case SplitBehavior.MergedWithPrevious:
                foreach (var (s, e, m) in parts)
                {
                    if (m && !previousMatch && result.Count > 0) result[^1] = (result[^1].Start, e);
                    else result.Add((s, e));
                    previousMatch = m;
                }
                break;
            case SplitBehavior.MergedWithNext:
                for (int i = parts.Count - 1; i >= 0; i--)
                {
                    var (s, e, m) = parts[i];
                    if (m && !previousMatch && result.Count > 0) result[^1] = (s, result[^1].End);
                    else result.Add((s, e));
                    previousMatch = m;
                }
                result.Reverse();
                break;
        }
        return result;
    }
}

/// <summary>
/// HF's ByteLevel pre-tokenizer: optionally GPT-2's regex split, then every UTF-8 byte becomes its
/// printable stand-in character so the BPE vocabulary never sees raw bytes.
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : IPreTokenizer
{
    static readonly SplitPreTokenizer Gpt2Split = new(SplitPatterns.FromRegex(SplitPatterns.Gpt2, "ByteLevel"), SplitBehavior.Isolated, invert: false);

    public void PreTokenize(List<Word> words)
    {
        if (addPrefixSpace)
            for (int i = 0; i < words.Count; i++)
                if (!words[i].Text.StartsWith(' ')) words[i] = words[i] with { Text = " " + words[i].Text };
        if (useRegex) Gpt2Split.PreTokenize(words);
        for (int i = 0; i < words.Count; i++) words[i] = words[i] with { Text = ToByteLevel(words[i].Text) };
    }

    public static string ToByteLevel(string text)
    {
        int n = Encoding.UTF8.GetByteCount(text);
        if (n == text.Length)
        {
            // ASCII: one character per byte, mapped in place.
            return string.Create(n, text, static (chars, t) =>
            {
                for (int i = 0; i < t.Length; i++) chars[i] = ByteLevel.ByteToChar[t[i]];
            });
        }
        var bytes = n <= 1024 ? stackalloc byte[n] : new byte[n];
        Encoding.UTF8.GetBytes(text, bytes);
        var chars = n <= 1024 ? stackalloc char[n] : new char[n];
        for (int i = 0; i < n; i++) chars[i] = ByteLevel.ByteToChar[bytes[i]];
        return new string(chars);
    }
}

/// <summary>HF's Metaspace: spaces become the replacement (▁), a prefix ▁ per prepend_scheme, and
/// optionally a split before every ▁.</summary>
internal sealed class MetaspacePreTokenizer(char replacement, MetaspacePrepend prepend, bool split) : IPreTokenizer
{
    readonly SplitPreTokenizer _splitter = new(SplitPatterns.FromString(replacement.ToString()), SplitBehavior.MergedWithNext, invert: false);

    public void PreTokenize(List<Word> words)
    {
        for (int i = 0; i < words.Count; i++)
        {
            var w = words[i];
            var text = w.Text.Replace(' ', replacement);
            bool add = prepend == MetaspacePrepend.Always || (prepend == MetaspacePrepend.First && w.AtOrigin);
            if (add && !text.StartsWith(replacement)) text = replacement + text;
            words[i] = w with { Text = text };
        }
        if (split) _splitter.PreTokenize(words);
    }
}

internal enum MetaspacePrepend { Always, First, Never }

internal sealed class SequencePreTokenizer(IReadOnlyList<IPreTokenizer> steps) : IPreTokenizer
{
    public IReadOnlyList<IPreTokenizer> Steps => steps;

    public void PreTokenize(List<Word> words)
    {
        foreach (var step in steps) step.PreTokenize(words);
    }
}
