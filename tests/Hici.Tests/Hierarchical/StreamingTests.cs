using Hici.Hierarchical;
using Hici.IO;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Hierarchical;

/// <summary>
/// Streaming segment-wise HiCI (causal_shift / causal_shift_g) vs the reference's log-probs
/// (tools/make_hici_model_fixtures.py) and vs our one-shot forward with the same segment length.
/// </summary>
public class StreamingTests
{
    private static string Folder(string model) => Path.GetDirectoryName(Fixture.PathOf($"model-{model}/config.json"))!;

    private static CausalLM Load(string model, HiciConfig hici)
    {
        var cfg = HfConfigReader.Read(Path.Combine(Folder(model), "config.json")) with { Attention = HiciAttentionOptions.Setting(hici) };
        using var src = SafeTensorsWeightSource.Open(Path.Combine(Folder(model), "model.safetensors"));
        return CausalLM.Load(cfg, src, ScalarType.Float32);
    }

    public static readonly TheoryData<string, string, string> Cases = Build();

    /// <summary>The fixture model with the inference forward, the given shift mode and segment length, and random ids.</summary>
    private static (CausalLM Lm, long[] Ids) Streamable(string model, string mode, int segment, int length)
    {
        var hici = HiciConfig.Load(Folder(model)) with
        {
            CausalMode = HiciConfig.ParseCausalMode(mode), Forward = HiciForwardKind.Inference, SegmentSize = segment,
        };
        var lm = Load(model, hici);
        var gen = new Random(length);
        return (lm, Enumerable.Range(0, length).Select(_ => (long)gen.Next(lm.Config.VocabSize)).ToArray());
    }

    private static TheoryData<string, string, string> Build()
    {
        var d = new TheoryData<string, string, string>();
        foreach (var model in new[] { "qwen3", "llama" })
            foreach (var fwd in new[] { "train", "inference" })
                foreach (var mode in new[] { "causal_shift", "causal_shift_g" })
                    d.Add(model, fwd, mode);
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void StreamMatchesReferenceLogProbs(string model, string forward, string mode)
    {
        using var scope = NewDisposeScope();
        var hici = HiciConfig.Load(Folder(model)) with { CausalMode = HiciConfig.ParseCausalMode(mode), Forward = HiciConfig.ParseForward(forward) };
        using var lm = Load(model, hici);
        using var exp = Fixture.Open($"model-{model}/expected_{forward}.safetensors");
        var ids = exp["input_ids"].view(-1).data<long>().ToArray();
        var want = exp["lp." + mode];                                                    // [T, V] log-softmax
        var picked = want.narrow(0, 0, ids.Length - 1).gather(1, tensor(ids.Skip(1).ToArray()).unsqueeze(1)).squeeze(1);
        var r = HiciStreamScorer.Score(lm, ids);
        Close.Check(picked, tensor(r.LogProbs), 1e-4, $"stream {model} {forward} {mode} vs reference");
    }

    [Theory]
    [InlineData("qwen3", "causal_shift", 8, 40)]
    [InlineData("qwen3", "causal_shift_g", 8, 37)]   // last segment shorter (the inference forward pads it)
    [InlineData("llama", "causal_shift", 5, 23)]
    [InlineData("llama", "causal_shift_g", 16, 16)]  // one segment: plain causal attention
    public void StreamEqualsOneShot(string model, string mode, int segment, int length)
    {
        using var scope = NewDisposeScope();
        var (lm, ids) = Streamable(model, mode, segment, length);
        using var _ = lm;
        var oneShot = Scorer.Score(lm, ids, wholeSequence: true);
        var stream = HiciStreamScorer.Score(lm, ids);
        Close.Check(tensor(oneShot.LogProbs), tensor(stream.LogProbs), 1e-5, $"{model} {mode} S={segment} T={length}: stream vs one-shot");
    }

    /// <summary>The streamed prefill (what hici profile's stream method times) = the one-shot forward's last logits.</summary>
    [Theory]
    [InlineData("qwen3", "causal_shift", 8, 40)]
    [InlineData("llama", "causal_shift_g", 5, 26)]   // n ≡ 1 mod S: the last token is a segment of its own
    public void StreamedPrefillEqualsOneShotLastLogits(string model, string mode, int segment, int length)
    {
        using var scope = NewDisposeScope();
        var (lm, ids) = Streamable(model, mode, segment, length);
        using var _ = lm;
        Tensor oneShot;
        using (no_grad()) oneShot = lm.Forward(tensor(ids).unsqueeze(0), null, lastOnly: true).reshape(1, -1).to(ScalarType.Float32);
        using var streamed = HiciStreamScorer.LastLogits(lm, ids);
        Assert.Equal(oneShot.shape, streamed.shape);
        Close.Check(oneShot, streamed, 1e-5, $"{model} {mode} S={segment} T={length}: streamed prefill vs one-shot");
    }

    /// <summary>Memory flat on long streams: no tensor outlives a Score call, whatever the stream length.</summary>
    [Fact]
    public void StreamingLeavesNoTensorsBehind()
    {
        var hici = HiciConfig.Load(Folder("qwen3")) with { CausalMode = HiciCausalMode.CausalShift, SegmentSize = 4 };
        using var lm = Load("qwen3", hici);
        var stats = DisposeScopeManager.Statistics.TensorStatistics;
        var ids = Enumerable.Range(0, 64).Select(i => (long)(i * 7 % lm.Config.VocabSize)).ToArray();
        HiciStreamScorer.Score(lm, ids.Take(16).ToArray());                            // warm-up (lazy tables)
        long before = stats.ThreadTotalLiveCount;
        HiciStreamScorer.Score(lm, ids.Take(16).ToArray());
        long afterShort = stats.ThreadTotalLiveCount;
        HiciStreamScorer.Score(lm, ids);
        long afterLong = stats.ThreadTotalLiveCount;
        Assert.Equal(before, afterShort);
        Assert.Equal(before, afterLong);
    }

    [Fact]
    public void LeakingModesAreRefused()
    {
        using var lm = Load("qwen3", HiciConfig.Load(Folder("qwen3")) with { CausalMode = HiciCausalMode.CausalGi });
        var ex = Assert.Throws<HiciException>(() => HiciStreamScorer.Score(lm, new long[] { 1, 2, 3, 4 }));
        Assert.Contains("causal_shift", ex.Message);
    }
}
