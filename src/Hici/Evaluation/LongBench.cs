using System.Text;
using System.Text.Json;
using Hici.IO;

namespace Hici.Evaluation;

/// <summary>One LongBench sample as the official JSONL files hold it (fields pred.py and eval.py read).</summary>
public sealed record LongBenchSample(string Input, string Context, IReadOnlyList<string> Answers, IReadOnlyList<string>? AllClasses, long Length);

/// <summary>One prediction line (<c>pred/{model}/{dataset}.jsonl</c>).</summary>
public sealed record LongBenchPrediction(string Pred, IReadOnlyList<string> Answers, IReadOnlyList<string>? AllClasses, long Length);

/// <param name="MaxLength">prompt token budget (<c>config/model2maxlen.json</c>: 15500 for the HiCI models)</param>
/// <param name="ChatTemplate">"inst" = <c>[INST]{prompt}[/INST]</c> (pred.py's build_chat for Llama-2 and every
/// HiCI model), "none" = the raw prompt</param>
public sealed record LongBenchPredictOptions(int MaxLength = 15500, string ChatTemplate = "inst");

/// <summary>Per-dataset scores (and, for LongBench-E, per length bucket).</summary>
public sealed record LongBenchScores(IReadOnlyList<(string Dataset, double Score)> Scores, IReadOnlyList<(string Dataset, IReadOnlyList<(string Bucket, double Score)> Buckets)> ByLength)
{
    /// <summary>compare_results.py's category means (missing tasks count 0) and EN / ZH / All means of the present tasks.</summary>
    public IReadOnlyList<(string Name, double Score)> Categories()
    {
        var have = Scores.ToDictionary(s => s.Dataset, s => s.Score);
        var list = new List<(string, double)>();
        foreach (var cat in LongBenchDatasets.All.GroupBy(d => d.Category))
            list.Add((cat.Key, cat.Average(d => have.GetValueOrDefault(d.Name))));
        var present = LongBenchDatasets.All.Where(d => have.ContainsKey(d.Name)).ToList();
        if (present.Any(d => !d.Chinese)) list.Add(("EN", present.Where(d => !d.Chinese).Average(d => have[d.Name])));
        if (present.Any(d => d.Chinese)) list.Add(("ZH", present.Where(d => d.Chinese).Average(d => have[d.Name])));
        if (present.Count > 0) list.Add(("All", present.Average(d => have[d.Name])));
        return list;
    }
}

/// <summary>LongBench v1 prediction (<c>pred.py</c>) and scoring (<c>eval.py</c>).</summary>
public static class LongBench
{
    public static List<LongBenchSample> ReadSamples(string path) => JsonLines.Read(path, "a LongBench sample", r =>
        new LongBenchSample(
            r.TryGetProperty("input", out var inp) && inp.ValueKind == JsonValueKind.String ? inp.GetString()! : "",
            r.GetProperty("context").GetString() ?? throw new InvalidOperationException("context is null"),
            Strings(r.GetProperty("answers")), AllClasses(r), Length(r)));

    public static List<LongBenchPrediction> ReadPredictions(string path) => JsonLines.Read(path, "a LongBench prediction line", r =>
        new LongBenchPrediction(r.GetProperty("pred").GetString() ?? throw new InvalidOperationException("pred is null"),
            Strings(r.GetProperty("answers")), AllClasses(r), Length(r)));

    private static List<string>? AllClasses(JsonElement r) =>
        r.TryGetProperty("all_classes", out var ac) && ac.ValueKind == JsonValueKind.Array ? Strings(ac) : null;

    private static long Length(JsonElement r) =>
        r.TryGetProperty("length", out var len) && len.ValueKind == JsonValueKind.Number ? len.GetInt64() : 0;

