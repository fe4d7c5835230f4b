using System.Globalization;
using System.Text;
using Hici.Cli.Commands;
using Hici.Cli.Training;
using Hici.Hierarchical;
using Hici.Evaluation;
using Hici.Loading;
using Hici.Models;
using Hici.Text;

namespace Hici.Cli.Demo;

/// <summary>
/// The report's evaluation sections for the extended model, kept cheap (few trials, lengths ≤ the long
/// context): LongLoRA's passkey retrieval as a depth × length heatmap, and where HiCI attention puts its mass.
/// </summary>
public static class DemoSections
{
    public static string Passkey(DemoRecipe d, string extendedDir, HfTokenizer tok, VocabRemap map, string outDir, Action<int, int>? progress)
    {
        var o = new PasskeyOptions { ContextSize = -1, MaxTokens = d.LongContext, Interval = d.PasskeyInterval, NumTests = d.PasskeyTests };
        // the merged config carries rope_scaling ×8, so every length runs with it (no per-length edit)
        var r = Evaluation.Passkey.Run(o, _ => new PasskeyRope(null), _ =>
        {
            var lm = ModelLoader.Load(new ModelLoadRequest(extendedDir) { Attention = HiciAttentionOptions.Setting(d.Hici, run: false) });
            return map.Wrap(new EvalCommon.OwnedEvalModel(lm, tok));
        }, progress: progress);
        var png = Path.Combine(outDir, "passkey_heatmap.png");
        EvalPasskeyCommand.WriteHeatmap(png, r, d.PasskeyDepthBins);
        var ic = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("## Passkey retrieval (extended model, full attention)");
        sb.AppendLine();
        sb.AppendLine($"LongLoRA's `passkey_retrieval.py` prompts (a 5-digit pass key hidden at a random depth in filler text), {o.NumTests} trials per length, greedy, exact match. " +
            $"A model this small, pre-trained on {(long)d.PretrainSteps * d.PretrainBatch * d.ShortContext:N0} tokens of Brown, is not expected to retrieve pass keys; " +
            "the heatmap is the harness the published checkpoints are measured with (`hici eval passkey`).");
        sb.AppendLine();
        sb.AppendLine("| length (target) | prompt tokens | accuracy |");
        sb.AppendLine("|---:|---:|---:|");
        foreach (var l in r.Lengths) sb.AppendLine($"| {l.Target} | {l.AvgTokens} | {l.Accuracy.ToString("0.00", ic)} |");
        sb.AppendLine();
        sb.AppendLine($"![passkey depth × length]({Path.GetFileName(png)})");
        return sb.ToString();
    }

    public static string AttentionStatistics(DemoRecipe d, string extendedDir, long[] held, string outDir)
    {
        AttentionStatsResult r;
        using (var loaded = ModelLoader.Load(new ModelLoadRequest(extendedDir) { Attention = HiciAttentionOptions.Setting(d.Hici) }))
        {
            var lm = loaded.Transformer;
            lm.eval();
            r = AttentionStats.Compute(lm, held.Take(d.LongContext).ToArray());
        }
        var png = Path.Combine(outDir, "attention_stats.png");
        EvalAttentionStatsCommand.WritePlots(png, r);
        var ic = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine($"## HiCI attention statistics (extended model, {HiciConfig.CausalModeName(d.EvalCausalMode)})");
        sb.AppendLine();
        sb.AppendLine($"One forward over the first {r.Tokens:N0} held-out tokens ({r.Segments} segments): the share of each layer's attention softmax over [G; L; tokens] " +
            "that lands on the global memory G, the local slots L and the segment's own tokens (mean over heads and queries).");
        sb.AppendLine();
        sb.AppendLine("| layer | global G | local L | tokens |");
        sb.AppendLine("|---:|---:|---:|---:|");
        foreach (var l in r.Layers) sb.AppendLine($"| {l.Layer} | {l.Global.ToString("0.000", ic)} | {l.Local.ToString("0.000", ic)} | {l.Tokens.ToString("0.000", ic)} |");
        sb.AppendLine();
        sb.AppendLine($"![attention mass per layer]({Path.GetFileName(png)})");
        sb.AppendLine();
        sb.AppendLine($"![memory share per layer and segment]({Path.GetFileName(Path.ChangeExtension(png, ".heatmap.png"))})");
        return sb.ToString();
    }
}
