using System.Text.Json.Nodes;
using Hici.Hierarchical;
using TorchSharp;
using Hici.Tests.Cli;
using Hici.Tests.Text;
using Hici.Training;

namespace Hici.Tests.Training;

[Collection("Console")]
public class SftTests
{
    private static readonly AlpacaExample Ex = new("Summarise: the cat sat on the mat.", null, "A cat sat.");

    [Fact]
    public void Llama2PromptTokensCarryMinus100()
    {
        var tok = TestData.Tokenizer("llama2");
        var e = SftData.Tokenize(Ex, SftFormat.Llama2, tok, 512)!;
        var source = tok.Encode("[INST]Summarise: the cat sat on the mat.[/INST]");
        var all = tok.Encode("[INST]Summarise: the cat sat on the mat.[/INST]A cat sat.</s>");
        Assert.Equal(all.Select(i => (long)i), e.Ids);
        Assert.Equal(tok.BosId, (int)e.Ids[0]);
        Assert.Equal(tok.EosId, (int)e.Ids[^1]);                        // "</s>" is the EOS id, supervised
        Assert.All(e.Labels.Take(source.Length), l => Assert.Equal(-100, l));
        Assert.Equal(e.Ids.Skip(source.Length), e.Labels.Skip(source.Length));
        // with an input: the <<SYS>> template
        var (src, _) = SftData.Render(Ex with { Input = "extra" }, SftFormat.Llama2, tok);
        Assert.StartsWith("[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant. Always answer as helpfully as possible, while being safe.  Your", src);
        Assert.EndsWith("<</SYS>> \n\n Summarise: the cat sat on the mat. \nextra [/INST]", src);
    }

