using System.CommandLine;
using System.Globalization;
using System.Text;
using Hici.Evaluation;
using Hici.IO;

namespace Hici.Cli.Commands;

/// <summary><c>hici eval topics</c> / <c>hici eval lines</c>: LongChat LongEval retrieval as the HiCI reference runs it.</summary>
public static class EvalLongEvalCommand
{
    public static Command Build(string task)
    {
        bool topics = task == "topics";
        var cases = new Option<string>("--cases") { Description = $"Folder of LongChat test cases ({{N}}_{task}.jsonl, as in LongChat/longeval/evaluation/{task}/testcases)", Required = true };
        var nums = new Option<string>(topics ? "--num-topics" : "--num-lines")
        {
            Description = "Comma-separated N to run", DefaultValueFactory = _ => topics ? "5,10,15,20,25" : "200,300,400,500,600,680",
        };
        var outDir = new Option<string>("--out") { Description = "Prediction folder: {N}_response.txt per N (an existing one is kept, as the reference skips it) + score.txt", Required = true };
        var scoreOnly = new Option<bool>("--score-only") { Description = "Only score the response files already in --out (no model)" };
        var cmd = new Command(task, topics
            ? "Topic retrieval (LongChat LongEval): prompt + \"\\n ASSISTANT: The first topic we discussed was\", greedy ≤ 50 tokens, first-token stop ids, substring scoring"
            : "Line retrieval (LongChat LongEval): the prompt as given, greedy ≤ 100 tokens, last number in the output vs the register value");
        foreach (var o in new Option[] { cases, nums, outDir, scoreOnly }) cmd.Options.Add(o);
        EvalCommon.AddModelOptions(cmd, tokenizer: true);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            var ns = ParseList(pr.GetValue(nums)!, topics ? "--num-topics" : "--num-lines");
            string dir = pr.GetValue(outDir)!;
            if (File.Exists(dir)) throw new HiciException($"--out {dir}: is a file; give a folder");
            Directory.CreateDirectory(dir);
            var scores = new StringBuilder();
            if (!pr.GetValue(scoreOnly))
            {
                var files = ns.ToDictionary(n => n, n => Path.Combine(pr.GetValue(cases)!, $"{n}_{task}.jsonl"));
                var all = files.ToDictionary(kv => kv.Key, kv => LongEval.ReadCases(kv.Value, task));   // bad data before the model
                var todo = ns.Where(n => !File.Exists(Response(dir, n))).ToList();
                foreach (var n in ns.Except(todo)) Console.Error.WriteLine($"skipping    {Response(dir, n)} exists");
                if (todo.Count > 0)
                {
                    var tok = EvalCommon.LoadTokenizer(pr);
                    using var model = new EvalCommon.OwnedEvalModel(EvalCommon.Load(pr), tok);
                    foreach (int n in todo)
                    {
                        var log = new ResumeLog<LongEvalAnswer>(Response(dir, n) + ".partial.jsonl",
                            $"{task} n={n} model={Path.GetFullPath(pr.GetValue(EvalCommon.Model)!)} args={string.Join(' ', pr.Tokens.Select(t => t.Value))}");
                        if (log.Resumed > 0) Console.Error.WriteLine($"resuming    {log.Resumed} cases from {log.Path}");
                        var r = Progress.Run($"{task} {n}", report => LongEval.Run(model, task, n, all[n], null, log, report));
                        LongEval.WriteResponses(Response(dir, n), r);
                        log.Complete();
                    }
                }
            }
            foreach (int n in ns)
            {
                string f = Response(dir, n);
                if (!File.Exists(f)) throw new HiciException($"{f}: no such response file");
                string line;
                if (topics)
                {
                    var (c, t) = LongEval.ScoreTopicFile(f);
                    line = LongEval.TopicScoreText(c, t);
                }
                else line = InputFiles.ReadLines(f, JsonLines.MaxLineBytes).Select(l => l.Text).LastOrDefault(l => l.StartsWith("Accuracy: ", StringComparison.Ordinal))
                            ?? throw new HiciException($"{f}: no Accuracy line");
                Console.WriteLine($"{n,4} {task}  {line}");
                scores.Append(line).Append('\n');
            }
            AtomicFile.Write(Path.Combine(dir, "score.txt"), s => s.Write(Encoding.UTF8.GetBytes(scores.ToString())));
            return 0;
        }));
        return cmd;
    }

    private static string Response(string dir, int n) => Path.Combine(dir, $"{n}_response.txt");

    private static List<int> ParseList(string s, string flag)
    {
        var list = new List<int>();
        foreach (var p in s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            list.Add(int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0 ? n : throw new HiciException($"{flag} '{s}': expected positive integers separated by commas"));
        if (list.Count == 0) throw new HiciException($"{flag}: empty");
        return list;
    }
}
