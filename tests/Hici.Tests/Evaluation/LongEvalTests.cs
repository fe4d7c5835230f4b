using Hici.Evaluation;
using Hici.Tests.Text;

namespace Hici.Tests.Evaluation;

/// <summary>Topic and line retrieval on the reference's own LongChat cases (tests/fixtures/longchat: the first
/// three cases of LongChat/longeval/evaluation/{topics/5_topics,lines/200_lines}.jsonl).</summary>
public class LongEvalTests
{
    private static string Case(string task, string file) => Path.Combine(TestPaths.Fixtures, "longchat", task, file);

    /// <summary>A real tokenizer and a scripted "model" whose greedy output is fixed text (stopping at a stop id as generate() does).</summary>
    private sealed class Scripted(string answer) : IEvalModel
    {
        private readonly Hici.Text.HfTokenizer _tok = TestData.Tokenizer("llama2");
        public List<long[]> Prompts { get; } = new();
        public List<long> LastStops { get; private set; } = new();
        public int[] Encode(string text, bool addSpecialTokens) => _tok.Encode(text, addSpecialTokens);
        public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens) => _tok.Decode(ids, skipSpecialTokens);
        public IReadOnlyList<long> EosIds => new long[] { _tok.EosId!.Value };
        public long VocabSize => _tok.VocabSize;
        public long[] Greedy(IReadOnlyList<long> prompt, int maxNewTokens, IReadOnlyCollection<long> eos)
        {
            Prompts.Add(prompt.ToArray());
            LastStops = eos.ToList();
            var ids = _tok.Encode(answer, addSpecialTokens: false).Select(i => (long)i).Take(maxNewTokens).ToList();
            int stop = ids.FindIndex(eos.Contains);
            return (stop >= 0 ? ids.Take(stop + 1) : ids).ToArray();
        }
    }

    [Fact]
    public void ReadsTheReferenceCases()
    {
        var topics = LongEval.ReadCases(Case("topics", "5_topics.jsonl"), "topics");
        Assert.Equal(new[] { "The psychology of creativity", "The benefits of learning a new language", "The effects of climate change on ocean ecosystems" }, topics.Select(c => c.Label));
        var lines = LongEval.ReadCases(Case("lines", "200_lines.jsonl"), "lines");
        Assert.Equal(new int?[] { 2416, 41869, 14564 }, lines.Select(c => c.ExpectedNumber));
    }

    [Fact]
    public void TopicPromptStopIdsAndOutputFollowTheReference()
    {
        var c = LongEval.ReadCases(Case("topics", "5_topics.jsonl"), "topics")[0];
        var m = new Scripted("The psychology of creativity.\n USER: now the next one");
        var a = LongEval.AnswerTopic(m, c, LongEval.TopicStopIds(m));
        var tok = TestData.Tokenizer("llama2");
        Assert.Equal(tok.Encode(c.Prompt + "\n ASSISTANT: The first topic we discussed was", true).Select(i => (long)i), m.Prompts[0]);
        // the first id of "\n USER:", "\nUSER:", " USER:", "\\n": SentencePiece starts several with the bare "▁" piece,
        // so a standalone-space token also stops generation (the reference's behaviour, kept)
        Assert.Contains((long)tok.TokenToId("▁")!.Value, m.LastStops);
        Assert.Contains((long)tok.EosId!.Value, m.LastStops);
        Assert.Equal("The psychology of creativity.", a.Output);
        Assert.True(a.Correct);
        Assert.Equal($"Label: The psychology of creativity, Predict: ['{a.Output}'], prompt length: {m.Prompts[0].Length}", a.Line);
    }

    [Fact]
    public void AnOutputStartingWithABareSpacePieceStopsAtOnce()
    {
        // " The" encodes as "▁" + "▁The": the bare "▁" is a stop id, so the answer is empty — as in the reference
        var c = LongEval.ReadCases(Case("topics", "5_topics.jsonl"), "topics")[0];
        var m = new Scripted(" The psychology of creativity.");
        var a = LongEval.AnswerTopic(m, c, LongEval.TopicStopIds(m));
        Assert.Equal("", a.Output);
        Assert.False(a.Correct);
    }

    [Theory]
    [InlineData("Label: The psychology of creativity, Predict: [' the Psychology of Creativity.'], prompt length: 3249", true)]
    [InlineData("Label: The psychology of creativity, Predict: ['creativity'], prompt length: 3249", false)]
    [InlineData("Label: A, Predict: [\"it's a\"], prompt length: 5", true)]
    [InlineData("Label: A, Predict: ['x, Predict: a'], prompt length: 5", null)]   // three parts: skipped but counted
    public void TopicScoringRule(string line, bool? expected) => Assert.Equal(expected, LongEval.ScoreTopicLine(line));

    [Fact]
    public void TopicFileDenominatorCountsEveryLine()
    {
        var f = Path.GetTempFileName();
        File.WriteAllLines(f, new[]
        {
            "Label: A, Predict: ['a'], prompt length: 1",
            "Label: B, Predict: ['x, Predict: b'], prompt length: 1",
            "Label: C, Predict: ['d'], prompt length: 1",
        });
        var (c, t) = LongEval.ScoreTopicFile(f);
        Assert.Equal((1, 3), (c, t));
        Assert.Equal("Accuracy: 1/3 = 33.33%", LongEval.TopicScoreText(c, t));
    }

    [Fact]
    public void LinesParseTheLastNumber()
    {
        var c = LongEval.ReadCases(Case("lines", "200_lines.jsonl"), "lines")[0];
        var m = new Scripted("The <REGISTER_CONTENT> in line torpid-kid is 2416.");
        var a = LongEval.AnswerLine(m, c);
        Assert.True(a.Correct);
        Assert.StartsWith("Label: 2416, Predict: The <REGISTER_CONTENT> in line torpid-kid is 2416., Parsed: 2416, prompt length: ", a.Line);
        Assert.Equal(-1, LongEval.ParseLastNumber("no number"));
        Assert.Equal(7, LongEval.ParseLastNumber("line 12 has 7"));
    }

    [Fact]
    public void MalformedCaseNamesFileAndLine()
    {
        var f = Path.GetTempFileName();
        File.WriteAllText(f, File.ReadLines(Case("topics", "5_topics.jsonl")).First() + "\n{\"prompt\": \"x\"}\n");
        var e = Assert.Throws<HiciException>(() => LongEval.ReadCases(f, "topics"));
        Assert.StartsWith($"{f}:2: ", e.Message);
    }
}