    [Fact]
    public void Qwen3ChatMlMasksTheUserTurn()
    {
        var tok = TestData.Tokenizer("qwen3");
        var e = SftData.Tokenize(Ex, SftFormat.Qwen3, tok, 512)!;
        var prompt = tok.Encode("<|im_start|>user\nSummarise: the cat sat on the mat.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
        Assert.Equal(prompt.Select(i => (long)i), e.Ids.Take(prompt.Length));
        Assert.All(e.Labels.Take(prompt.Length), l => Assert.Equal(-100, l));
        var answer = e.Labels.Skip(prompt.Length).Select(l => (int)l).ToArray();
        Assert.Equal("A cat sat.<|im_end|>\n", tok.Decode(answer));
    }

    [Fact]
    public void TruncationKeepsTheLengthAndSkipsPromptOnlyExamples()
    {
        var tok = TestData.Tokenizer("llama2");
        int promptLen = tok.Encode("[INST]Summarise: the cat sat on the mat.[/INST]").Length;
        var cut = SftData.Tokenize(Ex, SftFormat.Llama2, tok, promptLen + 2)!;
        Assert.Equal(promptLen + 2, cut.Ids.Length);
        Assert.Equal(2, cut.Labels.Count(l => l != -100));
        Assert.Null(SftData.Tokenize(Ex, SftFormat.Llama2, tok, promptLen));
    }

    [Fact]
    public void SftResumesExactlyAndRefusesAPretrainCheckpoint()
    {
        using var m = new TinyModelWithTokenizer();
        using var dir = new TempDir();
        var data = Path.Combine(dir.Path, "alpaca.json");
        var arr = new JsonArray();
        for (int i = 0; i < 6; i++) arr.Add(new JsonObject { ["instruction"] = $"Question {i}: what is {i} plus {i}?", ["output"] = $"It is {2 * i}." });
        File.WriteAllText(data, arr.ToJsonString());
        string[] Args(string output, params string[] extra) => new[] { "sft", "--model", m.Dir, "--data", data, "--output", output, "--model-max-length", "64",
            "--max-steps", "4", "--save-steps", "2", "--grad-accum", "2", "--lr", "1e-3", "--lora-dropout", "0.1", "--warmup-steps", "1", "--threads", "1", "--seed", "3" }.Concat(extra).ToArray();
        var a = CliRunner.Run(Args(Path.Combine(dir.Path, "a")));
        Assert.True(a.Code == 0, a.Err);
        var b = CliRunner.Run(Args(Path.Combine(dir.Path, "b"), "--resume", Path.Combine(dir.Path, "a", "checkpoint-2")));
        Assert.True(b.Code == 0, b.Err);
        var la = MetricsLog.ReadLosses(Path.Combine(dir.Path, "a", MetricsLog.FileName));
        var lb = MetricsLog.ReadLosses(Path.Combine(dir.Path, "b", MetricsLog.FileName));
        Assert.Equal(4, la.Count);
        Assert.Equal(la.Skip(2), lb);                       // steps 3 and 4 after the resume equal the straight run's
        // --init-from takes the weights only: a fresh schedule from step 0
        var c = CliRunner.Run(Args(Path.Combine(dir.Path, "c"), "--init-from", Path.Combine(dir.Path, "a", "checkpoint-4")));
        Assert.True(c.Code == 0, c.Err);
        Assert.Equal(4, MetricsLog.ReadLosses(Path.Combine(dir.Path, "c", MetricsLog.FileName)).Count);
        // a pre-training checkpoint cannot be "resumed" as SFT (the reference silently did exactly that)
        var bin = Path.Combine(dir.Path, "d.bin");
        using (var w = new TokenFileWriter(bin, "uint16")) { w.Add(Enumerable.Range(0, 600).Select(i => i * 37 % 32000).ToArray()); w.Commit(); }
        var p = CliRunner.Run("train", "--model", m.Dir, "--data", bin, "--output", Path.Combine(dir.Path, "p"), "--model-max-length", "64", "--max-steps", "1", "--threads", "1");
        Assert.True(p.Code == 0, p.Err);
        var e = CliRunner.AssertOneLineError(CliRunner.Run(Args(Path.Combine(dir.Path, "e"), "--resume", Path.Combine(dir.Path, "p", "checkpoint-1"))));
        Assert.Contains("--init-from", e);
    }

    /// <summary>
    /// The SFT segment rule of llama_attn_hici_sft.py → forward_flashattn_hierarchical (group_size_ratio = 1), values
    /// worked out by hand from its code: T % 4096 == 0 → T; else the divisor of T in [10, T // 2] (bounds [1, T] for
    /// tiny T) closest to T, or T when there is none.
    /// </summary>
    [Theory]
    [InlineData(4096, 4096)]     // multiple of 4096: one segment
    [InlineData(8192, 8192)]
    [InlineData(12000, 6000)]    // even: 2 segments
    [InlineData(3000, 1500)]
    [InlineData(12346, 6173)]    // 2 × 6173
    [InlineData(999, 333)]       // 3³ × 37: smallest prime 3 → 3 segments
    [InlineData(1001, 143)]      // 7 × 11 × 13 → 7 segments
    [InlineData(12347, 12347)]   // prime: one segment
    [InlineData(4097, 241)]      // 17 × 241
    [InlineData(22, 11)]
    [InlineData(21, 21)]         // divisors 1, 3, 7, 21: none in [10, 10]
    [InlineData(15, 15)]         // T < 20: the upper bound is T, the lower 10 → 15
    [InlineData(9, 9)]           // T < 10: bounds [1, 9] → 9
    [InlineData(1, 1)]
    public void SftSegmentRuleIsTheReferences(int length, int segment)
    {
        Assert.Equal(segment, HiciSegmenter.SftSegmentSize(length));
        var cfg = HiciConfig.Load(Path.Combine(TestData.Fixture("hici", "model-llama"), HiciConfig.FileName));
        Assert.Equal(segment, new HiciSegmenter(cfg, sftRule: true).TrainingSegmentSize(length, 0, training: true));
    }

    [Fact]
    public void SftTrainsLengthsThePretrainingRuleRefuses()
    {
        using var dir = new TempDir();
        var ids = torch.randint(0, 256, new long[] { 1, 30 }, generator: new torch.Generator(3));   // 30: SFT segments of 15 (divisors in [10, 15]: 10, 15)
        TrainOptions Opt(bool sft) => GradientParityTests.Options("llama", "all", "causal_shift", dir.Path) with { ModelMaxLength = 30, SftSegmentRule = sft };
        using (var tm = TrainingModel.Build(Opt(true)))
        {
            double loss = MicroBatchStep.Run(tm.Model, ids, ids, 2048, 1, checkpointing: false);
            Assert.True(double.IsFinite(loss));
            Assert.Equal(15, HiciImplementation.SegmenterOf(tm.Model)!.TrainingSegmentSize(30, 0, training: true));
        }
        using (var tm = TrainingModel.Build(Opt(false)))                    // segment_ratio 1/4 → 7, 30 % 7 ≠ 0
            Assert.Contains("not a multiple", Assert.Throws<HiciException>(() => MicroBatchStep.Run(tm.Model, ids, ids, 2048, 1, checkpointing: false)).Message);
        Assert.Contains("--mixed-segments", Assert.Throws<HiciException>(() => (Opt(true) with
        {
            Attention = HiciAttentionOptions.Setting(((HiciAttentionOptions)Opt(true).Attention.Options!).Config with { MixedSegmentRatios = HiciConfig.DefaultMixedRatios }),
        }).Validate()).Message);
    }
}
