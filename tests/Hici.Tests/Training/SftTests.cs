using System.Text.Json.Nodes;
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
}