    private static List<string> Strings(JsonElement e) =>
        e.ValueKind == JsonValueKind.Array
            ? e.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()! : throw new InvalidOperationException($"expected strings, found {x.ValueKind}")).ToList()
            : throw new InvalidOperationException($"expected an array, found {e.ValueKind}");

    // ------------------------------------------------------------------ predict

    /// <summary>The token ids pred.py generates from: template filled, cut in the middle to
    /// <c>max_length</c> tokens by text (decode of the first and last int(max_length/2) ids, special tokens
    /// skipped), chat-wrapped unless the dataset is few-shot/code, re-encoded with BOS.</summary>
    public static long[] BuildPrompt(IEvalModel m, LongBenchDataset d, LongBenchSample s, LongBenchPredictOptions o)
    {
        string prompt = LongBenchDatasets.Fill(d.Template, s.Context, s.Input);
        var ids = m.Encode(prompt, addSpecialTokens: true);
        if (ids.Length > o.MaxLength)
        {
            int half = o.MaxLength / 2;
            prompt = m.Decode(ids[..half], skipSpecialTokens: true) + m.Decode(ids[^half..], skipSpecialTokens: true);
        }
        if (d.Chat)
            prompt = o.ChatTemplate switch
            {
                "inst" => $"[INST]{prompt}[/INST]",
                "none" => prompt,
                var t => throw new HiciException($"--chat-template: '{t}' is not supported (inst or none)"),
            };
        return m.Encode(prompt, addSpecialTokens: true).Select(i => (long)i).ToArray();
    }

    /// <summary>Greedy predictions for one dataset, in sample order. samsum also stops at the newline id
    /// (its last id when "\n" is encoded); its min_length (at least one new token) is not applied (docs).</summary>
    public static List<LongBenchPrediction> Predict(IEvalModel m, LongBenchDataset d, IReadOnlyList<LongBenchSample> samples, LongBenchPredictOptions o,
        ResumeLog<LongBenchPrediction>? log = null, Action<int, int>? progress = null)
    {
        var eos = m.EosIds.ToList();
        if (d.Name == "samsum") eos.Add(m.Encode("\n", addSpecialTokens: false)[^1]);
        var preds = new List<LongBenchPrediction>();
        for (int i = 0; i < samples.Count; i++)
        {
            string key = $"{d.Name}/{i}";
            if (log is null || !log.TryGet(key, out var p))
            {
                var s = samples[i];
                var prompt = BuildPrompt(m, d, s, o);
                var gen = m.Greedy(prompt, d.MaxNewTokens, eos);
                p = new LongBenchPrediction(m.Decode(gen.Select(x => (int)x).ToArray(), skipSpecialTokens: true), s.Answers, s.AllClasses, s.Length);
                log?.Add(key, p);
            }
            preds.Add(p);
            progress?.Invoke(i + 1, samples.Count);
        }
        log?.Flush();
        return preds;
    }

    /// <summary>One pred.py line: <c>json.dump(..., ensure_ascii=False)</c> + "\n".</summary>
    public static string PredictionLine(LongBenchPrediction p) => PyJson.Dumps(new PyJson.Obj
    {
        { "pred", p.Pred }, { "answers", p.Answers }, { "all_classes", p.AllClasses }, { "length", p.Length },
    }, ensureAscii: false) + "\n";

    public static void WritePredictions(string path, IEnumerable<LongBenchPrediction> preds) =>
        AtomicFile.Write(path, s => { var b = Encoding.UTF8.GetBytes(string.Concat(preds.Select(PredictionLine))); s.Write(b); });

    // ------------------------------------------------------------------ score

    /// <summary><c>eval.py → scorer</c>: per sample the max over answers, <c>round(100·mean, 2)</c>.
    /// all_classes is the last line's, as the reference reads it.</summary>
    public static double Score(string dataset, IReadOnlyList<LongBenchPrediction> preds)
    {
        if (preds.Count == 0) throw new HiciException($"{dataset}: no predictions to score");
        var metric = LongBenchMetrics.ByName(LongBenchDatasets.Get(dataset).Metric);
        var classes = preds[^1].AllClasses ?? Array.Empty<string>();
        double total = 0;
        foreach (var p in preds) total += SampleScore(dataset, p, metric, classes);
        return PyJson.Round(100 * total / preds.Count, 2);
    }

    /// <summary><c>eval.py → scorer_e</c>: buckets 0-4k / 4-8k / 8k+ by the sample's length, np.mean per bucket.</summary>
    public static IReadOnlyList<(string Bucket, double Score)> ScoreByLength(string dataset, IReadOnlyList<LongBenchPrediction> preds)
    {
        var metric = LongBenchMetrics.ByName(LongBenchDatasets.Get(dataset).Metric);
        var classes = preds.Count > 0 ? preds[^1].AllClasses ?? Array.Empty<string>() : Array.Empty<string>();
        var buckets = new[] { ("0-4k", new List<double>()), ("4-8k", new List<double>()), ("8k+", new List<double>()) };
        foreach (var p in preds)
            buckets[p.Length < 4000 ? 0 : p.Length < 8000 ? 1 : 2].Item2.Add(SampleScore(dataset, p, metric, classes));
        return buckets.Select(b => (b.Item1, PyJson.Round(100 * NumpyMean(b.Item2), 2))).ToList();
    }

    private static double SampleScore(string dataset, LongBenchPrediction p, LongBenchMetrics.Metric metric, IReadOnlyList<string> classes)
    {
        string pred = p.Pred;
        if (LongBenchDatasets.FirstLineOnly(LongBenchDatasets.Get(dataset).Name)) pred = pred.TrimStart('\n').Split('\n')[0];
        double score = 0;
        foreach (var gt in p.Answers) score = Math.Max(score, metric(pred, gt, classes));
        return score;
    }

    /// <summary><c>np.mean</c> of float64s: NumPy's pairwise summation (blocks of ≤ 128 summed with 8
    /// accumulators), NaN for an empty list.</summary>
    public static double NumpyMean(IReadOnlyList<double> xs) => xs.Count == 0 ? double.NaN : PairwiseSum(xs, 0, xs.Count) / xs.Count;

    private static double PairwiseSum(IReadOnlyList<double> a, int start, int n)
    {
        if (n < 8)
        {
            double res = 0.0;   // numpy starts from -0.0 (a sign detail that never reaches a mean here)
            for (int i = 0; i < n; i++) res += a[start + i];
            return res;
        }
        if (n <= 128)
        {
            var r = new double[8];
            for (int k = 0; k < 8; k++) r[k] = a[start + k];
            int i;
            for (i = 8; i < n - (n % 8); i += 8)
                for (int k = 0; k < 8; k++) r[k] += a[start + i + k];
            double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            for (; i < n; i++) res += a[start + i];
            return res;
        }
        int n2 = n / 2;
        n2 -= n2 % 8;
        return PairwiseSum(a, start, n2) + PairwiseSum(a, start + n2, n - n2);
    }

    /// <summary>Scores every <c>{dataset}.jsonl</c> in a prediction folder.</summary>
    public static LongBenchScores ScoreFolder(string dir, bool longBenchE)
    {
        if (!Directory.Exists(dir)) throw new HiciException($"{dir}: no such prediction folder");
        var files = Directory.GetFiles(dir, "*.jsonl").Where(f => !f.EndsWith(".partial.jsonl", StringComparison.Ordinal)).ToList();
        if (files.Count == 0) throw new HiciException($"{dir}: no {{dataset}}.jsonl prediction files");
        int Order(string f) { var n = Path.GetFileName(f).Split('.')[0]; var i = LongBenchDatasets.All.ToList().FindIndex(d => d.Name == (n.EndsWith("_e") ? n[..^2] : n)); return i < 0 ? int.MaxValue : i; }
        var scores = new List<(string, double)>();
        var byLength = new List<(string, IReadOnlyList<(string, double)>)>();
        foreach (var f in files.OrderBy(Order).ThenBy(f => f, StringComparer.Ordinal))
        {
            string dataset = Path.GetFileName(f).Split('.')[0];          // eval.py: filename.split('.')[0]
            var preds = ReadPredictions(f);
            if (longBenchE) byLength.Add((dataset, ScoreByLength(dataset, preds)));
            else scores.Add((dataset, Score(dataset, preds)));
        }
        return new LongBenchScores(scores, byLength);
    }

    /// <summary>result.json as eval.py writes it: <c>json.dump(scores, f, ensure_ascii=False, indent=4)</c>, no final newline.</summary>
    public static string ResultJson(LongBenchScores s)
    {
        var root = new PyJson.Obj();
        foreach (var (d, v) in s.Scores) root.Add(d, v);
        foreach (var (d, b) in s.ByLength)
        {
            var o = new PyJson.Obj();
            foreach (var (k, v) in b) o.Add(k, v);
            root.Add(d, o);
        }
        return PyJson.Dumps(root, ensureAscii: false, indent: 4);
    }
}
