using System.Text;
using System.Text.RegularExpressions;
using Hici.I3;
using Hici.Text;

namespace Hici.Tests.I3;

/// <summary>The i3 BPE trainer: vocabulary layout, HF tokenizer.json read back by HfTokenizer with identical ids, round trip, determinism.</summary>
public class BpeTrainerTests
{
    /// <summary>GPT-2's bytes_to_unicode, written from its definition: printable bytes map to themselves, the rest to 256, 257, ….</summary>
    private static readonly char[] ByteToChar = BuildByteToChar();

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
            map[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) ? (char)b : (char)(256 + n++);
        return map;
    }

    /// <summary>A synthetic corpus: words built from a few syllables, so pairs repeat and merges are learned.</summary>
    private static List<string> Corpus(int docs = 60, int seed = 3)
    {
        var r = new Random(seed);
        string[] syl = ["ka", "to", "ri", "mu", "sen", "la", "vo", "que", "dé", "日本", "ß", "on", "ar", "ti", "ng", " "];
        var words = Enumerable.Range(0, 800).Select(_ => string.Concat(Enumerable.Range(0, r.Next(1, 6)).Select(_ => syl[r.Next(syl.Length - 1)]))).ToArray();
        return Enumerable.Range(0, docs).Select(_ =>
        {
            var sb = new StringBuilder();
            for (int i = 0; i < 120; i++) sb.Append(i > 0 ? " " : "").Append(words[(int)Math.Min(words.Length - 1, Math.Abs(r.NextDouble() * r.NextDouble()) * words.Length)]).Append(r.Next(12) == 0 ? ",\n" : "");
            sb.Append(". 42 it's 3.14!\n");
            return sb.ToString();
        }).ToList();
    }

    private static (BpeTrainer.Result Result, HfTokenizer Tok, string Dir) TrainAndLoad(int vocab = 512)
    {
        var t = new BpeTrainer();
        foreach (var d in Corpus()) t.Add(d);
        var r = t.Train(vocab);
        var dir = Path.Combine(Path.GetTempPath(), "i3-bpe-" + Guid.NewGuid().ToString("N")[..8]);
        BpeTrainer.Save(r, dir);
        return (r, HfTokenizer.Load(dir), dir);
    }

    [Fact]
    public void LayoutAndIdsReadBackByTheProjectLoader()
    {
        var (r, tok, dir) = TrainAndLoad();
        try
        {
            Assert.Equal(512, r.VocabSize);
            Assert.Equal(512, tok.VocabSize);
            for (int i = 0; i < I3Tokenizer.SpecialTokens.Length; i++) Assert.Equal(i, tok.TokenToId(I3Tokenizer.SpecialTokens[i]));
            Assert.Equal(new[] { "<UNK>", "<PAD>", "<BOS>", "<EOS>", "<|im_start|>", "<|im_end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|endoftext|>", "<|eot_id|>", "[INST]", "[/INST]" }, I3Tokenizer.SpecialTokens);
            for (int b = 0; b < 256; b++) Assert.Equal(13 + b, tok.TokenToId(ByteToChar[b].ToString()));
            for (int i = 0; i < r.VocabSize; i++) Assert.Equal(i, tok.TokenToId(r.Tokens[i]));
            // a special token in text is one id
            Assert.Equal(new[] { 5 }, tok.Encode("<|im_end|>", addSpecialTokens: false));
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>Encoding through HfTokenizer equals applying our merges by rank to GPT-2 pre-tokens (written here from the definition).</summary>
    [Fact]
    public void EncodingEqualsMergesAppliedByRank()
    {
        var (r, tok, dir) = TrainAndLoad();
        try
        {
            var rank = r.Merges.Select((m, i) => (m, i)).ToDictionary(x => x.m, x => x.i);
            var id = r.Tokens.Select((t, i) => (t, i)).GroupBy(x => x.t).ToDictionary(g => g.Key, g => g.First().i);
            var gpt2 = new Regex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+");
            foreach (var doc in Corpus(5, 99))
            {
                var expected = new List<int>();
                foreach (Match m in gpt2.Matches(doc))
                {
                    var syms = Encoding.UTF8.GetBytes(m.Value).Select(b => ByteToChar[b].ToString()).ToList();
                    while (true)
                    {
                        int best = -1, bestRank = int.MaxValue;
                        for (int i = 0; i + 1 < syms.Count; i++)
                            if (rank.TryGetValue((syms[i], syms[i + 1]), out int rk) && rk < bestRank) { best = i; bestRank = rk; }
                        if (best < 0) break;
                        syms[best] += syms[best + 1];
                        syms.RemoveAt(best + 1);
                    }
                    expected.AddRange(syms.Select(s => id[s]));
                }
                Assert.Equal(expected, tok.Encode(doc, addSpecialTokens: false));
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void RoundTripOnRandomUnicode()
    {
        var (_, tok, dir) = TrainAndLoad();
        try
        {
            var r = new Random(8);
            string[] pieces = ["🎉", "日本語", "\t", "\n\n", "\u0001", "é", "ß", " ", "  ", "ka", "x", "\u200b", "Ω", "𝐀", "'s", "42", "\r\n", "<|im_end|>"];
            for (int i = 0; i < 200; i++)
            {
                var s = string.Concat(Enumerable.Range(0, r.Next(1, 30)).Select(_ => r.Next(3) == 0 ? ((char)r.Next(0x20, 0xD7FF)).ToString() : pieces[r.Next(pieces.Length)]));
                var ids = tok.Encode(s, addSpecialTokens: false);
                Assert.All(ids, x => Assert.NotEqual(I3Tokenizer.UnkId, x));
                Assert.Equal(s, tok.Decode(ids));
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void SameCorpusSameMerges()
    {
        var (a, _, d1) = TrainAndLoad();
        var (b, _, d2) = TrainAndLoad();
        try
        {
            Assert.Equal(a.Merges, b.Merges);
            Assert.Equal(File.ReadAllBytes(Path.Combine(d1, "tokenizer.json")), File.ReadAllBytes(Path.Combine(d2, "tokenizer.json")));
        }
        finally { Directory.Delete(d1, true); Directory.Delete(d2, true); }
    }

    [Fact]
    public void RejectsTooSmallVocabulary() => Assert.Throws<HiciException>(() => new BpeTrainer().Train(200));

    [Fact]
    public void BrownDetagging() =>
        Assert.Equal("The jury said \"no evidence\" that, in Atlanta's primary.",
            I3Corpus.Detag("\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' that/cs ,/, in/in Atlanta's/np$ primary/nn ./.\n"));

    /// <summary>One de-tagger for i3 (paragraphs on lines) and the demo (paragraphs apart by a blank line); expected texts by hand.</summary>
    [Fact]
    public void BrownDetaggingSeparatesParagraphsAsAsked()
    {
        const string tagged = "\n\n\tThe/at jury/nn said/vbd ./.\n\n\n\tIt/pps ended/vbd (/( quietly/rb )/) ./.\n";
        Assert.Equal("The jury said.\nIt ended (quietly).", I3Corpus.Detag(tagged));
        Assert.Equal("The jury said.\n\nIt ended (quietly).", Hici.Cli.Demo.BrownCorpus.Detag(tagged));
    }
}
