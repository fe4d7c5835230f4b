using Hici.Generation;
using Hici.Models;
using Hici.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Generation;

public class GenerationPipelineTests
{
    private static long[] Prompt(string name, int n)
    {
        var (ids, lp, lg) = ModelFixtures.Expected(name);
        using (ids) using (lp) using (lg) return ids.data<long>().Take(n).ToArray();
    }

    /// <summary>Greedy decoding through the cache picks, at every step, what a full recompute of the whole
    /// sequence picks, with the same log-probability.</summary>
    [Theory]
    [InlineData("llama-mha-linear")]
    [InlineData("llama3-gqa-tied")]
    [InlineData("qwen3-gqa")]
    public void CachedGreedyEqualsFullRecomputeEveryStep(string name)
    {
        using var lm = ModelFixtures.Load(name, ScalarType.Float32);
        var prompt = Prompt(name, 8);
        var steps = new List<GenerationStep>();
        var r = new GenerationPipeline(lm).Generate(prompt, new GenerationOptions { MaxNewTokens = 24 }, steps.Add);
        Assert.Equal(24, r.Tokens.Length);
        Assert.Equal(StopReason.MaxTokens, r.Reason);

        var seq = prompt.ToList();
        for (int i = 0; i < r.Tokens.Length; i++)
        {
            using var scope = torch.NewDisposeScope();
            var lp = nn.functional.log_softmax(lm.Forward(torch.tensor(seq.ToArray()))[0, -1], 0);
            long want = lp.argmax().item<long>();
            Assert.Equal(want, r.Tokens[i]);
            Assert.True(Math.Abs(lp[want].item<float>() - steps[i].LogProb) <= 1e-4, $"step {i}: log-prob differs");
            seq.Add(want);
        }
    }

    [Fact]
    public void StopsAtEosAndKeepsIt()
    {
        using var lm = ModelFixtures.Load("qwen3-gqa", ScalarType.Float32);
        var prompt = Prompt("qwen3-gqa", 8);
        var free = new GenerationPipeline(lm).Generate(prompt, new GenerationOptions { MaxNewTokens = 10 });
        long eos = free.Tokens[3];
        int first = Array.IndexOf(free.Tokens, eos);
        var r = new GenerationPipeline(lm).Generate(prompt, new GenerationOptions { MaxNewTokens = 10, EosTokenIds = new[] { eos } });
        Assert.Equal(StopReason.Eos, r.Reason);
        Assert.Equal(free.Tokens[..(first + 1)], r.Tokens);
    }

    [Fact]
    public void StopStringCutsTheTextAndStops()
    {
        using var lm = ModelFixtures.Load("llama3-gqa-tied", ScalarType.Float32);
        var prompt = Prompt("llama3-gqa-tied", 8);
        // A toy tokenizer: token t decodes to "<t>", so the text is predictable from the tokens.
        static string Decode(IReadOnlyList<long> ids) => string.Concat(ids.Select(t => $"<{t}>"));
        var free = new GenerationPipeline(lm).Generate(prompt, new GenerationOptions { MaxNewTokens = 8, Decode = Decode });
        Assert.Equal(Decode(free.Tokens), free.Text);

        string stop = $"<{free.Tokens[2]}><{free.Tokens[3]}";     // spans two tokens, ends mid-token
        var streamed = new System.Text.StringBuilder();
        var r = new GenerationPipeline(lm).Generate(prompt,
            new GenerationOptions { MaxNewTokens = 8, Decode = Decode, StopStrings = new[] { stop } },
            s => streamed.Append(s.TextDelta));
        Assert.Equal(StopReason.StopString, r.Reason);
        int needed = Enumerable.Range(1, free.Tokens.Length).First(k => Decode(free.Tokens[..k]).Contains(stop));
        Assert.Equal(needed, r.Tokens.Length);   // stops on the token that completes the stop string
        string expected = Decode(free.Tokens)[..Decode(free.Tokens).IndexOf(stop, StringComparison.Ordinal)];
        Assert.Equal(expected, r.Text);
        Assert.Equal(expected, streamed.ToString());
    }

    [Fact]
    public void SamplingIsReproducibleWithASeed()
    {
        using var lm = ModelFixtures.Load("qwen3-gqa", ScalarType.BFloat16);
        var prompt = Prompt("qwen3-gqa", 5);
        var o = new GenerationOptions { MaxNewTokens = 16, Sampling = new SamplingOptions { Temperature = 1.0, TopK = 50, TopP = 0.9, Seed = 7 } };
        var a = new GenerationPipeline(lm).Generate(prompt, o);
        var b = new GenerationPipeline(lm).Generate(prompt, o);
        Assert.Equal(a.Tokens, b.Tokens);
        var c = new GenerationPipeline(lm).Generate(prompt, o with { Sampling = o.Sampling with { Seed = 8 } });
        Assert.NotEqual(a.Tokens, c.Tokens);
    }

    [Fact]
    public void LongGenerationDoesNotLeakTensors()
    {
        using var lm = ModelFixtures.Load("llama3-gqa-tied", ScalarType.BFloat16);
        var pipe = new GenerationPipeline(lm);
        var prompt = Prompt("llama3-gqa-tied", 4);
        pipe.Generate(prompt, new GenerationOptions { MaxNewTokens = 4 });   // warm-up
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        pipe.Generate(prompt, new GenerationOptions { MaxNewTokens = 200, Sampling = new SamplingOptions { Temperature = 0.8, Seed = 1 } });
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void RejectsOutOfVocabularyPrompt()
    {
        using var lm = ModelFixtures.Load("qwen3-gqa", ScalarType.Float32);
        var e = Assert.Throws<HiciException>(() => new GenerationPipeline(lm).Generate(new long[] { 1, 999 }, new GenerationOptions()));
        Assert.Contains("999", e.Message);
    }
}
