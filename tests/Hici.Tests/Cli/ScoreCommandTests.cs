using System.Text.Json;
using Hici.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Cli;

[Collection("Console")]
public class ScoreCommandTests
{
    private static long[] FixtureIds(string name)
    {
        var (ids, lp, lg) = ModelFixtures.Expected(name);
        using (ids) using (lp) using (lg) return ids.data<long>().ToArray();
    }

    private static string WriteIds(string dir, string json)
    {
        var p = Path.Combine(dir, "ids.json");
        File.WriteAllText(p, json);
        return p;
    }

    /// <summary>End to end: the per-token log-probs written by --out are the python reference's.</summary>
    [Theory]
    [InlineData("llama-mha-linear")]
    [InlineData("llama3-gqa-tied")]
    [InlineData("llama-dynamic")]
    public void LogprobsMatchTheReference(string name)
    {
        var dir = CliRunner.TempDir();
        try
        {
            var ids = FixtureIds(name);
            var idsFile = WriteIds(dir, JsonSerializer.Serialize(ids));
            var outFile = Path.Combine(dir, "out.json");
            // a small chunk forces the cached multi-chunk path
            var r = CliRunner.Run("score", "--model", ModelFixtures.Dir(name), "--ids", idsFile, "--out", outFile, "--chunk", "16", "--threads", "1");
            Assert.True(r.Code == 0, r.Err);
            Assert.Contains("perplexity", r.Out);

            using var doc = JsonDocument.Parse(File.ReadAllText(outFile));
            var got = doc.RootElement.GetProperty("logprobs").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            Assert.Equal(ids.Length - 1, got.Length);
            var (_, expected, _) = ModelFixtures.Expected(name);
            using (expected)
            {
                var table = expected.data<float>().ToArray();
                long vocab = expected.shape[1];
                double maxDiff = 0, nll = 0;
                for (int i = 0; i < got.Length; i++)
                {
                    double want = table[i * vocab + ids[i + 1]];
                    maxDiff = Math.Max(maxDiff, Math.Abs(got[i] - want));
                    nll -= want;
                }
                // For llama-dynamic this also checks that chunks use the full-sequence NTK base.
                Assert.True(maxDiff <= 1e-4, $"{name}: max |Δ logprob| {maxDiff:E3}");
                double gotNll = doc.RootElement.GetProperty("nll").GetDouble();
                Assert.True(Math.Abs(gotNll - nll) <= got.Length * 1e-4, $"nll {gotNll} vs {nll}");
                double ppl = Math.Exp(nll / got.Length);
                Assert.True(Math.Abs(doc.RootElement.GetProperty("ppl").GetDouble() / ppl - 1) <= 1e-4);
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void OutOfVocabularyIdNamesFilePositionAndId()
    {
        var dir = CliRunner.TempDir();
        try
        {
            var f = WriteIds(dir, "[1, 2, 300, 4]");
            var line = CliRunner.AssertOneLineError(CliRunner.Run("score", "--model", ModelFixtures.Dir("qwen3-gqa"), "--ids", f));
            Assert.Contains(f, line);
            Assert.Contains("token id 300 at position 2", line);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("[1, 2,", "not valid JSON")]
    [InlineData("{\"ids\": [1, 2]}", "expected a JSON array")]
    [InlineData("[1, 2.5, 3]", "element 1 is 2.5, not an integer")]
    [InlineData("[1, \"7\"]", "element 1 is \"7\", not an integer")]
    [InlineData("[-1, 2]", "token id -1 at position 0")]
    [InlineData("[5]", "at least 2 token ids")]
    public void BadIdsFileIsOneLine(string json, string expected)
    {
        var dir = CliRunner.TempDir();
        try
        {
            var f = WriteIds(dir, json);
            var line = CliRunner.AssertOneLineError(CliRunner.Run("score", "--model", ModelFixtures.Dir("qwen3-gqa"), "--ids", f));
            Assert.Contains(f, line);
            Assert.Contains(expected, line);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void MissingModelFolderIsOneLine()
    {
        var line = CliRunner.AssertOneLineError(CliRunner.Run("score", "--model", "/nonexistent/model", "--ids", "/tmp/x.json"));
        Assert.Contains("/nonexistent/model", line);
    }

    [Fact]
    public void TruncatedSafetensorsIsOneLine()
    {
        var dir = CliRunner.TempDir();
        try
        {
            var src = ModelFixtures.Dir("qwen3-gqa");
            File.Copy(Path.Combine(src, "config.json"), Path.Combine(dir, "config.json"));
            var bytes = File.ReadAllBytes(Path.Combine(src, "model.safetensors"));
            File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), bytes[..(bytes.Length / 2)]);
            var ids = WriteIds(dir, "[1, 2, 3]");
            var line = CliRunner.AssertOneLineError(CliRunner.Run("score", "--model", dir, "--ids", ids));
            Assert.Contains("model.safetensors", line);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void NeedsExactlyOneInput()
    {
        var line = CliRunner.AssertOneLineError(CliRunner.Run("score", "--model", ModelFixtures.Dir("qwen3-gqa")));
        Assert.Contains("exactly one of --text", line);
    }

    [Fact]
    public void TextWithoutTokenizerSaysWhatToDo()
    {
        var dir = CliRunner.TempDir();
        try
        {
            var f = Path.Combine(dir, "a.txt");
            File.WriteAllText(f, "hello");
            var line = CliRunner.AssertOneLineError(CliRunner.Run("score", "--model", ModelFixtures.Dir("qwen3-gqa"), "--text", f));
            Assert.Contains("--ids", line);
            Assert.Contains("--tokenizer", line);
        }
        finally { Directory.Delete(dir, true); }
    }
}
