using System.CommandLine;
using System.Globalization;
using System.Text;
using Hici.Evaluation;
using Hici.IO;
using Hici.Models;

namespace Hici.Cli.Commands;

/// <summary><c>hici eval passkey</c>: LongLoRA's passkey retrieval (prompts identical to NumPy's), accuracy per length, heatmap.</summary>
public static class EvalPasskeyCommand
{
    public static Command Build()
    {
        var contextSize = new Option<int>("--context-size") { Description = "Training context: linear RoPE ceil(context/orig) up to it, ceil(max-tokens/orig) beyond (≤ 0: keep the config)", DefaultValueFactory = _ => -1 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Longest test length in tokens", DefaultValueFactory = _ => 32000 };
        var interval = new Option<int>("--interval") { Description = "Test lengths are interval, 2·interval, … ≤ max-tokens", DefaultValueFactory = _ => 1000 };
        var numTests = new Option<int>("--num-tests") { Description = "Trials per length (seeds 0..n−1)", DefaultValueFactory = _ => 10 };
        var promptsOnly = new Option<bool>("--prompts-only") { Description = "Write the prompts as JSONL {\"target\",\"seed\",\"pass_key\",\"prompt\"} to --out; no model" };
        var plot = new Option<string?>("--plot") { Description = "Depth × length heatmap PNG (default: --out with .png)" };
        var cmd = new Command("passkey", "Passkey retrieval (LongLoRA passkey_retrieval.py): greedy, exact match, accuracy per length, depth × length heatmap");
        foreach (var o in new Option[] { contextSize, maxTokens, interval, numTests, promptsOnly, EvalCommon.Out, plot }) cmd.Options.Add(o);
        EvalCommon.AddModelOptions(cmd, tokenizer: true);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            var o = new PasskeyOptions
            {
                ContextSize = pr.GetValue(contextSize), MaxTokens = pr.GetValue(maxTokens),
                Interval = pr.GetValue(interval), NumTests = pr.GetValue(numTests),
            };
            if (o.NumTests <= 0) throw new HiciException($"--num-tests must be positive (got {o.NumTests})");
            var targets = PasskeyPrompts.Targets(o.MaxTokens, o.Interval).ToList();
            PasskeyPrompts.Build(targets[^1], 0);                      // checks the longest length fits the filler
            if (pr.GetValue(promptsOnly))
            {
                string path = pr.GetValue(EvalCommon.Out) ?? throw new HiciException("--prompts-only needs --out FILE.jsonl");
                AtomicFile.CheckTarget(path, "--out");
                WritePrompts(path, o);
                Console.WriteLine($"prompts     {targets.Count * o.NumTests} ({targets.Count} lengths × {o.NumTests} seeds) → {path}");
                return 0;
            }
            string outPath = EvalCommon.CheckOut(pr.GetValue(EvalCommon.Out), "passkey.json");
            string plotPath = pr.GetValue(plot) ?? Path.ChangeExtension(outPath, ".png");
            var tok = EvalCommon.LoadTokenizer(pr);
            var cfg = HfConfigReader.Read(pr.GetValue(EvalCommon.Model)!);
            var log = new ResumeLog<PasskeyTrialResult>(EvalCommon.PartialPath(outPath),
                $"passkey model={Path.GetFullPath(pr.GetValue(EvalCommon.Model)!)} context={o.ContextSize} max={o.MaxTokens} interval={o.Interval} n={o.NumTests} args={string.Join(' ', pr.Tokens.Select(t => t.Value))}");
            if (log.Resumed > 0) Console.Error.WriteLine($"resuming    {log.Resumed} trials from {log.Path}");
            var result = Progress.Run($"passkey {targets.Count} lengths × {o.NumTests}", report => Passkey.Run(o,
                t => Passkey.RopeFor(t, o, cfg.MaxPositionEmbeddings, cfg.RopeScaling is not null),
                rope => new EvalCommon.OwnedEvalModel(EvalCommon.Load(pr, rope.LinearFactor is { } f ? new RopeScaling("linear", f) : null, quiet: true), tok),
                log, report));
            WriteResult(outPath, result);
            WriteHeatmap(plotPath, result);
            log.Complete();
            foreach (var l in result.Lengths)
                Console.WriteLine($"length {l.Target,7}  tokens {l.AvgTokens,7}  accuracy {l.Accuracy:F2}{(l.Extrapolation ? "  [EXTRAPOLATION]" : "")}");
            Console.WriteLine($"mean accuracy {result.MeanAccuracy:F3} → {outPath}, {plotPath}");
            return 0;
        }));
        return cmd;
    }

    private static void WritePrompts(string path, PasskeyOptions o) => AtomicFile.Write(path, s =>
    {
        using var w = new StreamWriter(s, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
        foreach (var t in PasskeyPrompts.All(o.MaxTokens, o.Interval, o.NumTests))
        {
            var row = new PyJson.Obj { { "target", t.Target }, { "seed", t.Seed }, { "pass_key", t.PassKey }, { "prompt", t.Prompt } };
            w.Write(PyJson.Dumps(row));
            w.Write('\n');
        }
    });

    /// <summary>"accuracies" is the reference's printed dict (avg tokens → accuracy); the rest is detail.</summary>
    private static void WriteResult(string path, PasskeyResult r)
    {
        var acc = new PyJson.Obj();
        foreach (var l in r.Lengths) acc.Add(l.AvgTokens.ToString(CultureInfo.InvariantCulture), l.Accuracy);
        var root = new PyJson.Obj
        {
            { "accuracies", acc },
            { "mean_accuracy", r.MeanAccuracy },
            { "settings", new PyJson.Obj { { "context_size", r.Options.ContextSize }, { "max_tokens", r.Options.MaxTokens }, { "interval", r.Options.Interval }, { "num_tests", r.Options.NumTests } } },
            { "lengths", r.Lengths.Select(l => new PyJson.Obj { { "target", l.Target }, { "avg_tokens", l.AvgTokens }, { "accuracy", l.Accuracy }, { "extrapolation", l.Extrapolation } }).ToList() },
            { "trials", r.Trials.Select(t => new PyJson.Obj { { "target", t.Target }, { "seed", t.Seed }, { "pass_key", t.PassKey }, { "depth", t.Depth }, { "prompt_tokens", t.PromptTokens }, { "correct", t.Correct }, { "answer", t.Answer }, { "generated", t.Generated } }).ToList() },
        };
        AtomicFile.Write(path, s => s.Write(Encoding.UTF8.GetBytes(PyJson.Dumps(root, indent: 2) + "\n")));
    }

    public static void WriteHeatmap(string path, PasskeyResult r, int depthBins = 10)
    {
        var rows = Enumerable.Range(0, depthBins).Select(b => $"{100 * b / depthBins}–{100 * (b + 1) / depthBins}%").ToArray();
        var cols = r.Lengths.Select(l => l.Target.ToString(CultureInfo.InvariantCulture)).ToArray();
        EvalPlots.Heatmap(path, r.DepthLengthGrid(depthBins), rows, cols, "Passkey retrieval accuracy", "test length (tokens)", "pass-key depth");
    }
}
