using System.CommandLine;
using System.Globalization;
using System.Text;
using Hici.Evaluation;
using Hici.IO;

namespace Hici.Cli.Commands;

/// <summary><c>hici eval longbench predict|score</c>: LongBench v1's pred.py and eval.py.</summary>
public static class EvalLongBenchCommand
{
    public static Command Build()
    {
        var cmd = new Command("longbench", "LongBench v1: predict (pred.py: templates, middle truncation, greedy) and score (eval.py: metrics, result.json)");
        cmd.Subcommands.Add(BuildPredict());
        cmd.Subcommands.Add(BuildScore());
        return cmd;
    }

    private static Command BuildPredict()
    {
        var data = new Option<string>("--data") { Description = "Folder of the official LongBench JSONL files ({dataset}.jsonl, or {dataset}_e.jsonl with --e)", Required = true };
        var datasets = new Option<string?>("--datasets") { Description = "Comma-separated datasets (default: all 21, or LongBench-E's 13 with --e)" };
        var outDir = new Option<string>("--out") { Description = "Prediction folder (pred/{model}): {dataset}.jsonl per dataset, written when the dataset completes", Required = true };
        var maxLength = new Option<int>("--max-length") { Description = "Prompt token budget (model2maxlen.json: 15500 for the HiCI models)", DefaultValueFactory = _ => 15500 };
        var chat = new Option<string>("--chat-template") { Description = "inst = [INST]{prompt}[/INST] (Llama-2 and the HiCI models in pred.py) | none", DefaultValueFactory = _ => "inst" };
        var e = new Option<bool>("--e") { Description = "LongBench-E (files {dataset}_e.jsonl)" };
        var cmd = new Command("predict", "Greedy predictions for LongBench datasets in pred.py's layout");
        foreach (var o in new Option[] { data, datasets, outDir, maxLength, chat, e }) cmd.Options.Add(o);
        EvalCommon.AddModelOptions(cmd, tokenizer: true);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            bool isE = pr.GetValue(e);
            var names = pr.GetValue(datasets) is { } d
                ? d.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList()
                : (isE ? LongBenchDatasets.LongBenchE : LongBenchDatasets.All.Select(x => x.Name)).ToList();
            foreach (var n in names) LongBenchDatasets.Get(n);
            var o = new LongBenchPredictOptions(pr.GetValue(maxLength), pr.GetValue(chat)!);
            if (o.MaxLength < 2) throw new HiciException($"--max-length must be at least 2 (got {o.MaxLength})");
            if (o.ChatTemplate is not ("inst" or "none")) throw new HiciException($"--chat-template: '{o.ChatTemplate}' is not supported (inst or none)");
            string dir = pr.GetValue(outDir)!;
            Directory.CreateDirectory(dir);
            string File_(string n) => (isE ? n + "_e" : n) + ".jsonl";
            var samples = names.ToDictionary(n => n, n => LongBench.ReadSamples(Path.Combine(pr.GetValue(data)!, File_(n))));
            var todo = names.Where(n => !File.Exists(Path.Combine(dir, File_(n)))).ToList();
            foreach (var n in names.Except(todo)) Console.Error.WriteLine($"skipping    {Path.Combine(dir, File_(n))} exists");
            if (todo.Count == 0) return 0;
            var tok = EvalCommon.LoadTokenizer(pr);
            using var model = new EvalCommon.OwnedEvalModel(EvalCommon.Load(pr), tok);
            foreach (var n in todo)
            {
                string path = Path.Combine(dir, File_(n));
                var log = new ResumeLog<LongBenchPrediction>(path + ".partial.jsonl",
                    $"longbench {n} model={Path.GetFullPath(pr.GetValue(EvalCommon.Model)!)} args={string.Join(' ', pr.Tokens.Select(t => t.Value))}");
                if (log.Resumed > 0) Console.Error.WriteLine($"resuming    {log.Resumed} samples from {log.Path}");
                var preds = Progress.Run($"longbench {n}", report => LongBench.Predict(model, LongBenchDatasets.Get(n), samples[n], o, log, report));
                LongBench.WritePredictions(path, preds);
                log.Complete();
                Console.WriteLine($"{n,-22} {preds.Count} predictions → {path}");
            }
            return 0;
        }));
        return cmd;
    }

    private static Command BuildScore()
    {
        var dir = new Option<string>("--predictions") { Description = "Prediction folder (pred/{model}) holding {dataset}.jsonl files", Required = true };
        var e = new Option<bool>("--e") { Description = "LongBench-E: scores per length bucket (0-4k, 4-8k, 8k+)" };
        var cmd = new Command("score", "eval.py: per-dataset scores into {predictions}/result.json; category means as compare_results.py");
        cmd.Options.Add(dir);
        cmd.Options.Add(e);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            string d = pr.GetValue(dir)!;
            var s = LongBench.ScoreFolder(d, pr.GetValue(e));
            string json = LongBench.ResultJson(s);
            AtomicFile.Write(Path.Combine(d, "result.json"), st => st.Write(Encoding.UTF8.GetBytes(json)));
            foreach (var (n, v) in s.Scores) Console.WriteLine($"{n,-22} {v,7:F2}");
            foreach (var (n, b) in s.ByLength) Console.WriteLine($"{n,-22} {string.Join("  ", b.Select(x => $"{x.Bucket} {x.Score:F2}"))}");
            if (s.Scores.Count > 0)
                Console.WriteLine(string.Join("  ", s.Categories().Select(c => string.Create(CultureInfo.InvariantCulture, $"{c.Name} {c.Score:F1}"))));
            Console.WriteLine($"→ {Path.Combine(d, "result.json")}");
            return 0;
        }));
        return cmd;
    }
}
