using Hici.IO;
using ScottPlot;

namespace Hici.Cli.Training;

/// <summary>PNG line plots (ScottPlot 5), written atomically.</summary>
public static class Plots
{
    /// <summary>Loss against step for one or more runs.</summary>
    public static void Loss(string path, string title, params (string Label, IReadOnlyList<(long Step, double Loss)> Points)[] runs)
    {
        var plt = new Plot();
        foreach (var (label, pts) in runs)
        {
            if (pts.Count == 0) continue;
            var s = plt.Add.Scatter(pts.Select(p => (double)p.Step).ToArray(), pts.Select(p => p.Loss).ToArray());
            s.LegendText = label;
            s.MarkerSize = 0;
        }
        plt.Title(title);
        plt.XLabel("optimizer step");
        plt.YLabel("training loss (mean token NLL)");
        if (runs.Length > 1) plt.ShowLegend();
        Save(plt, path);
    }

    /// <summary>Perplexity against evaluation length (log-2 x axis), one line per model.</summary>
    public static void Perplexity(string path, string title, IReadOnlyList<int> lengths, params (string Label, double[] Ppl)[] series)
    {
        var plt = new Plot();
        double[] xs = lengths.Select(l => Math.Log2(l)).ToArray();
        foreach (var (label, ppl) in series)
        {
            var s = plt.Add.Scatter(xs, ppl.Select(p => double.IsFinite(p) ? Math.Log10(p) : double.NaN).ToArray());
            s.LegendText = label;
        }
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            xs.Zip(lengths, (x, l) => new Tick(x, l.ToString())).ToArray());
        plt.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { LabelFormatter = y => Math.Pow(10, y).ToString("0.#") };
        plt.Title(title);
        plt.XLabel("evaluation length (tokens)");
        plt.YLabel("perplexity (log scale)");
        plt.ShowLegend();
        Save(plt, path);
    }

    private static void Save(Plot plt, string path)
    {
        var bytes = plt.GetImageBytes(900, 520, ImageFormat.Png);
        AtomicFile.Write(path, s => s.Write(bytes));
    }
}
