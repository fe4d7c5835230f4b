using System.Text.Json;
using Hici.DualChunk;
using Hici.Tests.Cli;
using Hici.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.DualChunk;

/// <summary>`--attention chunk` through the shared model options: score against the DCA golden fixture,
/// generate (KV cache) against greedy recomputation, and the flags' errors.</summary>
[Collection("Console")]
public class DualChunkCliTests
{
    private const string Model = "qwen3-gqa";

    private static string IdsFile(Tensor ids, int count)
    {
        var path = Path.Combine(CliRunner.TempDir(), "ids.json");
        File.WriteAllText(path, JsonSerializer.Serialize(ids.narrow(0, 0, count).data<long>().ToArray()));
        return path;
    }

    /// <summary>Qwen3, and Llama with the sticky mscale (90 tokens &gt; max_position_embeddings 64) and bf16 merge
    /// weights: score runs the whole sequence in one forward, as the reference's perplexity harness, even with
    /// a --chunk smaller than the sequence.</summary>
    [Theory]
    [InlineData("qwen3-gqa", "chunk size 18, local window 1, chunk length 17")]
    [InlineData("llama-mha-linear", "chunk size 18, local window 3, chunk length 15, position divisor 2, mscale sticky, merge weights bf16")]
    public void ScoreMatchesGoldenLogprobs(string model, string described)
    {
        using var scope = torch.NewDisposeScope();
        var (ids, expected, _, _) = DualChunkFixtures.Expected(model);
        int t = (int)ids.shape[0];
        string outFile = Path.Combine(CliRunner.TempDir(), "score.json");
        var r = CliRunner.Run("score", "--model", ModelFixtures.Dir(model), "--ids", IdsFile(ids, t), "--out", outFile,
            "--attention", "chunk", "--pretraining-length", "24", "--chunk", "32", "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains(described, r.Out + r.Err);
        var got = JsonDocument.Parse(File.ReadAllText(outFile)).RootElement.GetProperty("logprobs").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(t - 1, got.Length);
        var want = expected.narrow(0, 0, t - 1).gather(1, ids.narrow(0, 1, t - 1).unsqueeze(1)).squeeze(1).data<float>().ToArray();
        double worst = got.Zip(want, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(worst <= 1e-4, $"score --attention chunk: max|Δ logprob| {worst:E3}");
    }

    [Fact]
    public void GenerateEqualsGreedyRecomputation()
    {
        using var scope = torch.NewDisposeScope();
        var (ids, _, _, prompt) = DualChunkFixtures.Expected(Model);
        string outFile = Path.Combine(CliRunner.TempDir(), "gen.json");
        var r = CliRunner.Run("generate", "--model", ModelFixtures.Dir(Model), "--ids", IdsFile(ids, prompt), "--out", outFile,
            "--max-new-tokens", "6", "--attention", "chunk", "--pretraining-length", "24", "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        var generated = JsonDocument.Parse(File.ReadAllText(outFile)).RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt64()).ToList();
        Assert.NotEmpty(generated);
        using var lm = ModelFixtures.Load(Model, ScalarType.Float32, DualChunkFixtures.ModelConfig(Model));
        var seq = ids.narrow(0, 0, prompt).data<long>().ToList();
        foreach (long next in generated)
        {
            using var step = torch.NewDisposeScope();
            long expected = lm.Forward(torch.tensor(seq.ToArray()))[0, -1].argmax().item<long>();   // whole sequence, no cache
            Assert.Equal(expected, next);
            seq.Add(next);
        }
    }

    /// <summary>eval ppl: one window of the golden sequence; with --attention chunk and no --context-size the
    /// model keeps its RoPE (the DCA harness makes no RoPE edit), so the window's NLL is the fixture's.</summary>
    [Fact]
    public void EvalPplMatchesGoldenNll()
    {
        using var scope = torch.NewDisposeScope();
        const string model = "llama-mha-linear";
        var (ids, expected, _, _) = DualChunkFixtures.Expected(model);
        int t = (int)ids.shape[0];
        var dir = CliRunner.TempDir();
        string bin = Path.Combine(dir, "tokens.bin"), outFile = Path.Combine(dir, "ppl.json");
        var tokens = ids.data<long>().Select(i => (ushort)i).Append((ushort)0).ToArray();   // one more token: one window
        File.WriteAllBytes(bin, tokens.SelectMany(BitConverter.GetBytes).ToArray());
        var r = CliRunner.Run("eval", "ppl", "--model", ModelFixtures.Dir(model), "--data", bin, "--seq-len", t.ToString(), "--out", outFile,
            "--attention", "chunk", "--pretraining-length", "24", "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        double want = -expected.narrow(0, 0, t - 1).gather(1, ids.narrow(0, 1, t - 1).unsqueeze(1)).mean().item<float>();
        var doc = JsonDocument.Parse(File.ReadAllText(outFile)).RootElement;
        double got = Math.Log(doc.GetProperty("ppl").GetDouble());
        Assert.True(Math.Abs(got - want) <= 1e-4, $"eval ppl --attention chunk: mean NLL {got:F6}, golden {want:F6}");
    }

    [Theory]
    [InlineData("--local-window", "4", null, "--local-window is an option of --attention chunk")]
    [InlineData("--local-window", "30", "chunk", "--local-window 30: must be smaller than the chunk size")]
    [InlineData("--chunk-mscale", "always", "chunk", "--chunk-mscale: 'always' is not supported")]
    public void BadFlagsAreOneLineErrors(string flag, string value, string? attention, string expected)
    {
        using var scope = torch.NewDisposeScope();
        var (ids, _, _, _) = DualChunkFixtures.Expected(Model);
        var args = new List<string> { "score", "--model", ModelFixtures.Dir(Model), "--ids", IdsFile(ids, 8), flag, value };
        if (attention is not null) args.AddRange(new[] { "--attention", attention, "--pretraining-length", "24" });
        Assert.Contains(expected, CliRunner.AssertOneLineError(CliRunner.Run(args.ToArray())));
    }
}
