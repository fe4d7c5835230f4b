using Hici.Evaluation;

namespace Hici.Tests.Evaluation;

/// <summary>LongBench's metrics (LongBench/metrics.py) on hand-computed cases and tricky strings. Values with
/// several decimals were computed by hand from the reference definitions (derivations in the comments) or,
/// where marked, printed by Python/NumPy themselves.</summary>
public class LongBenchMetricTests
{
    [Theory]
    [InlineData("The Eiffel Tower!", "eiffel tower", 1.0)]                 // article + punctuation + case
    [InlineData("an apple a day", "apple day keeps", 0.8)]                 // p = 1, r = 2/3
    [InlineData("theater, another", "theater another", 1.0)]               // no article inside words
    [InlineData("The_a", "thea", 1.0)]                                     // "_" is punctuation: removed before articles
    [InlineData("a", "the", 0.0)]                                          // both normalise to nothing
    [InlineData("Paris Paris", "Paris", 2.0 / 3)]                          // multiset: p = 1/2, r = 1
    public void QaF1(string pred, string truth, double expected) =>
        Assert.Equal(expected, LongBenchMetrics.QaF1(pred, truth), 12);

    [Fact]
    public void NormalizeAnswerFollowsTheReference()
    {
        Assert.Equal("eiffel tower", LongBenchMetrics.NormalizeAnswer("  The  Eiffel\tTower. "));
        Assert.Equal("café", LongBenchMetrics.NormalizeAnswer("A Café!"));
        Assert.Equal("ab", LongBenchMetrics.NormalizeAnswer("a-b"));
        Assert.Equal("北京", LongBenchMetrics.NormalizeAnswer("北京"));        // CJK untouched (no ASCII punctuation)
        Assert.Equal("北京大学", LongBenchMetrics.NormalizeZhAnswer("北京，大学。"));
    }

    [Fact]
    public void QaF1ZhSegmentsWithJieba()
    {
        // jieba: 我/来到/北京/清华大学 (jieba's README example) vs 北京/清华大学: 2 shared, p = 2/4, r = 1
        Assert.Equal(new[] { "我", "来到", "北京", "清华大学" }, ChineseSegmenter.Cut("我来到北京清华大学"));
        Assert.Equal(2.0 / 3, LongBenchMetrics.QaF1Zh("我来到北京清华大学", "北京清华大学"), 12);
        Assert.Equal(1.0, LongBenchMetrics.QaF1Zh("北京清华大学。", "北京，清华大学"), 12);   // punctuation tokens dropped
    }

    [Fact]
    public void RougeLCountsDistinctWordsLikeTheRougePackage()
    {
        // ref {the,cat,is,on,mat} m = 5, hyp {the,cat,sat,on,mat} n = 5, LCS "the cat on the mat" → words {the,cat,on,mat} = 4
        double p = 0.8, r = 0.8;
        Assert.Equal(2.0 * (p * r / (p + r + 1e-8)), LongBenchMetrics.Rouge("the cat sat on the mat", "the cat is on the mat"), 15);
        // sentences split on ".": the union LCS over sentence pairs finds all four words
        Assert.Equal(2.0 * (1.0 / (2 + 1e-8)), LongBenchMetrics.Rouge("a b. c d", "c d. a b"), 15);
        Assert.Equal(0.0, LongBenchMetrics.Rouge("", "a b"));                 // "Hypothesis is empty" → 0
        Assert.Equal(0.0, LongBenchMetrics.Rouge("...", "a b"));
    }

    [Fact]
    public void RougeLIsZeroWhereThePythonRecursionLimitWouldBeHit()
    {
        static string Words(string p, int n) => string.Join(' ', Enumerable.Range(0, n).Select(i => p + i));
        // one shared first word, then 400 + 400 unmatched words: the walk back goes left 400, up 400, then
        // diagonal: 802 nested _recon calls + 9 frames below them fit in 1000
        double r400 = LongBenchMetrics.Rouge("common " + Words("x", 400), "common " + Words("y", 400));
        Assert.Equal(2.0 * ((1 / 401.0) * (1 / 401.0) / (2 / 401.0 + 1e-8)), r400, 15);
        // 500 + 500: 1002 calls exceed Python's limit of 1000 → RecursionError → LongBench scores 0
        Assert.Equal(0.0, LongBenchMetrics.Rouge("common " + Words("x", 500), "common " + Words("y", 500)));
    }

    [Theory]
    [InlineData("AB", "AB", 0.5, "A,B,AB")]    // [A,B,AB]: A removed, then the loop skips B → [B, AB] → 1/2 (the reference's quirk)
    [InlineData("AB", "AB", 1.0, "A,AB,B")]    // [A,AB,B]: A removed, AB kept, B removed → 1
    [InlineData("Sports news", "Sports", 1.0, "Sports,Finance")]
    [InlineData("Sports and Finance", "Sports", 0.5, "Sports,Finance")]
    [InlineData("nothing", "Sports", 0.0, "Sports,Finance")]
    public void Classification(string pred, string truth, double expected, string classes) =>
        Assert.Equal(expected, LongBenchMetrics.Classification(pred, truth, classes.Split(',')), 12);

