using System.CommandLine;
using System.Globalization;
using Hici.Hierarchical;
using Hici.IO;

namespace Hici.Cli.Commands;

/// <summary><c>hici info --model DIR [HiCI flags]</c>: the model's shape and its HiCI parameter counts (config.json is enough).</summary>
public static class InfoCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json; weights are not read)", Required = true };
        var cmd = new Command("info", "Show a model's configuration and its HiCI parameters per layer, in total and as a share of the model");
        cmd.Options.Add(model);
        HiciOptions.AddTo(cmd);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            var dir = pr.GetValue(model)!;
            var cfgPath = Directory.Exists(dir) ? Path.Combine(dir, "config.json") : dir;
            var mc = HfConfigReader.Read(cfgPath);
            var hc = HiciOptions.Resolve(pr, Directory.Exists(dir) ? dir : Path.GetDirectoryName(dir), always: true)!;
            hc.ValidateFor(mc.HiddenSize, "HiCI flags");
            var n = HiciParameterCount.For(mc, hc);
            long lc = Sum(hc, mc.HiddenSize, "local_constructor."), gi = Sum(hc, mc.HiddenSize, "global_integrator.");
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine($"model            {mc.ModelType}, {mc.NumHiddenLayers} layers, hidden {mc.HiddenSize}, heads {mc.NumAttentionHeads}/{mc.NumKeyValueHeads} (q/kv), head_dim {mc.HeadDim}, vocab {mc.VocabSize}");
            Console.WriteLine($"base parameters  {n.BaseParameters.ToString("N0", inv)}");
            Console.WriteLine($"HiCI config      M={hc.LocalSlots} K={hc.GlobalSlots} h={hc.NumHeads} bottleneck={hc.BottleneckDim} C={hc.SharedCompressDim} D={hc.GlobalWidth} " +
                              $"({(hc.UseSharedCompressor ? "shared" : "independent")} compressor), causal_mode {HiciConfig.CausalModeName(hc.CausalMode)}, " +
                              (hc.SegmentSize is { } s ? $"segment_size {s}" : $"segment_ratio {hc.SegmentRatio.ToString(inv)}"));
            Console.WriteLine($"HiCI per layer   {n.PerLayer.ToString("N0", inv)} (local constructor {lc.ToString("N0", inv)} + global integrator {gi.ToString("N0", inv)})");
            Console.WriteLine($"HiCI total       {n.Total.ToString("N0", inv)} ({(n.ShareOfModel * 100).ToString("F2", inv)}% of {(n.BaseParameters + n.Total).ToString("N0", inv)} with HiCI; {(n.ShareOfBase * 100).ToString("F2", inv)}% of base)");
            return 0;
        }));
        return cmd;
    }

    private static long Sum(HiciConfig c, int hidden, string prefix) =>
        c.ExpectedShapes(hidden).Where(e => e.Key.StartsWith(prefix, StringComparison.Ordinal)).Sum(e => e.Shape.Aggregate(1L, (a, b) => a * b));
}
