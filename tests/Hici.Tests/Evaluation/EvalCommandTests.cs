using System.Text.Json;
using Hici.Evaluation;
using Hici.Tests.Cli;
using Hici.Tests.Text;

namespace Hici.Tests.Evaluation;

/// <summary>The generation tasks end to end (tiny random model with a real tokenizer) and their scoring rules with scripted models.</summary>
[Collection("Console")]
public class EvalCommandTests
{
    /// <summary>Answers every passkey prompt with a fixed continuation, or with the right key.</summary>
    private sealed class PasskeyOracle(bool right) : IEvalModel
    {
        private readonly Hici.Text.HfTokenizer _tok = TestData.Tokenizer("llama2");
        public int Calls;
        public int[] Encode(string text, bool addSpecialTokens) => _tok.Encode(text, addSpecialTokens);
        public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens) => _tok.Decode(ids, skipSpecialTokens);
        public IReadOnlyList<long> EosIds => new long[] { 2 };
        public long VocabSize => _tok.VocabSize;
        public long[] Greedy(IReadOnlyList<long> prompt, int maxNewTokens, IReadOnlyCollection<long> eos)
        {
            Calls++;
            var text = _tok.Decode(prompt.Select(i => (int)i).ToArray());
            var key = System.Text.RegularExpressions.Regex.Match(text, @"The pass key is (\d+)\.").Groups[1].Value;
            var ids = _tok.Encode(right ? key : "12", true).Skip(1).Select(i => (long)i).ToArray();
            return ids.Take(maxNewTokens).ToArray();
        }
    }

    [Fact]
    public void PasskeyScoresExactMatchOfTheAnswerTokens()
    {
        var o = new PasskeyOptions { MaxTokens = 600, Interval = 300, NumTests = 3 };
        var good = Passkey.Run(o, _ => new PasskeyRope(null), _ => new PasskeyOracle(true));
        Assert.All(good.Lengths, l => Assert.Equal(1.0, l.Accuracy));
        var tok = TestData.Tokenizer("llama2");
        Assert.All(good.Trials, t => Assert.Equal(tok.Encode(t.PassKey.ToString(), true).Skip(1).Select(i => (long)i), t.Answer));
        var bad = Passkey.Run(o, _ => new PasskeyRope(null), _ => new PasskeyOracle(false));
        Assert.All(bad.Lengths, l => Assert.Equal(0.0, l.Accuracy));
        // the result key is the floored mean prompt length, as the reference prints it
        Assert.Equal((int)(good.Trials.Where(t => t.Target == 300).Sum(t => (long)t.PromptTokens) / 3), good.Lengths[0].AvgTokens);
    }

    [Fact]
    public void PasskeyRopeFollowsTheTwoStageRule()
    {
        var o = new PasskeyOptions { ContextSize = 32768, MaxTokens = 57344, Interval = 1024 };
        Assert.Equal(8.0, Passkey.RopeFor(32768, o, 4096, false).LinearFactor);   // within the training context
        Assert.Equal(14.0, Passkey.RopeFor(33792, o, 4096, false).LinearFactor);  // beyond: ceil(57344/4096)
        Assert.Null(Passkey.RopeFor(1024, o, 4096, true).LinearFactor);           // a config with rope_scaling is kept
    }

    [Fact]
    public void AnInterruptedPasskeyRunResumes()
    {
        var o = new PasskeyOptions { MaxTokens = 600, Interval = 300, NumTests = 3 };
        var path = Path.Combine(CliRunner.TempDir(), "p.partial.jsonl");
        var first = new PasskeyOracle(true);
        var log = new ResumeLog<PasskeyTrialResult>(path, "run") { FlushEvery = TimeSpan.Zero };
        Assert.Throws<OperationCanceledException>(() => Passkey.Run(o, _ => new PasskeyRope(null), _ => first, log,
            (done, _) => { if (done == 4) throw new OperationCanceledException(); }));
        var second = new PasskeyOracle(true);
        var r = Passkey.Run(o, _ => new PasskeyRope(null), _ => second, new ResumeLog<PasskeyTrialResult>(path, "run"));
        Assert.Equal(2, second.Calls);                                   // only the trials not done before
        var whole = Passkey.Run(o, _ => new PasskeyRope(null), _ => new PasskeyOracle(true));
        Assert.Equal(whole.Lengths, r.Lengths);
    }

    [Fact]
    public void PasskeyCliWritesResultAndHeatmap()
    {
        using var m = new TinyModelWithTokenizer();
        var dir = CliRunner.TempDir();
        var outPath = Path.Combine(dir, "passkey.json");
        var r = CliRunner.Run("eval", "passkey", "--model", m.Dir, "--max-tokens", "600", "--interval", "300", "--num-tests", "2",
            "--context-size", "300", "--out", outPath, "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        using var doc = JsonDocument.Parse(File.ReadAllText(outPath));
        Assert.Equal(2, doc.RootElement.GetProperty("accuracies").EnumerateObject().Count());
        foreach (var t in doc.RootElement.GetProperty("trials").EnumerateArray())
            Assert.True(t.GetProperty("generated").GetArrayLength() <= t.GetProperty("answer").GetArrayLength());   // exactly len(answer) unless EOS
        Assert.True(doc.RootElement.GetProperty("lengths")[1].GetProperty("extrapolation").GetBoolean());
        var png = File.ReadAllBytes(Path.Combine(dir, "passkey.png"));
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, png[..4]);
        Assert.False(File.Exists(outPath + ".partial.jsonl"));
    }

    [Fact]
    public void TopicsCliWritesReferenceResponseFiles()
    {
        using var m = new TinyModelWithTokenizer();
        var outDir = Path.Combine(CliRunner.TempDir(), "pred");
        var cases = Path.Combine(TestPaths.Fixtures, "longchat", "topics");
        var r = CliRunner.Run("eval", "topics", "--model", m.Dir, "--cases", cases, "--num-topics", "5", "--out", outDir, "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        var lines = File.ReadAllLines(Path.Combine(outDir, "5_response.txt"));
        Assert.Equal(3, lines.Length);
        var tok = TestData.Tokenizer("llama2");
        var first = LongEval.ReadCases(Path.Combine(cases, "5_topics.jsonl"), "topics")[0];
        int n = tok.Encode(first.Prompt + LongEval.TopicsSuffix, true).Length;
        Assert.Matches(@"^Label: The psychology of creativity, Predict: \[.*\], prompt length: " + n + "$", lines[0]);
        Assert.Matches(@"^Accuracy: \d/3 = \d+\.\d\d%$", File.ReadAllText(Path.Combine(outDir, "score.txt")).Trim());
        // rerun: the existing response file is kept (the reference skips that N) and only re-scored
        var again = CliRunner.Run("eval", "topics", "--model", m.Dir, "--cases", cases, "--num-topics", "5", "--out", outDir);
        Assert.Equal(0, again.Code);
        Assert.Contains("skipping", again.Err);
    }

    [Fact]
    public void LongBenchPredictAndScoreRoundTrip()
    {
        using var m = new TinyModelWithTokenizer();
        var dir = CliRunner.TempDir();
        var data = Path.Combine(dir, "data");
        Directory.CreateDirectory(data);
        File.WriteAllLines(Path.Combine(data, "trec.jsonl"), new[]
        {
            "{\"input\": \"What is a cat?\", \"context\": \"Question: Who is he?\\nType: Human\", \"answers\": [\"Description\"], \"all_classes\": [\"Description\", \"Human\"], \"length\": 10}",
            "{\"input\": \"Who wrote it?\", \"context\": \"Question: What is it?\\nType: Description\", \"answers\": [\"Human\"], \"all_classes\": [\"Description\", \"Human\"], \"length\": 9000}",
        });
        var pred = Path.Combine(dir, "pred");
        var r = CliRunner.Run("eval", "longbench", "predict", "--model", m.Dir, "--data", data, "--datasets", "trec", "--out", pred, "--max-length", "12", "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        var preds = LongBench.ReadPredictions(Path.Combine(pred, "trec.jsonl"));
        Assert.Equal(2, preds.Count);
        var s = CliRunner.Run("eval", "longbench", "score", "--predictions", pred);
        Assert.True(s.Code == 0, s.Err);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(pred, "result.json")));
        Assert.Equal(LongBench.Score("trec", preds), doc.RootElement.GetProperty("trec").GetDouble());
        var bad = Path.Combine(data, "qasper.jsonl");
        File.WriteAllText(bad, "{\"input\": \"q\", \"context\": \"c\", \"answers\": [\"a\"]}\nnot json\n");
        var e = CliRunner.AssertOneLineError(CliRunner.Run("eval", "longbench", "predict", "--model", m.Dir, "--data", data, "--datasets", "qasper", "--out", pred));
        Assert.Contains($"{bad}:2:", e);
    }

    [Fact]
    public void PromptsAreCutInTheMiddleByText()
    {
        var m = new PasskeyOracle(true);
        var d = LongBenchDatasets.Get("lcc");                                  // no chat wrapper
        var sample = new LongBenchSample("", string.Concat(Enumerable.Repeat("word ", 50)), new[] { "x" }, null, 0);
        var ids = LongBench.BuildPrompt(m, d, sample, new LongBenchPredictOptions(MaxLength: 20));
        var tok = TestData.Tokenizer("llama2");
        var full = tok.Encode(LongBenchDatasets.Fill(d.Template, sample.Context, ""), true);
        string expected = tok.Decode(full[..10], true) + tok.Decode(full[^10..], true);
        Assert.Equal(tok.Encode(expected, true).Select(i => (long)i), ids);
        var chat = LongBench.BuildPrompt(m, LongBenchDatasets.Get("qasper"), sample, new LongBenchPredictOptions(MaxLength: 20));
        Assert.StartsWith("[INST]", tok.Decode(chat.Select(i => (int)i).ToArray(), true));
    }
}
