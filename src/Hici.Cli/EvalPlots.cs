using Hici.IO;
using ScottPlot;

namespace Hici.Cli;

/// <summary>The evaluation figures (ScottPlot 5), written atomically as PNG.</summary>
public static class EvalPlots
{
    /// <summary>A heatmap with labelled rows (top to bottom) and columns; NaN cells stay blank.</summary>
    public static void Heatmap(string path, double[,] values, string[] rowLabels, string[] columnLabels,
        string title, string xLabel, string yLabel, double min = 0, double max = 1)
    {
        var plt = new Plot();
        var hm = plt.Add.Heatmap(values);
        hm.Colormap = new ScottPlot.Colormaps.Viridis();
        hm.ManualRange = new ScottPlot.Range(min, max);
        plt.Add.ColorBar(hm);
        int rows = values.GetLength(0), cols = values.GetLength(1);
        // ScottPlot centres cell (r, c) on x = c, y = rows − 1 − r (row 0 drawn at the top)
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, cols).Select(c => (double)c).ToArray(), columnLabels);
        plt.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, rows).Select(r => (double)(rows - 1 - r)).ToArray(), rowLabels);
        plt.Title(title);
        plt.XLabel(xLabel);
        plt.YLabel(yLabel);
        Save(plt, path, Math.Max(640, 60 * cols + 200), Math.Max(420, 30 * rows + 160));
    }

    /// <summary>Stacked bars: one bar per x label, one segment per series (shares that sum to 1).</summary>
    public static void StackedBars(string path, string[] xLabels, IReadOnlyList<(string Name, double[] Values)> series,
        string title, string xLabel, string yLabel)
    {
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var bars = new List<Bar>();
        for (int x = 0; x < xLabels.Length; x++)
        {
            double bottom = 0;
            for (int s = 0; s < series.Count; s++)
            {
                double v = series[s].Values[x];
                bars.Add(new Bar { Position = x, ValueBase = bottom, Value = bottom + v, FillColor = palette.GetColor(s) });
                bottom += v;
            }
        }
        plt.Add.Bars(bars);
        for (int s = 0; s < series.Count; s++)
            plt.Legend.ManualItems.Add(new LegendItem { LabelText = series[s].Name, FillColor = palette.GetColor(s) });
        plt.ShowLegend(Edge.Right);
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, xLabels.Length).Select(c => (double)c).ToArray(), xLabels);
        plt.Axes.Margins(bottom: 0);
        plt.Title(title);
        plt.XLabel(xLabel);
        plt.YLabel(yLabel);
        Save(plt, path, Math.Max(640, 40 * xLabels.Length + 200), 420);
    }

    private static void Save(Plot plt, string path, int width, int height)
    {
        var bytes = plt.GetImageBytes(width, height, ImageFormat.Png);
        AtomicFile.Write(path, s => s.Write(bytes));
    }
}
