using System.Diagnostics;
using Hici.DualChunk;
using Hici.Models;
using static TorchSharp.torch;

namespace Hici.Bench;

/// <summary>
/// <c>--dca</c>: prefill time of dual chunk attention (<c>--attention chunk</c>, Qwen3 version) vs full causal
/// attention on the 58M bench model, per dtype, plus one layer's attention alone: full causal SDPA vs DCA's
/// chunk loop with its partial attentions on libtorch's flash kernel (with log-sum-exp) and, as before, on the
/// float32 tiles. Minimum of interleaved runs.
/// </summary>
public static class DcaBench
{
    public static readonly int[] DefaultLengths = { 2048, 4096, 8192, 16384 };

    public static void Run(int[] lengths, int pretraining, IEnumerable<ScalarType> dtypes)
    {
        var baseCfg = BenchModel.Config(lengths.Max());
        var options = new DualChunkOptions { PretrainingLength = pretraining };
        var settings = options.Resolve(baseCfg);
        Console.WriteLine($"DCA: Qwen3 version, {settings}; 58M bench model, random weights");
        var rows = new List<string>();
        foreach (var dtype in dtypes)
        {
            string dt = dtype == ScalarType.BFloat16 ? "bf16" : "fp32";
            using var weights = RandomWeights.For(baseCfg, seed: 0);
            using var full = CausalLM.Load(baseCfg, weights, dtype);
            using var dca = CausalLM.Load(baseCfg with { Attention = DualChunkImplementation.Setting(options) }, weights, dtype);
            full.eval();
            dca.eval();
            using var noGrad = no_grad();
            HiciBench.Prefill(full, 256);
            HiciBench.Prefill(dca, 256);
            using var core = new DualChunkCore(baseCfg, settings);
            foreach (int t in lengths)
            {
                int reps = t <= 8192 ? 3 : 2;
                double f = double.MaxValue, c = double.MaxValue, fa = double.MaxValue, ca = double.MaxValue, ta = double.MaxValue;
                for (int i = 0; i < reps; i++)
                {
                    f = Math.Min(f, HiciBench.Prefill(full, t));
                    c = Math.Min(c, HiciBench.Prefill(dca, t));
                    var (a, b, tiles) = AttentionOnly(core, baseCfg, t, dtype, withTiles: i == 0);
                    fa = Math.Min(fa, a);
                    ca = Math.Min(ca, b);
                    ta = Math.Min(ta, tiles);
                }
                long chunks = (t + settings.ChunkLen - 1) / settings.ChunkLen;
                Console.WriteLine($"  {dt} T={t}: prefill full {f:F2} s, chunk {c:F2} s; one layer's attention full {fa * 1000:F0} ms, chunk {ca * 1000:F0} ms (tiles {ta * 1000:F0} ms)");
                rows.Add($"| {dt} | {t} | {chunks} | {f:F2} | {c:F2} | {c / f:F2} | {fa * 1000:F0} | {ca * 1000:F0} | {ca / fa:F2} | {ta * 1000:F0} | {ta / fa:F2} |");
            }
        }
        Console.WriteLine();
        Console.WriteLine("| dtype | tokens | chunks | prefill full s | prefill DCA s | ratio DCA/full | attention (1 layer) full ms | DCA ms | ratio | DCA on fp32 tiles ms (before) | ratio |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows) Console.WriteLine(r);
        Console.WriteLine();
        Console.WriteLine("Times are the minimum of interleaved runs (tiles: one run). DCA attends to every earlier key, as full attention does,");
        Console.WriteLine("as three partial attentions per chunk (intra causal, successive, inter) merged by their log-sum-exps.");
    }

    /// <summary>Seconds for one layer's attention on random q/k/v: full causal SDPA, DCA (flash parts), DCA (fp32 tiles, when asked).</summary>
    private static (double Full, double Dca, double Tiles) AttentionOnly(DualChunkCore core, ModelConfig c, int t, ScalarType dtype, bool withTiles)
    {
        using var scope = NewDisposeScope();
        var q = randn(1, c.NumAttentionHeads, t, c.HeadDim).to(dtype);
        var k = randn(1, c.NumKeyValueHeads, t, c.HeadDim).to(dtype);
        var v = randn(1, c.NumKeyValueHeads, t, c.HeadDim).to(dtype);
        double Time(Func<Tensor> f)
        {
            using var s = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            _ = f().sum().to(ScalarType.Float32).item<float>();
            return sw.Elapsed.TotalSeconds;
        }
        double full = Time(() => Attention.CausalAttention(q, k, v));
        double dca = Time(() => core.Attend(q, k, v, 0, null, null));
        double tiles = double.MaxValue;
        if (withTiles)
        {
            core.UseFlash = false;
            tiles = Time(() => core.Attend(q, k, v, 0, null, null));
            core.UseFlash = true;
        }
        return (full, dca, tiles);
    }
}
