using System.CommandLine;
using System.Globalization;
using System.Text;
using Hici.Evaluation;
using Hici.IO;
using Hici.Loading;
using Hici.Text;

namespace Hici.Cli.Commands;

/// <summary><c>hici eval attention-stats</c>: per layer, the share of attention mass on G, on L and on tokens → JSON + PNG.</summary>
public static class EvalAttentionStatsCommand
{
    public static Command Build()
    {
        var text = new Option<string?>("--text") { Description = "UTF-8 text, encoded with the model folder's tokenizer (or --tokenizer)" };
        var ids = new Option<string?>("--ids") { Description = "JSON array of token ids" };
        var plot = new Option<string?>("--plot") { Description = "Per-layer bars PNG (default: --out with .png; the layer × segment heatmap goes beside it as .heatmap.png)" };
        var cmd = new Command("attention-stats", "Per layer: share of HiCI attention mass on the global memory G, the local slots L and the tokens (needs --attention hici)");
        foreach (var o in new Option[] { text, ids, EvalCommon.Out, plot }) cmd.Options.Add(o);
        EvalCommon.AddModelOptions(cmd, tokenizer: true);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            string dir = pr.GetValue(EvalCommon.Model) ?? throw new HiciException("--model DIR is required");
            if ((pr.GetValue(text) is null) == (pr.GetValue(ids) is null)) throw new HiciException("attention-stats: give exactly one of --text FILE or --ids FILE.json");
            var request = EvalCommon.Request(pr);
            if ((pr.GetValue(ModelOptions.Attention) ?? "full").ToLowerInvariant() != "hici") throw new HiciException("attention-stats measures HiCI attention: pass --attention hici");
            var plan = ModelLoader.Plan(request);
            long[] tokens = pr.GetValue(ids) is { } idsPath
                ? TokenInput.ReadIds(idsPath, plan.VocabSize, minCount: 2, purpose: "to run")
                : TokenInput.EncodeTextFile(pr.GetValue(text)!, TokenInput.LoadTokenizer(pr.GetValue(EvalCommon.Tokenizer) ?? dir, plan.VocabSize, instead: "to encode --text with; pass --tokenizer DIR or --ids FILE.json"));
            var (attention, _) = plan.DescribeAttention(tokens.Length);
            string outPath = EvalCommon.CheckOut(pr.GetValue(EvalCommon.Out), "attention-stats.json");
            string plotPath = pr.GetValue(plot) ?? Path.ChangeExtension(outPath, ".png");
            using var loaded = EvalCommon.Load(pr);
            Console.Error.WriteLine($"attention   {attention}");
            var r = AttentionStats.Compute(loaded.Transformer, tokens);
            Write(outPath, r);
            WritePlots(plotPath, r);
            foreach (var l in r.Layers)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"layer {l.Layer,3}  G {l.Global:P1}  L {l.Local:P1}  tokens {l.Tokens:P1}"));
            Console.WriteLine($"→ {outPath}, {plotPath}");
            return 0;
        }));
        return cmd;
    }

    private static void Write(string path, AttentionStatsResult r)
    {
        var root = new PyJson.Obj
        {
            { "tokens", r.Tokens }, { "segments", r.Segments },
            { "layers", r.Layers.Select(l => new PyJson.Obj
                {
                    { "layer", l.Layer }, { "global", l.Global }, { "local", l.Local }, { "tokens", l.Tokens },
                    { "global_per_segment", l.GlobalPerSegment }, { "local_per_segment", l.LocalPerSegment },
                }).ToList() },
        };
        AtomicFile.Write(path, s => s.Write(Encoding.UTF8.GetBytes(PyJson.Dumps(root, indent: 2) + "\n")));
    }

    /// <summary>Stacked per-layer bars (G, L, tokens) at <paramref name="path"/>, and the layer × segment memory-share heatmap beside it.</summary>
    public static void WritePlots(string path, AttentionStatsResult r)
    {
        var layers = r.Layers.Select(l => l.Layer.ToString(CultureInfo.InvariantCulture)).ToArray();
        EvalPlots.StackedBars(path, layers, new[]
        {
            ("global memory G", r.Layers.Select(l => l.Global).ToArray()),
            ("local slots L", r.Layers.Select(l => l.Local).ToArray()),
            ("tokens", r.Layers.Select(l => l.Tokens).ToArray()),
        }, "HiCI attention mass per layer", "layer", "share of attention");
        var grid = new double[r.Layers.Count, r.Segments];
        for (int i = 0; i < r.Layers.Count; i++)
            for (int s = 0; s < r.Segments; s++) grid[i, s] = r.Layers[i].MemoryPerSegment[s];
        EvalPlots.Heatmap(Path.ChangeExtension(path, ".heatmap.png"), grid, layers,
            Enumerable.Range(0, r.Segments).Select(s => s.ToString(CultureInfo.InvariantCulture)).ToArray(),
            "Attention share on memory (G + L)", "segment", "layer");
    }
}
