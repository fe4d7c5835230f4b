using System.Text.Json;
using Hici.Generation;
using Hici.I3;
using Hici.Loading;
using Hici.Models;
using Hici.Tests.Cli;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.I3;

/// <summary>An i3 folder through the project's loader, Scorer, GenerationPipeline and the CLI.</summary>
public class I3IntegrationTests
{
    /// <summary>The project's Scorer (chunked through IModelState) reproduces the reference log-probs of the fixture.</summary>
    [Fact]
    public void ScorerThroughModelLoaderMatchesReference()
    {
        using var scope = torch.NewDisposeScope();
        using var loaded = ModelLoader.Load(new ModelLoadRequest(I3Fixtures.Dir("reset-postrwkv")));
        Assert.IsType<I3Model>(loaded.Model);
        var (ids, expected) = I3Fixtures.Expected("reset-postrwkv");
        var score = Scorer.Score(loaded.Model, ids, chunk: 7);
        var want = expected.narrow(0, 0, ids.Length - 1).gather(1, torch.tensor(ids[1..]).unsqueeze(1)).squeeze(1);
        double diff = I3Fixtures.MaxDiff(torch.tensor(score.LogProbs), want);
        Assert.True(diff <= 1e-4, $"{diff:E3}");
    }

    /// <summary>Greedy GenerationPipeline over 2½ chunks: every token is the argmax of a full forward over the tokens before it.</summary>
    [Fact]
    public void GenerationPipelineIsGreedyOverTheFullForward()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var m = I3Fixtures.Load("carry-final");
        var prompt = new long[] { 5, 17, 200 };
        var r = new GenerationPipeline(m).Generate(prompt, new GenerationOptions { MaxNewTokens = 40 });
        var all = prompt.Concat(r.Tokens).ToArray();
        using var st = m.NewStream();
        var full = m.Forward(torch.tensor(all), st)[0];
        for (int i = 0; i < r.Tokens.Length; i++)
            Assert.Equal(full[prompt.Length - 1 + i].argmax().ToInt64(), r.Tokens[i]);
    }

    [Fact]
    public void RefusesBf16AndAdapters()
    {
        Assert.Throws<HiciException>(() => ModelLoader.Plan(new ModelLoadRequest(I3Fixtures.Dir("reset-postrwkv")) { DType = ScalarType.BFloat16 }));
        Assert.Throws<HiciException>(() => ModelLoader.Load(new ModelLoadRequest(I3Fixtures.Dir("reset-postrwkv")) { AdapterDir = "/nonexistent" }));
    }

    [Fact]
    public void InfoPrintsTheCardParameterCount()
    {
        var r = CliRunner.Run("i3", "info", "--preset", "full");
        Assert.Equal(0, r.Code);
        Assert.Contains("parameters: 343,753,020", r.Out);
        Assert.Contains("8 requested → 5", r.Out);
        var j = CliRunner.Run("i3", "info", "--preset", "tiny", "--json");
        Assert.Equal(329_088, JsonDocument.Parse(j.Out).RootElement.GetProperty("parameters").GetInt64());
        CliRunner.AssertOneLineError(CliRunner.Run("i3", "info", "--preset", "huge"));
        Assert.Contains("hici i3 info", CliRunner.AssertOneLineError(CliRunner.Run("info", "--model", I3Fixtures.Dir("reset-postrwkv"))));
    }

    /// <summary>tokenizer train → train 2 steps → resume to 3 → score, generate and eval-history on the output folder.</summary>
    [Fact]
    public void TrainResumeScoreGenerateFromTheCommandLine()
    {
        var dir = CliRunner.TempDir();
        try
        {
            var text = Path.Combine(dir, "corpus");
            Directory.CreateDirectory(text);
            var rng = new Random(4);
            string[] words = ["the", "jury", "said", "city", "of", "Atlanta", "election", "was", "held", "on", "Friday", "and", "a", "vote"];
            for (int f = 0; f < 3; f++)
                File.WriteAllText(Path.Combine(text, $"doc{f}.txt"), string.Join(' ', Enumerable.Range(0, 900).Select(_ => words[rng.Next(words.Length)])) + ".\n");
            var tok = Path.Combine(dir, "tok");
            Assert.Equal(0, CliRunner.Run("i3", "tokenizer", "train", "--vocab", "300", "--input", text, "--output", tok).Code);
            var outDir = Path.Combine(dir, "run");
            string[] common = ["i3", "train", "--preset", "tiny", "--data", text, "--output", outDir, "--tokenizer", tok, "--batch", "2", "--grad-accum", "2",
                "--warmup", "1", "--compression-start", "1", "--compression-ramp", "1", "--threads", "1", "--checkpoint-every", "1"];
            var r1 = CliRunner.Run([.. common, "--max-steps", "2"]);
            Assert.True(r1.Code == 0, r1.Err);
            CliRunner.AssertOneLineError(CliRunner.Run([.. common, "--max-steps", "3"]));   // exists: needs --resume
            var r2 = CliRunner.Run([.. common, "--max-steps", "3", "--resume"]);
            Assert.True(r2.Code == 0, r2.Err);
            var steps = File.ReadAllLines(Path.Combine(outDir, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64()).ToArray();
            Assert.Equal(new long[] { 1, 2, 3 }, steps);
            Assert.True(File.Exists(Path.Combine(outDir, "loss.png")));
            Assert.True(I3Config.IsI3Folder(outDir));
            var s = CliRunner.Run("score", "--model", outDir, "--text", Path.Combine(text, "doc0.txt"), "--threads", "1");
            Assert.True(s.Code == 0, s.Err);
            Assert.Contains("perplexity", s.Out);
            var g = CliRunner.Run("generate", "--model", outDir, "--prompt", "the jury", "--max-new-tokens", "5", "--threads", "1");
            Assert.True(g.Code == 0, g.Err);
            var e = CliRunner.Run("i3", "eval-history", "--model", outDir, "--data", Path.Combine(outDir, "data", "train.bin"), "--max-tokens", "400", "--threads", "1");
            Assert.True(e.Code == 0, e.Err);
            Assert.Contains("history", e.Out);
        }
        finally { Directory.Delete(dir, true); }
    }
}
