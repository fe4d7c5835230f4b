using Hici.Text.Unicode;

namespace Hici.Text;

/// <summary>A tokenizer.json "normalizer": rewrites each piece of text between added tokens.</summary>
internal interface INormalizer
{
    string Normalize(string text);
}

internal sealed class NfcNormalizer : INormalizer
{
    public string Normalize(string text) => CanonicalNormalizer.Nfc(text);
}

internal sealed class NfdNormalizer : INormalizer
{
    public string Normalize(string text) => CanonicalNormalizer.Nfd(text);
}

/// <summary>HF's Prepend leaves empty text alone (so "" never becomes "▁").</summary>
internal sealed class PrependNormalizer(string prefix) : INormalizer
{
    public string Normalize(string text) => text.Length == 0 ? text : prefix + text;
}

internal sealed class ReplaceNormalizer(ISplitPattern pattern, string content) : INormalizer
{
    public string Normalize(string text) => Replace(pattern, content, text);

    internal static string Replace(ISplitPattern pattern, string content, string text)
    {
        var matches = new List<(int Start, int End)>();
        pattern.FindMatches(text, matches);
        if (matches.Count == 0) return text;
        var sb = new System.Text.StringBuilder(text.Length + matches.Count * content.Length);
        int prev = 0;
        foreach (var (s, e) in matches)
        {
            sb.Append(text, prev, s - prev).Append(content);
            prev = e;
        }
        return sb.Append(text, prev, text.Length - prev).ToString();
    }
}

internal sealed class StripNormalizer(bool left, bool right) : INormalizer
{
    public string Normalize(string text) => (left, right) switch
    {
        (true, true) => text.Trim(),
        (true, false) => text.TrimStart(),
        (false, true) => text.TrimEnd(),
        _ => text,
    };
}

internal sealed class SequenceNormalizer(IReadOnlyList<INormalizer> steps) : INormalizer
{
    public string Normalize(string text)
    {
        foreach (var step in steps) text = step.Normalize(text);
        return text;
    }
}
