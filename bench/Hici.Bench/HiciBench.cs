using System.Diagnostics;
using Hici.Hierarchical;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Bench;

/// <summary>
/// <c>--hici</c>: prefill time of full causal attention vs HiCI (training forward, 4 segments, causal_gi — the
/// published Qwen3 setting) on the 58M benchmark model, fp32, with the FLOP ratio a FLOP model predicts.
/// Both models hold the same random weights (HiCI modules included; full attention does not run them).
/// </summary>
public static class HiciBench
{
    /// <summary>The published defaults scaled to the bench model: M=8, K=4, h=8, β=512 (= hidden), C=128.</summary>
    public static readonly HiciConfig Config = new()
    {
        LocalSlots = 8, GlobalSlots = 4, NumHeads = 8, BottleneckDim = 512, SharedCompressDim = 128,
        SegmentRatio = 0.25, CausalMode = HiciCausalMode.CausalGi, Forward = HiciForwardKind.Train,
    };

    public static readonly int[] DefaultLengths = { 2048, 8192, 16384 };

    public static void Run(int[] lengths, double matmulGflops)
    {
        var baseCfg = BenchModel.Config(lengths.Max()) with { Attention = HiciAttentionOptions.Setting(Config, run: false) };
        Console.WriteLine($"HiCI: M={Config.LocalSlots} K={Config.GlobalSlots} h={Config.NumHeads} β={Config.BottleneckDim} C={Config.SharedCompressDim}, " +
                          $"4 segments (ratio 1/4), causal_gi, training forward; fp32; {HiciParameterCount.For(baseCfg, Config).PerLayer / 1e6:F2}M HiCI parameters per layer");
        using var weights = RandomWeights.For(baseCfg, seed: 0);
        using var full = CausalLM.Load(baseCfg, weights, ScalarType.Float32);
        using var hici = CausalLM.Load(baseCfg with { Attention = HiciAttentionOptions.Setting(Config) }, weights, ScalarType.Float32);
        full.eval();
        hici.eval();
        using var noGrad = no_grad();
        Prefill(full, 256);                                   // warm-up (kernels, allocator) for both paths
        Prefill(hici, 256);

        var layer = (HiciAttention)hici.model.layers[0].self_attn;
        var rows = new List<(int T, double Full, double Hici, double FullAttn, double HiciAttn, double MaskedAttn, Flops F)>();
        foreach (int t in lengths)
        {
            // Interleaved and the minimum taken: the machine is shared, so load changes between runs; about
            // 3 minutes in all on 2 cores.
            int reps = t <= 8192 ? 3 : t <= 16384 ? 2 : 1;
            double f = double.MaxValue, h = double.MaxValue, fa = double.MaxValue, ha = double.MaxValue, ma = double.MaxValue;
            for (int i = 0; i < reps; i++)
            {
                f = Math.Min(f, Prefill(full, t));
                h = Math.Min(h, Prefill(hici, t));
                var (a, b, mk) = AttentionOnly(layer, baseCfg, t, masked: t <= 16384);   // the dense mask grows as T²/N
                fa = Math.Min(fa, a);
                ha = Math.Min(ha, b);
                ma = double.IsNaN(mk) ? mk : Math.Min(ma, mk);
            }
            rows.Add((t, f, h, fa, ha, ma, Count(baseCfg, t)));
            Console.WriteLine($"  T={t}: prefill full {f:F2} s, hici {h:F2} s; one layer's attention full {fa * 1000:F0} ms, hici {ha * 1000:F0} ms (masked path {ma * 1000:F0} ms)");
        }

        Console.WriteLine();
        Console.WriteLine("| tokens | prefill full s | prefill HiCI s | prefill ratio HiCI/full | expected whole-prefill FLOP ratio | attention (1 layer) full ms | attention HiCI ms | attention ratio | expected attention-FLOP ratio | HiCI masked path ms (before) | masked ratio |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (t, f, h, fa, ha, ma, fl) in rows)
            Console.WriteLine($"| {t} | {f:F2} | {h:F2} | {h / f:F2} | {fl.TotalRatio:F2} | {fa * 1000:F0} | {ha * 1000:F0} | {ha / fa:F2} | {fl.AttentionRatio:F2} | {(double.IsNaN(ma) ? "–" : $"{ma * 1000:F0}")} | {(double.IsNaN(ma) ? "–" : $"{ma / fa:F2}")} |");
        Console.WriteLine();
        Console.WriteLine($"matmul 1024³ fp32: {matmulGflops:F0} GFLOP/s. Times are the minimum of interleaved runs (the machine is shared).");
        Console.WriteLine("Attention FLOPs: full = causal pairs T(T+1)/2 per head (QKᵀ + PV, 4·d each);");
        Console.WriteLine("HiCI = per segment S queries × (P memory slots + causal tokens), P = K + M (the mask-free causal path skips masked blocks), plus the");
        Console.WriteLine("HiCI modules (local constructor over every token — folded into the h·M slot queries in fp32 —, o_proj, global integrator, memory k/v).");
        Console.WriteLine("Whole prefill adds the per-token weight matmuls (same for both) and one lm_head row.");
    }

    /// <summary>Seconds for one prefill of T random tokens (last-position logits, no cache: HiCI needs the whole sequence).</summary>
    public static double Prefill(CausalLM lm, int t)
    {
        using var scope = NewDisposeScope();
        using var gen = new Generator(); gen.manual_seed(t);
        var ids = randint(0, lm.Config.VocabSize, new long[] { 1, t }, generator: gen);
        var sw = Stopwatch.StartNew();
        var logits = lm.Forward(ids, null, lastOnly: true);
        _ = logits.sum().to(ScalarType.Float32).item<float>();
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Seconds for one layer's attention on random q/k/v: full causal SDPA vs the HiCI core (local constructor,
    /// global integrator, memory k/v through the layer's projections, segmented causal attention).
    /// </summary>
    private static (double Full, double Hici, double Masked) AttentionOnly(HiciAttention layer, ModelConfig c, int t, bool masked)
    {
        using var scope = NewDisposeScope();
        var hidden = randn(1, t, c.HiddenSize);
        var q = randn(1, c.NumAttentionHeads, t, c.HeadDim);
        var k = randn(1, c.NumKeyValueHeads, t, c.HeadDim);
        var v = randn(1, c.NumKeyValueHeads, t, c.HeadDim);
        var sw = Stopwatch.StartNew();
        _ = Attention.CausalAttention(q, k, v).sum().item<float>();
        double full = sw.Elapsed.TotalSeconds;
        sw.Restart();
        _ = layer.Core.TrainingForward(hidden, null, q, k, v, s => layer.k_proj.call(s), s => layer.v_proj.call(s)).sum().item<float>();
        double hici = sw.Elapsed.TotalSeconds;
        // the dense masked path (what every unpadded input ran before the fast path)
        if (!masked) return (full, hici, double.NaN);
        layer.Core.UseFastPath = false;
        sw.Restart();
        _ = layer.Core.TrainingForward(hidden, null, q, k, v, s => layer.k_proj.call(s), s => layer.v_proj.call(s)).sum().item<float>();
        layer.Core.UseFastPath = true;
        return (full, hici, sw.Elapsed.TotalSeconds);
    }

    public sealed record Flops(double FullAttention, double HiciAttention, double Weights)
    {
        public double FullTotal => FullAttention + Weights;
        public double HiciTotal => HiciAttention + Weights;
        public double AttentionRatio => HiciAttention / FullAttention;
        public double TotalRatio => HiciTotal / FullTotal;
    }

    /// <summary>The FLOP model (2 FLOPs per multiply-add), all layers.</summary>
    public static Flops Count(ModelConfig c, long t)
    {
        var hc = HiciAttentionOptions.Of(c)!.Config;
        double h = c.HiddenSize, d = c.HeadDim, nq = c.NumAttentionHeads, nkv = c.NumKeyValueHeads, layers = c.NumHiddenLayers;
        double m = hc.LocalSlots, k = hc.GlobalSlots, beta = hc.BottleneckDim, cc = hc.SharedCompressDim, dg = hc.GlobalWidth;
        long s = (long)(t * hc.SegmentRatio), n = t / s;
        double p = k + m;
        double pairFlops = 4.0 * nq * d;                                          // QKᵀ and PV per (query, key) pair
        double fullAttn = pairFlops * t * (t + 1) / 2.0;
        double segAttn = pairFlops * n * s * (p + (s + 1) / 2.0);                  // causal fast path: memory + causal tokens
        // fp32 folds the token k/v projections into the h·M slot queries (LocalConstructor.Folded) when h·M < β
        double tokenWidth = hc.NumHeads * m < beta ? hc.NumHeads * m : beta;
        double lc = 2.0 * m * h * beta                                           // slot queries
                  + 2.0 * 2.0 * t * h * tokenWidth                                // k, v of every token (folded: scores and sums in H)
                  + (tokenWidth < beta ? 2.0 * 2.0 * n * m * h * beta : 2.0 * 2.0 * m * t * beta)   // per-head W_k/W_v products, or slot scores and sums
                  + 2.0 * n * m * beta * h;                                       // o_proj
        double rows = n;                                                          // causal_gi: one G per prefix
        double gi = rows * (5 * (2.0 * h * cc + 2.0 * cc * dg)                    // shared compressor + stat_expand
                  + 2 * 5 * 2.0 * dg * dg                                        // k, v of the 5 statistics
                  + 2 * 2.0 * k * dg * dg                                        // q of the K queries, o_proj
                  + 2.0 * 2 * k * 5 * dg                                         // scores and weighted sum
                  + 2.0 * k * dg * h);                                           // expand
        double memKv = 2.0 * 2.0 * n * p * h * nkv * d;                           // memory through the host k/v_proj
        double weights = t * 2.0 * (h * nq * d * 2 + h * nkv * d * 2 + 3 * h * c.IntermediateSize);
        return new Flops(layers * fullAttn, layers * (segAttn + lc + gi + memKv), layers * weights + 2.0 * h * c.VocabSize);
    }
}
