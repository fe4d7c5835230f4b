using System.Text.Json;
using Hici.Tests.Cli;
using Hici.Tests.Text;
using Hici.Text;
using Hici.Training;

namespace Hici.Tests.Training;

[Collection("Console")]
public class DataTests
{
    [Fact]
    public void TokenFilesRoundTripInBothWidths()
    {
        using var dir = new TempDir();
        foreach (var (dtype, vocab, ids) in new[] { ("uint16", 65536, new[] { 0, 1, 65535 }), ("uint32", 151936, new[] { 0, 70000, 151935 }) })
        {
            var bin = Path.Combine(dir.Path, dtype + ".bin");
            Assert.Equal(dtype, TokenFileInfo.DTypeFor(vocab));
            using (var w = new TokenFileWriter(bin, dtype)) { w.Add(ids); w.Commit(); }
            Assert.Equal(ids.Length * (dtype == "uint16" ? 2 : 4), new FileInfo(bin).Length);
            // a bare .bin (no metadata): the vocabulary-size rule decides the width
            using (var f = TokenFile.Open(bin, vocab)) Assert.Equal(ids.Select(i => (long)i), f.Read(0, ids.Length));
            new TokenFileInfo("t", dtype, ids.Length, 1, VocabSize: vocab).Save(bin);
            using (var f = TokenFile.Open(bin, vocab)) Assert.Equal(3, f.Length);
        }
        var b16 = Path.Combine(dir.Path, "uint16.bin");
        Assert.Contains("made with a vocabulary of 65536", Assert.Throws<HiciException>(() => TokenFile.Open(b16, 1000)).Message);
        File.Delete(b16 + ".json");
        Assert.Contains("outside the model's vocabulary", Assert.Throws<HiciException>(() => { using var f = TokenFile.Open(b16, 1000); f.Read(0, 3); }).Message);
        new TokenFileInfo("t", "uint16", 3, 1).Save(b16);
        File.WriteAllBytes(b16, new byte[5]);
        Assert.Contains("whole number", Assert.Throws<HiciException>(() => TokenFile.Open(b16, 65536)).Message);
        File.WriteAllBytes(b16, new byte[4]);
        Assert.Contains("says 3", Assert.Throws<HiciException>(() => TokenFile.Open(b16, 65536)).Message);
    }

    [Fact]
    public void PrepareDataReadsTextJsonlAndAlpaca()
    {
        using var dir = new TempDir();
        var tokDir = TestData.TokenizerDir("llama2");
        var tok = HfTokenizer.Load(tokDir);
        var input = Path.Combine(dir.Path, "in");
        Directory.CreateDirectory(input);
        File.WriteAllText(Path.Combine(input, "a.txt"), "The quick brown fox.");
        File.WriteAllText(Path.Combine(input, "b.jsonl"), "{\"text\": \"Hello world\", \"meta\": {}}\n{\"text\": \"Second line\"}\n");
        File.WriteAllText(Path.Combine(input, "c.json"), "[{\"instruction\": \"Say hi\", \"output\": \"hi\"}]");
        var bin = Path.Combine(dir.Path, "out.bin");
        var r = CliRunner.Run("prepare-data", "--tokenizer", tokDir, "--input", input, "--output", bin);
        Assert.Equal(0, r.Code);
        var docs = new[] { "The quick brown fox.", "Hello world", "Second line", "Say hi\n\nhi" };
        var expected = docs.SelectMany(d => tok.Encode(d).Append(tok.EosId!.Value)).Select(i => (long)i).ToArray();
        using var f = TokenFile.Open(bin, 32000);
        Assert.Equal(expected, f.Read(0, (int)f.Length));
        var meta = JsonDocument.Parse(File.ReadAllText(bin + ".json")).RootElement;
        Assert.Equal("uint16", meta.GetProperty("dtype").GetString());
        Assert.Equal(4, meta.GetProperty("documents").GetInt32());
        Assert.Equal(expected.Length, meta.GetProperty("tokens").GetInt32());
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp-*"));
    }

    [Fact]
    public void ReferencePackingGroupsJoinsWithEosPadsAndChunks()
    {
        using var dir = new TempDir();
        var tokDir = TestData.TokenizerDir("llama2");
        var tok = HfTokenizer.Load(tokDir);
        var input = Path.Combine(dir.Path, "d.jsonl");
        File.WriteAllText(input, "{\"text\": \"one two three\"}\n{\"text\": \"four five\"}\n");
        var bin = Path.Combine(dir.Path, "p.bin");
        var info = DataPreparer.Prepare(new[] { input }, CorpusFormat.Auto, tok, "llama2", bin, new PrepareOptions(16, 0));
        // one group: "one two three</s>four five" tokenized once (one BOS), the EOS string parsed as the EOS id
        var ids = tok.Encode("one two three" + tok.EosToken + "four five");
        Assert.Equal(tok.BosId, ids[0]);
        Assert.Equal(1, ids.Count(i => i == tok.BosId));
        Assert.Contains(tok.EosId!.Value, ids);
        Assert.Equal(16, info.ChunkLength);
        Assert.Equal(0, info.Tokens % 16);
        using var f = TokenFile.Open(bin, 32000);
        var got = f.Read(0, (int)f.Length);
        Assert.Equal(ids.Select(i => (long)i), got.Take(ids.Length));
        Assert.All(got.Skip(ids.Length), t => Assert.Equal(0, t));
        // the pad id carries no loss, and a sampler of another length is refused
        var b = new PretrainBatches(new TokenSampler(f, 16, 1, shuffle: false), info.PadId).Next(1);
        Assert.Equal(got.Length - ids.Length, b.Labels.Count(l => l == CausalLoss.IgnoreIndex));
        Assert.Throws<HiciException>(() => new TokenSampler(f, 8, 1));
    }

    [Fact]
    public void PrepareDataErrorsAreOneLine()
    {
        using var dir = new TempDir();
        var bad = Path.Combine(dir.Path, "bad.jsonl");
        File.WriteAllText(bad, "{\"txt\": 1}\n");
        var tok = TestData.TokenizerDir("llama2");
        Assert.Contains("no string field \"text\"", CliRunner.AssertOneLineError(CliRunner.Run("prepare-data", "--tokenizer", tok, "--input", bad, "--output", Path.Combine(dir.Path, "o.bin"))));
        Assert.Contains("no such file or folder", CliRunner.AssertOneLineError(CliRunner.Run("prepare-data", "--tokenizer", tok, "--input", Path.Combine(dir.Path, "nope"), "--output", Path.Combine(dir.Path, "o.bin"))));
        Assert.False(File.Exists(Path.Combine(dir.Path, "o.bin")));
    }
}
