using System.Globalization;
using System.Text;
using Hici.IO;

namespace Hici.Cli.Demo;

/// <summary>What the demo measured, handed to every report section.</summary>
public sealed record DemoResults(
    DemoRecipe Recipe,
    string OutputDir,
    IReadOnlyList<(string Label, double[] Ppl)> Perplexity,
    string PerplexityPlot,
    string PretrainLossPlot,
    string ExtendLossPlot,
    IReadOnlyList<(string Phase, TimeSpan Elapsed)> Timings,
    string ExtendedModelDir,
    int TrainFiles,
    int HeldOutFiles,
    long TrainTokens,
    int Threads,
    bool Quick,
    int VocabSize,
    IReadOnlyList<string> ExtraSections);

/// <summary>
/// demo/report.md: the perplexity-vs-length table and plot and both loss curves. Further sections plug in
/// through <see cref="Sections"/> — the evaluation work adds the passkey-retrieval heatmap and the attention
/// statistics of the extended model there (each section gets the results, including the merged model folder,
/// and returns markdown, or null to add nothing).
/// </summary>
public static class DemoReport
{
    /// <summary>Extra sections after the perplexity part, in order. HOOK: passkey heatmap, attention statistics.</summary>
    public static readonly List<Func<DemoResults, string?>> Sections = new();

    public static string Write(DemoResults r)
    {
        var ic = CultureInfo.InvariantCulture;
        var d = r.Recipe;
        var sb = new StringBuilder();
        sb.AppendLine("# HiCI.NET demo: extending a model's context 8× with LoRA + HiCI");
        sb.AppendLine();
        sb.AppendLine($"Written by `hici demo{(r.Quick ? " --quick" : "")}` ({r.Threads} threads). A Llama-architecture model ({d.Layers} layers, hidden {d.Hidden}, {d.Heads} heads, " +
            $"the Llama-2 tokenizer with its 32,000 ids remapped to {r.VocabSize:N0}: those that occur in the training split, plus <unk> — `demo_vocab_map.json` in each model folder) is pre-trained from scratch on the Brown corpus ({r.TrainFiles} files, {r.TrainTokens:N0} tokens) at a " +
            $"context of {d.ShortContext} with full attention ({d.PretrainSteps} steps × {d.PretrainBatch} sequences). Its context is then extended to {d.LongContext} " +
            $"by continued pre-training with LoRA (r 8, α 16 on every q/k/v/o — HiCI's own projections included), trainable embeddings, norms and HiCI modules " +
            $"(causal mode `{Mode(d)}`), and linear RoPE scaling ×{d.LongContext / d.ShortContext} ({d.ExtendSteps} steps × {d.ExtendBatch * d.ExtendAccum} sequences of {d.LongContext}); " +
            $"the adapter is then merged (`hici merge`).");
        sb.AppendLine();
        sb.AppendLine($"## Perplexity on held-out text by evaluation length");
        sb.AppendLine();
        sb.AppendLine($"The same {d.EvalTokens:N0} tokens of {r.HeldOutFiles} held-out Brown files (never trained on), cut into windows of each length; every position after a window's first token is scored.");
        sb.AppendLine();
        sb.AppendLine("| model | " + string.Join(" | ", d.EvalLengths) + " |");
        sb.AppendLine("|---|" + string.Concat(d.EvalLengths.Select(_ => "---:|")));
        foreach (var (label, ppl) in r.Perplexity)
            sb.AppendLine($"| {label} | " + string.Join(" | ", ppl.Select(p => double.IsFinite(p) ? p.ToString("0.0", ic) : "∞")) + " |");
        sb.AppendLine();
        sb.AppendLine($"![perplexity vs length]({Path.GetFileName(r.PerplexityPlot)})");
        sb.AppendLine();
        // Say what this run shows, not what it was meant to show.
        var (baseL, extL) = (r.Perplexity[0].Ppl, r.Perplexity[1].Ppl);
        double baseRise = baseL[^1] / baseL[0], extRise = extL[^1] / extL[0];
        sb.AppendLine($"From {d.EvalLengths[0]} to {d.EvalLengths[^1]} tokens the base model's perplexity changes ×{baseRise.ToString("0.00", ic)}, " +
            $"the extended model's (full attention) ×{extRise.ToString("0.00", ic)}. " +
            (baseRise > 1.1 && extRise < baseRise
                ? $"The base model never saw RoPE positions beyond {d.ShortContext} and degrades there; the extended model holds its perplexity out to {d.LongContext}. "
                : "This run's base model barely uses its context (its perplexity is flat across lengths), so it does not show the extension effect; more pre-training steps are needed for that. ") +
            $"`full attention` is the paper's setting (HiCI weights loaded, unused); `HiCI {Mode(d)}` runs the HiCI memory in a strictly causal mode " +
            "(segment g sees only the memory of segment g−1), so its number is a real language-model perplexity.");
        sb.AppendLine();
        sb.AppendLine("## Training loss");
        sb.AppendLine();
        sb.AppendLine($"![pre-training loss]({Path.GetFileName(r.PretrainLossPlot)})");
        sb.AppendLine();
        sb.AppendLine($"![context-extension loss]({Path.GetFileName(r.ExtendLossPlot)})");
        sb.AppendLine();
        foreach (var md in r.ExtraSections.Concat(Sections.Select(s => s(r))).OfType<string>())
        { sb.AppendLine(md.TrimEnd()); sb.AppendLine(); }
        sb.AppendLine("## Time");
        sb.AppendLine();
        sb.AppendLine("| phase | seconds |");
        sb.AppendLine("|---|---:|");
        foreach (var (p, t) in r.Timings) sb.AppendLine($"| {p} | {t.TotalSeconds.ToString("0", ic)} |");
        sb.AppendLine($"| total | {r.Timings.Sum(t => t.Elapsed.TotalSeconds).ToString("0", ic)} |");
        var path = Path.Combine(r.OutputDir, "report.md");
        var bytes = Encoding.UTF8.GetBytes(sb.ToString());
        AtomicFile.Write(path, s => s.Write(bytes));
        return path;
    }

    private static string Mode(DemoRecipe d) => Hierarchical.HiciConfig.CausalModeName(d.EvalCausalMode);
}
