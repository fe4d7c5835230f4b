using System.Diagnostics;
using Hici.Hierarchical;
using Hici.Models;
using static TorchSharp.torch;

namespace Hici.Bench;

/// <summary>
/// <c>--stream</c>: streaming segment-wise HiCI scoring (<see cref="HiciStreamScorer"/>, causal_shift) of
/// random token streams on the 58M bench model: seconds, tokens/s and the process's peak resident memory per
/// length (the peak is reset before each length through /proc/self/clear_refs, so each row is its own peak).
/// </summary>
public static class StreamBench
{
    public static readonly int[] DefaultLengths = { 32768, 65536, 131072 };

    public static void Run(int[] lengths, int segment, ScalarType dtype)
    {
        var hc = HiciBench.Config with { CausalMode = HiciCausalMode.CausalShift, SegmentSize = segment, Forward = HiciForwardKind.Inference };
        var cfg = BenchModel.Config(lengths.Max()) with { Attention = HiciAttentionOptions.Setting(hc) };
        Console.WriteLine($"streaming HiCI: causal_shift, segments of {segment} tokens, {dtype.ToString().ToLowerInvariant()}, M={hc.LocalSlots} K={hc.GlobalSlots}; 58M bench model + HiCI modules, random weights");
        using (var weights = RandomWeights.For(cfg, seed: 0))
        {
            using var lm = CausalLM.Load(cfg, weights, dtype);
            lm.eval();
            Console.WriteLine($"after loading: RSS {Rss("VmRSS") / 1e9:F2} GB");
            HiciStreamScorer.Score(lm, RandomIds(cfg, segment + 17, 1), segment);                // warm-up
            Console.WriteLine();
            Console.WriteLine("| tokens | segments | seconds | tokens/s | µs per token | peak RSS GB |");
            Console.WriteLine("|---:|---:|---:|---:|---:|---:|");
            foreach (int t in lengths)
            {
                var ids = RandomIds(cfg, t, t);
                ResetPeak();
                var sw = Stopwatch.StartNew();
                var r = HiciStreamScorer.Score(lm, ids, segment);
                double s = sw.Elapsed.TotalSeconds;
                Console.WriteLine($"| {t} | {(t + segment - 1) / segment} | {s:F1} | {t / s:F0} | {s / t * 1e6:F0} | {Rss("VmHWM") / 1e9:F2} |");
                if (!double.IsFinite(r.TotalNll)) Console.WriteLine($"  (non-finite NLL at T={t})");
            }
        }
        Console.WriteLine();
        Console.WriteLine("peak RSS = VmHWM of this process (weights, libtorch's allocator caches and the .NET runtime included), reset before each length.");
    }

    private static long[] RandomIds(ModelConfig c, int n, int seed)
    {
        var rng = new Random(seed);
        var ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = rng.Next(c.VocabSize);
        return ids;
    }

    /// <summary>Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).</summary>
    private static void ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static double Rss(string field)
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(field + ":"));
        return line is null ? double.NaN : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024.0;
    }
}
