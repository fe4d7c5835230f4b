using System.Diagnostics;
using Hici.Hierarchical;
using Hici.Lora;
using Hici.Models;
using Hici.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Bench;

/// <summary>
/// <c>--train</c>: one training step of the 58M bench model at 2K tokens, as `hici train` runs it (the trainer's
/// components: LoRA r 8 / α 16 on every q/k/v/o, frozen base, <see cref="CausalLoss"/>, backward,
/// <see cref="MasterWeights"/> (bf16: fp32 masters and moments), the global clip, AdamW), split into forward (incl.
/// the chunked loss, which forms the logits' gradient on the spot), backward and optimizer; `full` attention and
/// `hici` (the <see cref="HiciBench.Config"/> modules trained too, their projections with LoRA); fp32 and bf16. Beside
/// it the same step in PyTorch (full attention, LoRA on q/k/v/o, HF's loss over full logits, AdamW).
/// </summary>
public static class TrainBench
{
    public const int LoraRank = 8;
    public const double LoraAlpha = 16;

    public sealed record Row(string DType, string Attention, int Tokens, double Fwd, double Bwd, double Opt, double Flops, long Trainable)
    {
        public double Step => Fwd + Bwd + Opt;
        public double TokS => Tokens / Step;
    }

    public static void Run(BenchArgs o)
    {
        int t = o.LengthsGiven ? o.Lengths[0] : 2048;
        const int steps = 3;
        var cfg = BenchModel.Config(t);
        Console.WriteLine($"training step: {BenchModel.Parameters(cfg) / 1e6:F1}M Qwen3-shaped random model, {t} tokens × batch 1, LoRA r {LoraRank} α {LoraAlpha} on q/k/v/o " +
                          $"(hici: + HiCI modules M={HiciBench.Config.LocalSlots} K={HiciBench.Config.GlobalSlots}, 4 segments, causal_gi), AdamW, clip 1.0; median of {steps} steps after a warm-up step");
        var rows = new List<Row>();
        var gflops = new Dictionary<string, double>();
        foreach (var dt in o.DTypes)
        {
            var dtype = dt == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
            gflops[dt] = Matmul.Gflops(1024, dtype);
            Console.WriteLine($"matmul 1024³ {dt}: {gflops[dt]:F0} GFLOP/s");
            foreach (var (name, shape) in Gemms(cfg, t))
            {
                double g = Gemm(shape.M, shape.K, shape.N, name == "lm_head (loss, fp32)" ? ScalarType.Float32 : dtype);
                Console.WriteLine($"  GEMM {name} [{shape.M}×{shape.K}]·[{shape.K}×{shape.N}]: {g:F0} GFLOP/s = {g / gflops[dt] * 100:F0}% of the {dt} matmul rate");
            }
            foreach (var hici in new[] { false, true })
            {
                var r = Measure(cfg, dtype, dt, hici, t, steps);
                rows.Add(r);
                Console.WriteLine($"  {dt} {r.Attention}: forward {r.Fwd:F2} s, backward {r.Bwd:F2} s, optimizer {r.Opt * 1000:F0} ms → {r.TokS:F0} tokens/s ({r.Flops / r.Step / 1e9:F0} GFLOP/s), {r.Trainable:N0} trainable");
            }
        }

        Peer.TrainResult? peer = o.NoPeer ? null : Peer.RunTrain(o, cfg, t, steps, LoraRank, LoraAlpha);
        if (!o.NoPeer && peer is null) Console.WriteLine("PyTorch peer: not run (needs the PyTorch 2.6 chroot /srv/peer-trixie, or /usr/bin/python3 with torch)");

        Console.WriteLine();
        Console.WriteLine($"PyTorch column: {peer?.Label ?? "none"}");
        Console.WriteLine("| dtype | attention | tokens | forward s | backward s | optimizer ms | step s | tokens/s | GFLOP/s | share of matmul rate | PyTorch fwd / bwd / opt s | PyTorch tokens/s | ratio (ours/PyTorch) |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
        {
            string p = "– | – | –";
            if (r.Attention == "full" && peer is not null && peer.Rows.TryGetValue(r.DType, out var pr))
            {
                double ps = pr.Fwd + pr.Bwd + pr.Opt;
                p = $"{pr.Fwd:F2} / {pr.Bwd:F2} / {pr.Opt:F2} | {r.Tokens / ps:F0} | {r.TokS / (r.Tokens / ps):F2}×";
            }
            double rate = r.Flops / r.Step / 1e9;
            Console.WriteLine($"| {r.DType} | {r.Attention} | {r.Tokens} | {r.Fwd:F2} | {r.Bwd:F2} | {r.Opt * 1000:F0} | {r.Step:F2} | {r.TokS:F0} | {rate:F0} | {rate / gflops[r.DType] * 100:F0}% | {p} |");
        }
        Console.WriteLine();
        Console.WriteLine("FLOP model of a step (2 per multiply-add): the per-token weight matmuls twice (forward and the input gradient; the base");
        Console.WriteLine("is frozen), attention and the HiCI modules three times (forward, and a backward of twice the forward), lm_head twice over");
        Console.WriteLine("all rows (logits and the hidden states' gradient); LoRA's small matmuls are not counted. Both sides do the same work;");
        Console.WriteLine("PyTorch forms the full [T, vocab] logits (HF's loss), ours in 2048-row chunks in fp32 (in bf16 runs too, as HF's .float()).");
        if (peer?.Gflops is { Count: > 0 } pg)
            Console.WriteLine("PyTorch's matmul 1024³: " + string.Join(", ", pg.Select(kv => $"{kv.Key} {kv.Value:F0} GFLOP/s")));
    }

    private static IEnumerable<(string Name, (int M, int K, int N) Shape)> Gemms(ModelConfig c, int t) => new[]
    {
        ("MLP gate/up", (t, c.HiddenSize, c.IntermediateSize)),
        ("MLP down", (t, c.IntermediateSize, c.HiddenSize)),
        ("q_proj", (t, c.HiddenSize, c.NumAttentionHeads * c.HeadDim)),
        ("lm_head (loss, fp32)", (t, c.HiddenSize, c.VocabSize)),
    };

    /// <summary>GFLOP/s of x[M,K]·Wᵀ (F.linear, as the model runs it), best of a few runs.</summary>
    private static double Gemm(int m, int k, int n, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var x = randn(m, k).to(dtype);
        var w = randn(n, k).to(dtype);
        nn.functional.linear(x, w).Dispose();
        double best = double.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            var sw = Stopwatch.StartNew();
            nn.functional.linear(x, w).Dispose();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return 2.0 * m * k * n / best / 1e9;
    }

    private static Row Measure(ModelConfig baseCfg, ScalarType dtype, string dt, bool hici, int t, int steps)
    {
        var cfg = hici ? baseCfg with { Attention = HiciAttentionOptions.Setting(HiciBench.Config) } : baseCfg;
        using var lm = RandomWeights.Model(cfg, dtype, seed: 0);
        LoraApplier.Apply(lm, new LoraConfig { R = LoraRank, Alpha = LoraAlpha });
        var trainable = TrainingModel.SelectTrainable(lm, hici ? new[] { "local_constructor", "global_integrator" } : Array.Empty<string>());
        lm.train();
        using var masters = new MasterWeights(trainable);
        using var opt = optim.AdamW(masters.Masters, 1e-4, TrainOptions.AdamBeta1, TrainOptions.AdamBeta2, TrainOptions.AdamEps, 0);
        using var gen = new Generator(); gen.manual_seed(1);
        using var ids = randint(0, cfg.VocabSize, new long[] { 1, t }, generator: gen);
        var fwd = new List<double>(); var bwd = new List<double>(); var upd = new List<double>();
        for (int s = 0; s <= steps; s++)                              // step 0 warms up
        {
            using var scope = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            var res = CausalLoss.Compute(lm, lm.Hidden(ids), ids);
            _ = res.Loss.item<float>();
            double f = sw.Elapsed.TotalSeconds;
            sw.Restart();
            res.Loss.backward();
            double b = sw.Elapsed.TotalSeconds;
            sw.Restart();
            masters.GradientsToMasters();
            Trainer.ClipNorm(masters.Masters, 1.0);
            opt.step();
            masters.MastersToModel();
            masters.ZeroGrad();
            double u = sw.Elapsed.TotalSeconds;
            if (s > 0) { fwd.Add(f); bwd.Add(b); upd.Add(u); }
        }
        return new Row(dt, hici ? "hici" : "full", t, Median(fwd), Median(bwd), Median(upd), StepFlops(cfg, t, hici), masters.Items.Sum(i => i.Master.numel()));
    }

    private static double Median(List<double> v) { v.Sort(); return v[v.Count / 2]; }

    /// <summary>The FLOP model printed under the table.</summary>
    public static double StepFlops(ModelConfig c, long t, bool hici)
    {
        var withHici = c.Attention.Options is HiciAttentionOptions ? c : c with { Attention = HiciAttentionOptions.Setting(HiciBench.Config) };
        var f = HiciBench.Count(withHici, t);
        double head = 2.0 * c.HiddenSize * c.VocabSize;
        double weights = f.Weights - head;                                       // Count adds one lm_head row
        return 2 * weights + 3 * (hici ? f.HiciAttention : f.FullAttention) + 2 * head * t;
    }
}
