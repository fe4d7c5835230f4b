using System.CommandLine;
using System.Diagnostics;
using Hici.I3;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Cli.Commands;

/// <summary>
/// Training throughput (forward + backward of one micro-step, tokens/s) of the i3 RWKV stack with the block-parallel WKV,
/// the same with the per-token recurrence, and an attention-only model of the same width, depth and vocabulary.
/// </summary>
public static class I3BenchCommand
{
    public static Command Build()
    {
        var preset = I3Command.Preset();
        var batch = new Option<int>("--batch") { Description = "Sequences per micro-step", DefaultValueFactory = _ => 4 };
        var block = new Option<int?>("--wkv-block") { Description = "WKV block length Q (default: the preset's)" };
        var steps = new Option<int>("--steps") { Description = "Timed micro-steps per variant (after one warm-up)", DefaultValueFactory = _ => 3 };
        var cmd = new Command("bench", "Training tokens/s: i3 with block-parallel WKV vs per-token WKV vs an attention-only model of the same size (random weights)");
        cmd.Options.Add(preset); cmd.Options.Add(block); cmd.Options.Add(batch); cmd.Options.Add(steps); cmd.Options.Add(Common.Threads);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            Common.InitTorch(pr);
            var cfg = I3Config.Preset(pr.GetValue(preset) ?? "small");
            if (pr.GetValue(block) is int q) cfg = cfg with { WkvBlock = q };
            int B = pr.GetValue(batch), n = pr.GetValue(steps);
            if (B < 1 || n < 1) throw new HiciException("--batch and --steps must be positive");
            var attnOnly = cfg with { NRwkvLayers = 0, NAttnLayers = cfg.NRwkvLayers + cfg.NAttnLayers };
            var o = pr.InvocationConfiguration.Output;
            o.WriteLine($"preset {pr.GetValue(preset) ?? "small"}: batch {B} × {cfg.KernelWindow} tokens, {torch.get_num_threads()} threads, memory gate 0 (no history), fp32, CPU");
            o.WriteLine($"{"variant",-34} {"params",12} {"ms/step",10} {"tokens/s",10} {"vs attention",13}");
            double Run(I3Config c, bool? chunked)
            {
                using var m = new I3Model(c);
                m.Initialize(1);
                m.train();
                var ids = torch.randint(0, c.VocabSize, [B, c.KernelWindow + 1], generator: new torch.Generator(1));
                double best = double.MaxValue;
                for (int i = 0; i <= n; i++)
                {
                    var sw = Stopwatch.StartNew();
                    using (var scope = torch.NewDisposeScope())
                    {
                        m.zero_grad();
                        var x = m.Embed(ids.narrow(1, 0, c.KernelWindow), 0);
                        var fresh = Enumerable.Range(0, c.NRwkvLayers).Select(_ => RwkvLayerState.Fresh(B, c.DModel, m.DType, m.Device)).ToArray();
                        if (c.NRwkvLayers > 0) x = m.RunRwkv(x, fresh, chunked ?? true).X;
                        var logits = m.LmHead(m.Normalize(m.RunAttention(x, null, 0)));
                        nn.functional.cross_entropy(logits.reshape(-1, c.VocabSize), ids.narrow(1, 1, c.KernelWindow).reshape(-1)).backward();
                    }
                    if (i > 0) best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
                }
                ids.Dispose();
                return best;
            }
            double attn = Run(attnOnly, null);
            void Row(string name, I3Config c, double ms) =>
                o.WriteLine($"{name,-34} {c.CountParameters(),12:N0} {ms,10:F1} {B * c.KernelWindow / (ms / 1000),10:F0} {attn / ms,12:F2}×");
            Row($"attention-only ({attnOnly.NAttnLayers} layers)", attnOnly, attn);
            Row($"i3, block-parallel WKV (Q={cfg.WkvBlock})", cfg, Run(cfg, true));
            Row("i3, per-token WKV recurrence", cfg, Run(cfg, false));
            o.WriteLine("(best of the timed steps; the machine's other load adds noise)");
            return 0;
        }));
        return cmd;
    }
}
