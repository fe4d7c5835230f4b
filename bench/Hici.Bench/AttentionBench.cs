using System.Diagnostics;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Bench;

/// <summary>
/// `--attention`: one layer's causal prefill attention (bench model heads: 8 query, 4 KV, head_dim 64) through
/// libtorch's SDPA (flash kernel) and through <see cref="BlockedAttention"/> at several block sizes, per dtype
/// and length: min of interleaved rounds, GFLOP/s of the causal work, and the largest deviation of each from a
/// float64 reference. This is what <see cref="BlockedAttention.Preferred"/> is chosen from.
/// </summary>
public static class AttentionBench
{
    public static readonly int[] DefaultLengths = { 256, 512, 2048, 8192 };

    public static void Run(int[] lengths, string[] dtypes, double seconds = 6)
    {
        foreach (var dt in dtypes) Console.WriteLine($"matmul 1024³ {dt}: {Matmul.Gflops(1024, dt == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32):F0} GFLOP/s");
        Console.WriteLine("causal attention, 1 layer: 8 query heads, 4 KV heads, head_dim 64 (min of interleaved rounds)");
        Console.WriteLine("| dtype | tokens | variant | ms | CPU ms (all threads) | GFLOP/s | max abs diff vs fp64 |");
        Console.WriteLine("|---|---:|---|---:|---:|---:|---:|");
        foreach (var dt in dtypes)
        {
            var dtype = dt == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
            foreach (var t in lengths)
            {
                using var scope = NewDisposeScope();
                using var gen = new Generator(); gen.manual_seed(t);
                var q64 = randn(new long[] { 1, 8, t, 64 }, ScalarType.Float64, generator: gen);
                var k64 = randn(new long[] { 1, 4, t, 64 }, ScalarType.Float64, generator: gen);
                var v64 = randn(new long[] { 1, 4, t, 64 }, ScalarType.Float64, generator: gen);
                var (q, k, v) = (q64.to(dtype), k64.to(dtype), v64.to(dtype));
                // the reference sees the same (rounded) inputs, so the diff is the kernel's own error
                var reference = t <= 4096 ? Attention.SdpaCausalAttention(q.to(ScalarType.Float64), k.to(ScalarType.Float64), v.to(ScalarType.Float64)) : null;
                var variants = new List<(string Name, Func<Tensor> Run)>
                {
                    ("SDPA (flash)", () => Attention.SdpaCausalAttention(q, k, v)),
                };
                foreach (var rows in new long[] { 64, 128, 256 })
                    if (rows <= t) variants.Add(($"blocked {rows}", () => BlockedAttention.Causal(q, k, v, rows)));
                if (dtype != ScalarType.Float32)
                {
                    variants.Add(("blocked 128 in fp32", () => { using var s = NewDisposeScope(); return BlockedAttention.Causal(q.to(ScalarType.Float32), k.to(ScalarType.Float32), v.to(ScalarType.Float32), 128).to(dtype).MoveToOuterDisposeScope(); }));
                    variants.Add(("SDPA in fp32", () => { using var s = NewDisposeScope(); return Attention.SdpaCausalAttention(q.to(ScalarType.Float32), k.to(ScalarType.Float32), v.to(ScalarType.Float32)).to(dtype).MoveToOuterDisposeScope(); }));
                }
                var best = variants.Select(_ => double.MaxValue).ToArray();
                var bestCpu = variants.Select(_ => double.MaxValue).ToArray();
                var diff = new double[variants.Count];
                for (int i = 0; i < variants.Count; i++)
                {
                    using var o = variants[i].Run();
                    diff[i] = reference is null ? double.NaN : (o.to(ScalarType.Float64) - reference).abs().max().item<double>();
                }
                using var proc = Process.GetCurrentProcess();
                var sw = Stopwatch.StartNew();
                int rounds = 0;
                while (rounds < 3 || (sw.Elapsed.TotalSeconds < seconds && rounds < 15))
                {
                    for (int i = 0; i < variants.Count; i++)
                    {
                        var cpu0 = proc.TotalProcessorTime;
                        var s = Stopwatch.StartNew();
                        variants[i].Run().Dispose();
                        best[i] = Math.Min(best[i], s.Elapsed.TotalSeconds);
                        proc.Refresh();
                        bestCpu[i] = Math.Min(bestCpu[i], (proc.TotalProcessorTime - cpu0).TotalSeconds);
                    }
                    rounds++;
                }
                double flops = 4.0 * 8 * 64 * (t * (t + 1) / 2.0);
                for (int i = 0; i < variants.Count; i++)
                    Console.WriteLine($"| {dt} | {t} | {variants[i].Name} | {best[i] * 1000:F2} | {bestCpu[i] * 1000:F1} | {flops / best[i] / 1e9:F0} | {(double.IsNaN(diff[i]) ? "–" : diff[i].ToString("E1"))} |");
            }
        }
    }
}
