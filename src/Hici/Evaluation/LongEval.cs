using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Hici.IO;

namespace Hici.Evaluation;

/// <summary>A LongChat LongEval test case: topics (label = first topic) or lines (label = the register value).</summary>
public sealed record LongEvalCase(int Index, string Prompt, string Label, int? ExpectedNumber);

/// <summary>One answered case and its response-file line.</summary>
public sealed record LongEvalAnswer(int Index, string Label, string Output, int PromptTokens, bool Correct, string Line);

/// <param name="Accuracy">correct / cases (lines and topics alike; topics' scorer counts unparsable lines as wrong)</param>
public sealed record LongEvalResult(string Task, int N, IReadOnlyList<LongEvalAnswer> Answers, int Correct, int Total)
{
    public double Accuracy => Total == 0 ? 0 : Correct / (double)Total;
}

/// <summary>
/// LongChat's LongEval topic and line retrieval as the HiCI reference runs them
/// (<c>LongChat/longeval/utils.py → test_topics_one_sample / test_lines_one_sample</c>, scored by
/// <c>topic_retrieval_manual_eval.py</c> and the lines regex).
/// </summary>
public static class LongEval
{
    public const string TopicsSuffix = "\n ASSISTANT: The first topic we discussed was";
    /// <summary>Each string's first token id also ends generation (the reference's stop_ids).</summary>
    public static readonly string[] TopicStopStrings = { "\n USER:", "\nUSER:", " USER:", "\\n" };
    public static readonly string[] TopicCuts = { "\n", " USER:", "USER:" };
    public const int TopicsMaxNewTokens = 50, LinesMaxNewTokens = 100;

    public static List<LongEvalCase> ReadCases(string path, string task)
    {
        int index = 0;
        var list = JsonLines.Read(path, $"a LongEval {task} case", r =>
        {
            string prompt = r.GetProperty("prompt").GetString() ?? throw new InvalidOperationException("prompt is null");
            if (task == "topics")
            {
                var topics = r.GetProperty("topics");
                if (topics.ValueKind != JsonValueKind.Array || topics.GetArrayLength() == 0) throw new InvalidOperationException("topics must be a non-empty array");
                return new LongEvalCase(index++, prompt, topics[0].GetString() ?? "", null);
            }
            int expected = r.GetProperty("expected_number").GetInt32();
            return new LongEvalCase(index++, prompt, expected.ToString(CultureInfo.InvariantCulture), expected);
        });
        if (list.Count == 0) throw new HiciException($"{path}: no test cases");
        return list;
    }

    /// <summary>The stop ids: the model's EOS plus the first id of each stop string, encoded without specials, de-duplicated.</summary>
    public static List<long> TopicStopIds(IEvalModel m)
    {
        var ids = new List<long>(m.EosIds);
        foreach (var s in TopicStopStrings)
        {
            var t = m.Encode(s, addSpecialTokens: false);
            if (t.Length > 0 && !ids.Contains(t[0])) ids.Add(t[0]);
        }
        return ids;
    }

    /// <summary>Decoded output → the text the reference logs: cut before the first "\n", then " USER:", then "USER:".</summary>
    public static string CutTopicOutput(string text)
    {
        foreach (var cut in TopicCuts)
        {
            int i = text.IndexOf(cut, StringComparison.Ordinal);
            if (i >= 0) text = text[..i];
        }
        return text;
    }

    public static LongEvalAnswer AnswerTopic(IEvalModel m, LongEvalCase c, IReadOnlyCollection<long> stopIds)
    {
        var prompt = m.Encode(c.Prompt + TopicsSuffix, addSpecialTokens: true).Select(i => (long)i).ToArray();
        CheckVocab(m, prompt);
        var gen = m.Greedy(prompt, TopicsMaxNewTokens, stopIds);
        string output = CutTopicOutput(m.Decode(gen.Select(x => (int)x).ToArray(), skipSpecialTokens: true));
        string line = $"Label: {c.Label}, Predict: {PyRepr.List(output)}, prompt length: {prompt.Length}".Replace("\n", " ");
        return new LongEvalAnswer(c.Index, c.Label, output, prompt.Length, ScoreTopicLine(line) == true, line);
    }

    /// <summary>Lines: the prompt as given (or wrapped by <paramref name="wrap"/>, e.g. a chat template), up to 100 new tokens.</summary>
    public static LongEvalAnswer AnswerLine(IEvalModel m, LongEvalCase c, Func<string, string>? wrap = null)
    {
        var prompt = m.Encode(wrap is null ? c.Prompt : wrap(c.Prompt), addSpecialTokens: true).Select(i => (long)i).ToArray();
        CheckVocab(m, prompt);
        var gen = m.Greedy(prompt, LinesMaxNewTokens, m.EosIds.ToArray());
        string output = m.Decode(gen.Select(x => (int)x).ToArray(), skipSpecialTokens: true);
        int parsed = ParseLastNumber(output);
        string line = $"Label: {c.ExpectedNumber}, Predict: {output}, Parsed: {parsed}, prompt length: {prompt.Length}".Replace("\n", " ");
        return new LongEvalAnswer(c.Index, c.Label, output, prompt.Length, parsed == c.ExpectedNumber, line);
    }

