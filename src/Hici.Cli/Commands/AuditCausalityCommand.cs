using System.CommandLine;
using System.Globalization;
using Hici.Hierarchical;
using Hici.Loading;
using Hici.Runtime;
using Hici.Text;

namespace Hici.Cli.Commands;

/// <summary>
/// <c>hici audit-causality</c>: replaces one token and reports which earlier positions' next-token
/// log-probabilities moved — i.e. whether (and where) a HiCI mode lets predictions see the future.
/// </summary>
public static class AuditCausalityCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "HF model folder (config.json + safetensors)", Required = true };
        var ids = new Option<string?>("--ids") { Description = "JSON file holding an array of token ids (default: random ids, see --length)" };
        var length = new Option<int>("--length") { Description = "Number of random token ids when --ids is not given", DefaultValueFactory = _ => 64 };
        var seed = new Option<int>("--seed") { Description = "Seed for the random ids and the replacement token", DefaultValueFactory = _ => 0 };
        var position = new Option<int?>("--position") { Description = "Position of the token to replace (default: the middle of the last HiCI segment, else of the sequence)" };
        var cmd = new Command("audit-causality", "Replace one token and report which earlier positions' log-probabilities move (HiCI leakage check)");
        cmd.Options.Add(model);
        cmd.Options.Add(ids);
        cmd.Options.Add(length);
        cmd.Options.Add(seed);
        cmd.Options.Add(position);
        ModelOptions.AddTo(cmd);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            var request = ModelOptions.Request(pr, pr.GetValue(model)!);
            var plan = ModelLoader.Plan(request);
            long vocab = plan.VocabSize;
            var rng = new Random(pr.GetValue(seed));
            long[] tokens;
            if (pr.GetValue(ids) is not null && pr.GetResult(length) is { Implicit: false })
                throw new HiciException("give --ids FILE.json or --length N, not both");
            if (pr.GetValue(ids) is { } idsPath) tokens = TokenInput.ReadIds(idsPath, vocab, minCount: 2, purpose: "to audit");
            else
            {
                int n = pr.GetValue(length);
                if (n < 2) throw new HiciException($"--length must be at least 2 (got {n})");
                if (plan.Config is { } mc) CheckFits(mc, n, request.DType, MemoryEstimate.Available, pr.GetValue(Common.Force), $"--length {n}");
                tokens = Enumerable.Range(0, n).Select(_ => (long)rng.Next((int)vocab)).ToArray();
            }
            if (pr.GetValue(ids) is { } idsFile && plan.Config is { } ic)
                CheckFits(ic, tokens.Length, request.DType, MemoryEstimate.Available, pr.GetValue(Common.Force), idsFile);
            var segments = plan.Config is { } cfg ? CausalityAudit.Segments(cfg.Attention, tokens.Length) : null;
            int p = pr.GetValue(position) ?? CausalityAudit.DefaultPosition(segments, tokens.Length);
            if (p < 1 || p >= tokens.Length) throw new HiciException($"--position {p} is outside 1..{tokens.Length - 1}");
            long replacement = (tokens[p] + 1 + rng.NextInt64(vocab - 1)) % vocab;
            string attention = plan.DescribeAttention(tokens.Length).Text;

            Common.InitTorch(pr);
            using var loaded = ModelLoader.Load(request);
            foreach (var line in loaded.ReportLines()) Console.WriteLine(line);
            var r = CausalityAudit.Run(loaded.Model, tokens, p, replacement, segments);
            Print(r, attention, tokens.Length, segments is not null);
            return 0;
        }));
        return cmd;
    }

    /// <summary>
    /// The audit runs two whole-sequence forwards one after the other (lm_head in 256-token chunks): a --length far
    /// beyond memory was a libtorch allocation failure (exit 70, native stack) instead of a user error.
    /// </summary>
    public static void CheckFits(Hici.Models.ModelConfig cfg, int length, TorchSharp.torch.ScalarType dtype, long memoryBytes, bool force, string subject) =>
        MemoryEstimator.WholeSequence(cfg, dtype, length, "auditing", 3.0 * 256 * cfg.VocabSize * 4)
            .EnsureFits(memoryBytes, force, subject, "use a shorter sequence");

    private static void Print(AuditResult r, string attention, int n, bool segmented)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"attention   {attention}");
        Console.WriteLine($"perturbed   position {r.Position} of {n} (token {r.Original} → {r.Replacement}); a position moved if |Δ log p(next token)| > {AuditResult.Threshold.ToString("G", inv)}");
        string what = segmented ? "segment" : "block";
        Console.WriteLine($"{what,-8} {"positions",-11} {"earlier moved",-14} max |Δ log p| in the {what}");
        foreach (var b in r.Blocks)
        {
            string moved = b.Earlier == 0 ? "-" : $"{b.Moved} / {b.Earlier}";
            string mark = r.Position >= b.Start && r.Position < b.End ? "  ← perturbed token" : "";
            Console.WriteLine($"{b.Index,-8} {$"{b.Start}-{b.End - 1}",-11} {moved,-14} {b.MaxDelta.ToString("G3", inv)}{mark}");
        }
        Console.WriteLine($"later       {r.LaterMoved} of {n - 1 - r.Position} positions from {r.Position} on moved");
        Console.WriteLine($"verdict     {r.Verdict}");
    }
}
