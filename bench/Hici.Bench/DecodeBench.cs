using System.Diagnostics;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Bench;

/// <summary>
/// `--decode`: one-token decode steps of the bench model at several context lengths (the KV cache is marked
/// filled, so no prefill is timed): weights in the column layout (the default, <see cref="WeightLayout"/>) and in
/// HF's row layout, both with packed q/k/v + gate/up, and row without packing, interleaved step by step. Reports the
/// median and best step, the bytes a step must read (weights + KV) per second, and that rate's share of the
/// measured copy bandwidth (the floor a bandwidth-bound decode can approach).
/// </summary>
public static class DecodeBench
{
    public static readonly int[] DefaultLengths = { 1024, 4096, 16384 };

    public static void Run(int[] lengths, string[] dtypes, int steps)
    {
        double copy = Matmul.CopyGBs();
        Console.WriteLine($"memory copy (256 MiB): {copy:F1} GB/s (read + write)");
        Console.WriteLine("| dtype | context | weights | median ms/token | best ms/token | GB/s read (median) | share of copy GB/s |");
        Console.WriteLine("|---|---:|---|---:|---:|---:|---:|");
        var cfg = BenchModel.Config(lengths.Max() + steps + 2);
        foreach (var dt in dtypes)
        {
            var dtype = dt == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
            using var column = RandomWeights.Model(cfg, dtype, seed: 0);
            using var row = RandomWeights.Model(cfg, dtype, seed: 0);
            column.SetWeightLayout(WeightLayout.Kind.Column);
            row.SetWeightLayout(WeightLayout.Kind.Row);
            using var _ = torch.no_grad();
            foreach (var s in lengths)
            {
                var variants = new (string Name, CausalLM Model, bool Packed)[] { ("column, packed", column, true), ("row, packed", row, true), ("row, separate", row, false) };
                var caches = variants.Select(v => v.Model.NewCache(s + steps + 2)).ToArray();
                foreach (var c in caches) c.Advance(s);
                var times = variants.Select(_ => new List<double>()).ToArray();
                using var tok = torch.tensor(new long[] { 7 }).view(1, 1);
                for (int i = -2; i < steps; i++)                                  // two warm-up steps each
                    for (int v = 0; v < variants.Length; v++)
                    {
                        variants[v].Model.PackProjections(variants[v].Packed);
                        var sw = Stopwatch.StartNew();
                        using var logits = variants[v].Model.Forward(tok, caches[v], lastOnly: true);
                        if (i >= 0) times[v].Add(sw.Elapsed.TotalSeconds);
                    }
                row.PackProjections();
                double bytes = BenchModel.DecodeBytes(cfg, s + steps / 2, dtype);
                for (int v = 0; v < variants.Length; v++)
                {
                    var t = times[v].Order().ToArray();
                    double med = t[t.Length / 2];
                    Console.WriteLine($"| {dt} | {s} | {variants[v].Name} | {med * 1000:F2} | {t[0] * 1000:F2} | {bytes / med / 1e9:F1} | {bytes / med / 1e9 / copy * 100:F0}% |");
                }
                foreach (var c in caches) c.Dispose();
            }
        }
    }
}
