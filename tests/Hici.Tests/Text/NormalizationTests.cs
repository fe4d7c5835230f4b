using System.Text.Json;
using Hici.Text.Unicode;

namespace Hici.Tests.Text;

/// <summary>The managed NFC/NFD against JavaScript's String.prototype.normalize (ICU).</summary>
public class NormalizationTests
{
    [Fact]
    public void MatchesIcu()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestData.Fixture("unicode", "normalization.expected.json")));
        var failures = new List<string>();
        int n = 0;
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            n++;
            string text = c[0].GetString()!, nfc = c[1].GetString()!, nfd = c[2].GetString()!;
            if (CanonicalNormalizer.Nfc(text) != nfc) failures.Add($"NFC {Escape(text)}: got {Escape(CanonicalNormalizer.Nfc(text))}, want {Escape(nfc)}");
            if (CanonicalNormalizer.Nfd(text) != nfd) failures.Add($"NFD {Escape(text)}: got {Escape(CanonicalNormalizer.Nfd(text))}, want {Escape(nfd)}");
        }
        Assert.True(n > 3000, $"only {n} cases");
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches, e.g.\n{string.Join('\n', failures.Take(10))}");
    }

    static string Escape(string s) => string.Concat(s.EnumerateRunes().Select(r => $"U+{r.Value:X4} "));

    [Fact]
    public void LoneSurrogatesPassThrough() => Assert.Equal("a\uD800e\u0301", CanonicalNormalizer.Nfd("a\uD800é"));
}
