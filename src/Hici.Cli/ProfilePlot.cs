using Hici.IO;
using Hici.Profiling;
using ScottPlot;

namespace Hici.Cli;

/// <summary>The `hici profile` figure (ScottPlot 5): per method, time (solid, left axis) and peak memory above
/// the start (dashed, right axis) against context length on a log₂ axis; written atomically as PNG.</summary>
public static class ProfilePlot
{
    public static void Write(string path, IReadOnlyList<ProfileRow> rows, string title)
    {
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var methods = rows.Select(r => r.Method).Distinct().ToList();
        for (int i = 0; i < methods.Count; i++)
        {
            var ok = rows.Where(r => r.Method == methods[i] && r.MeanSeconds is not null).OrderBy(r => r.Tokens).ToList();
            if (ok.Count == 0) continue;
            double[] xs = ok.Select(r => Math.Log2(r.Tokens)).ToArray();
            var time = plt.Add.Scatter(xs, ok.Select(r => r.MeanSeconds!.Value).ToArray(), palette.GetColor(i));
            time.LegendText = $"{methods[i]} time";
            var withMem = ok.Where(r => r.PeakOverBaselineBytes is not null).ToList();
            if (withMem.Count == 0) continue;
            var mem = plt.Add.Scatter(withMem.Select(r => Math.Log2(r.Tokens)).ToArray(),
                withMem.Select(r => r.PeakOverBaselineBytes!.Value / (double)(1L << 30)).ToArray(), palette.GetColor(i));
            mem.LinePattern = LinePattern.Dashed;
            mem.LegendText = $"{methods[i]} memory";
            mem.Axes.YAxis = plt.Axes.Right;
        }
        var ticks = rows.Select(r => r.Tokens).Distinct().Order().ToArray();
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            ticks.Select(t => Math.Log2(t)).ToArray(), ticks.Select(Label).ToArray());
        plt.Title(title);
        plt.XLabel("context length (tokens)");
        plt.YLabel("time per pass (s)");
        plt.Axes.Right.Label.Text = "peak memory above start (GiB)";
        plt.ShowLegend(Alignment.UpperLeft);
        var bytes = plt.GetImageBytes(900, 520, ImageFormat.Png);
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    private static string Label(int t) => t % 1024 == 0 ? $"{t / 1024}K" : t.ToString();
}