    [Fact]
    public void RetrievalAndCount()
    {
        Assert.Equal(2.0 / 3, LongBenchMetrics.Retrieval("Paragraph 3, or paragraph 13 and 3", "Paragraph 3", @"Paragraph (\d+)"), 12);
        Assert.Equal(1.0, LongBenchMetrics.Retrieval("答案是段落7", "段落7", @"段落(\d+)"), 12);
        Assert.Equal(0.0, LongBenchMetrics.Retrieval("I don't know", "Paragraph 3", @"Paragraph (\d+)"));
        Assert.Equal(1.0, LongBenchMetrics.Count("There are 12 unique, 12", "12"));
        Assert.Equal(1.0 / 3, LongBenchMetrics.Count("1, 2, 12", "12"), 12);
    }

    [Fact]
    public void CodeSimilarityIsFuzzRatioOverDifflib()
    {
        // first line without # ` //: "    return x + 1"; difflib blocks "    return x" + "+" + "1" = 14 of 30 → 93
        Assert.Equal(0.93, LongBenchMetrics.CodeSim("\n# comment\n    return x + 1\n", "    return x+1"), 12);
        Assert.Equal(0.9333333333333333, PyDifflib.Ratio("    return x + 1", "    return x+1"), 15);     // python difflib
        // autojunk: b has 252 chars, each used > 3 times → no match can start → python prints 0.0
        Assert.Equal(0.0, PyDifflib.Ratio(string.Concat(Enumerable.Repeat("x = foo(bar, baz) ", 15)), string.Concat(Enumerable.Repeat("y = foo(bar, qux) ", 14))));
        Assert.Equal(100, PyDifflib.FuzzRatio("", ""));                  // equality is checked before emptiness
        Assert.Equal(0, PyDifflib.FuzzRatio("", "x"));
    }

    [Fact]
    public void PythonRoundingAndFloatText()
    {
        Assert.Equal(2.67, PyJson.Round(2.675, 2));      // python: round(2.675, 2) = 2.67 (2.675 is below the tie in binary)
        Assert.Equal(0.12, PyJson.Round(0.125, 2));      // exact tie → even
        Assert.Equal(0.38, PyJson.Round(0.375, 2));
        Assert.Equal(33.34, PyJson.Round(33.335, 2));
        Assert.Equal("100.0", PyJson.FloatRepr(100.0));
        Assert.Equal("33.33", PyJson.FloatRepr(33.33));
        Assert.Equal("1e-05", PyJson.FloatRepr(1e-5));
        Assert.Equal("0.0001", PyJson.FloatRepr(1e-4));
        Assert.Equal("1e+16", PyJson.FloatRepr(1e16));
        Assert.Equal("123456789012345.6", PyJson.FloatRepr(123456789012345.6));
    }

    [Fact]
    public void NumpyMeanUsesPairwiseSummation()
    {
        Assert.Equal(0.1, LongBench.NumpyMean(Enumerable.Repeat(0.1, 10).ToList()));       // numpy: 0.1 (sequential: 0.09999999999999999)
        var ys = Enumerable.Range(0, 300).Select(i => i * 0.37 % 1).ToList();
        Assert.Equal(0.49499999999999933, LongBench.NumpyMean(ys));                          // numpy's value
        Assert.True(double.IsNaN(LongBench.NumpyMean(new List<double>())));
    }

    [Fact]
    public void ScoresAndResultJsonInTheReferenceLayout()
    {
        var preds = new List<LongBenchPrediction>
        {
            new("\nLocation\nmore", new[] { "Location" }, new[] { "Location", "Description" }, 100),
            new("Description of", new[] { "Location" }, new[] { "Location", "Description" }, 100),
            new("Location", new[] { "Location" }, new[] { "Location", "Description" }, 100),
        };
        Assert.Equal(66.67, LongBench.Score("trec", preds));                  // first line only: 1, 0, 1
        var json = LongBench.ResultJson(new LongBenchScores(new[] { ("trec", 66.67), ("lcc", 50.0) }, Array.Empty<(string, IReadOnlyList<(string, double)>)>()));
        Assert.Equal("{\n    \"trec\": 66.67,\n    \"lcc\": 50.0\n}", json);
        Assert.Equal("{\"pred\": \"北京\\n\", \"answers\": [\"北京\"], \"all_classes\": null, \"length\": 5}\n",
            LongBench.PredictionLine(new LongBenchPrediction("北京\n", new[] { "北京" }, null, 5)));
    }

    [Fact]
    public void TemplatesFillInOnePass()
    {
        Assert.Equal("ctx {input} / q", LongBenchDatasets.Fill("{context} / {input}", "ctx {input}", "q"));
        Assert.Contains("asconcisely", LongBenchDatasets.Get("narrativeqa").Template);
        Assert.Equal(21, LongBenchDatasets.All.Count);
    }
}
