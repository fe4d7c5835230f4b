using System.CommandLine;
using System.Text.Json.Nodes;
using Hici.I3;
using TorchSharp;

namespace Hici.Cli.Commands;

public static class I3InfoCommand
{
    public static Command Build()
    {
        var preset = I3Command.Preset();
        var model = new Option<string?>("--model") { Description = "An i3 model folder (config.json with model_type i3)" };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table" };
        var cmd = new Command("info", "Architecture and parameter count of an i3 preset or model folder (built on the meta device: nothing is allocated)");
        cmd.Options.Add(preset); cmd.Options.Add(model); cmd.Options.Add(json);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            var p = pr.GetValue(preset); var m = pr.GetValue(model);
            if ((p is null) == (m is null)) throw new HiciException("i3 info: give exactly one of --preset or --model");
            var cfg = p is not null ? I3Config.Preset(p) : I3Config.Load(m!);
            long built;
            using (var meta = new I3Model(cfg, torch.META)) built = meta.ParameterCount;
            long analytic = cfg.CountParameters();
            if (built != analytic) throw new InvalidOperationException($"analytic count {analytic} != module count {built}");
            var o = pr.InvocationConfiguration.Output;
            if (pr.GetValue(json))
            {
                var node = JsonNode.Parse(cfg.ToJson())!.AsObject();
                node["parameters"] = built;
                o.WriteLine(node.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
                return 0;
            }
            o.WriteLine($"i3 {(p ?? m)}: {cfg.NRwkvLayers} RWKV-4 + {cfg.NAttnLayers} attention layers, d {cfg.DModel}, vocab {cfg.VocabSize}");
            o.WriteLine($"  kernel window (chunk) {cfg.KernelWindow}, {cfg.LatentsPerChunk} latents/chunk, history ≤ {cfg.MaxCompressedChunks} chunks → compressed history spans {(long)cfg.KernelWindow * cfg.MaxCompressedChunks} tokens before the current chunk");
            o.WriteLine($"  attention heads {cfg.NHeadsRequested} requested → {cfg.Heads} (head dim {cfg.DModel / cfg.Heads}); compressor heads {cfg.CompressorHeadsRequested} → {cfg.CompressorHeads}");
            o.WriteLine($"  RWKV block {cfg.RwkvBlockParameters:N0}, attention block {cfg.AttnBlockParameters:N0}, compressor {cfg.CompressorParameters:N0}, age embedding {cfg.AgeParameters:N0}");
            o.WriteLine($"  parameters: {built:N0} ({built * 4.0 / (1 << 20):F1} MiB in float32)");
            return 0;
        }));
        return cmd;
    }
}