    private static void CheckVocab(IEvalModel m, long[] ids)
    {
        foreach (var id in ids)
            if (id >= m.VocabSize) throw new HiciException($"prompt token id {id} is outside the model's vocabulary [0, {m.VocabSize})");
    }

    private static readonly Regex Number = new(@"\d+", RegexOptions.CultureInvariant);

    /// <summary>The last run of digits as an int; −1 when there is none.</summary>
    public static int ParseLastNumber(string output)
    {
        var ms = Number.Matches(output);
        if (ms.Count == 0) return -1;
        // Python int() of an arbitrarily long digit run never fails; one beyond int can never equal a label
        return int.TryParse(ms[^1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : -2;
    }

    /// <summary><c>topic_retrieval_manual_eval.py</c> on one response line: null when the line does not split into
    /// two parts at ", Predict: " (skipped but counted), else whether the label is a substring of the prediction.</summary>
    public static bool? ScoreTopicLine(string line)
    {
        var parts = line.Split(", Predict: ");
        if (parts.Length != 2) return null;
        string label = parts[0].Replace("Label: ", "").ToLowerInvariant().Trim();
        string predict = parts[1].Split(", prompt length:")[0].Trim('[', ']', '\'', '"').ToLowerInvariant().Trim();
        return predict.Contains(label, StringComparison.Ordinal);
    }

    /// <summary>Scores a response file as the reference does; the denominator is every line.</summary>
    public static (int Correct, int Total) ScoreTopicFile(string path)
    {
        if (!File.Exists(path)) throw new HiciException($"{path}: no such file");
        int correct = 0, total = 0;
        foreach (var (_, line) in Hici.IO.InputFiles.ReadLines(path, JsonLines.MaxLineBytes, keepBlank: true))
        {
            total++;
            if (ScoreTopicLine(line) == true) correct++;
        }
        return (correct, total);
    }

    public static string TopicScoreText(int correct, int total) =>
        string.Create(CultureInfo.InvariantCulture, $"Accuracy: {correct}/{total} = {(total == 0 ? 0 : correct * 100.0 / total):F2}%");

    /// <summary>Runs one N: every case (resuming from <paramref name="log"/>), in file order.</summary>
    public static LongEvalResult Run(IEvalModel m, string task, int n, IReadOnlyList<LongEvalCase> cases, Func<string, string>? linesWrap = null,
        ResumeLog<LongEvalAnswer>? log = null, Action<int, int>? progress = null)
    {
        var stop = task == "topics" ? TopicStopIds(m) : null;
        var answers = new List<LongEvalAnswer>();
        foreach (var c in cases)
        {
            string key = $"{task}/{n}/{c.Index}";
            if (log is null || !log.TryGet(key, out var a))
            {
                a = task == "topics" ? AnswerTopic(m, c, stop!) : AnswerLine(m, c, linesWrap);
                log?.Add(key, a);
            }
            answers.Add(a);
            progress?.Invoke(answers.Count, cases.Count);
        }
        log?.Flush();
        return new LongEvalResult(task, n, answers, answers.Count(a => a.Correct), answers.Count);
    }

    /// <summary>The response file: one line per case; lines add "Accuracy: {acc}" at the end as the reference does.</summary>
    public static void WriteResponses(string path, LongEvalResult r) => AtomicFile.Write(path, s =>
    {
        var sb = new StringBuilder();
        foreach (var a in r.Answers) sb.Append(a.Line).Append('\n');
        if (r.Task == "lines") sb.Append("Accuracy: ").Append(PyJson.FloatRepr(r.Accuracy)).Append('\n');
        s.Write(Encoding.UTF8.GetBytes(sb.ToString()));
    });
}

/// <summary>Python's <c>repr</c> of a str and of a one-element list of str (how the topics log prints <c>[output]</c>).</summary>
public static class PyRepr
{
    public static string List(string item) => "[" + Str(item) + "]";

    public static string Str(string s)
    {
        char q = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder(s.Length + 2).Append(q);
        foreach (char c in s)
        {
            if (c == q || c == '\\') sb.Append('\\').Append(c);
            else if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (c == '\t') sb.Append("\\t");
            else if (c < 0x20 || c == 0x7f) sb.Append("\\x").Append(((int)c).ToString("x2"));
            else sb.Append(c);
        }
        return sb.Append(q).ToString();
    }
}
