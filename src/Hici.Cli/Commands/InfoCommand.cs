using System.CommandLine;
using System.Globalization;
using Hici.Hierarchical;
using System.Text.Json;
using Hici.IO;
using Hici.Models;
using TorchSharp;

namespace Hici.Cli.Commands;

/// <summary><c>hici info</c>: architecture, parameter counts and memory estimates from config.json alone;
/// with HiCI flags (or a hici_config.json in the folder) also the HiCI parameters per layer, in total and their share.</summary>
public static class InfoCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "HF model folder (only config.json is needed)", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text" };
        var cmd = new Command("info", "Architecture, parameter counts and memory estimate (weights, KV cache) of a model folder");
        cmd.Options.Add(model);
        cmd.Options.Add(json);
        Common.AddComputeOptions(cmd);
        HiciFlags.AddTo(cmd);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            string dir = pr.GetValue(model)!;
            if (!Directory.Exists(dir)) throw new HiciException($"{dir}: no such model folder");
            var cfg = HfConfigReader.Read(dir);
            var dtype = Common.ParseDtype(pr.GetValue(Common.Dtype)!);
            Common.InitTorch(pr);
            // Built on the meta device: shapes without memory, so this works for a 70B config on a laptop.
            using var lm = CausalLM.Create(cfg, dtype, Common.ParseDevice(pr.GetValue(Common.Device)!));
            var s = ModelSummary.Of(lm);
            var weights = CheckpointFiles(dir);
            var hc = (ModelOptions.AttentionSetting(pr, dir, trainable: null).Options as HiciAttentionOptions)?.Config;
            hc?.ValidateFor(cfg.HiddenSize, "HiCI flags");
            var hn = hc is null ? null : HiciParameterCount.For(cfg, hc);
            if (pr.GetValue(json)) PrintJson(cfg, s, dtype, weights, hc, hn);
            else { PrintText(cfg, s, dtype, weights); if (hc is not null) PrintHici(cfg, hc, hn!); }
            return 0;
        }));
        return cmd;
    }

    private static List<FileInfo> CheckpointFiles(string dir) =>
        new DirectoryInfo(dir).GetFiles("*.safetensors").Where(f => f.Name.StartsWith("model", StringComparison.Ordinal)).OrderBy(f => f.Name).ToList();

    private static string Arch(ModelConfig c) => c.ModelType == "qwen3" ? "Qwen3ForCausalLM" : "LlamaForCausalLM";
    private static string Dt(torch.ScalarType t) => t == torch.ScalarType.BFloat16 ? "bfloat16" : "float32";
    private static string Rope(ModelConfig c) => c.RopeScaling is null ? "default" :
        c.RopeScaling.Type == "llama3"
            ? $"llama3 (factor {c.RopeScaling.Factor}, low {c.RopeScaling.LowFreqFactor}, high {c.RopeScaling.HighFreqFactor}, original {c.RopeScaling.OriginalMaxPositionEmbeddings})"
            : $"{c.RopeScaling.Type} (factor {c.RopeScaling.Factor})";

    private static void PrintText(ModelConfig c, ModelSummary s, torch.ScalarType dtype, List<FileInfo> files)
    {
        Console.WriteLine($"architecture     {Arch(c)} (model_type {c.ModelType})");
        Console.WriteLine($"layers           {c.NumHiddenLayers} × (hidden {c.HiddenSize}, intermediate {c.IntermediateSize})");
        Console.WriteLine($"attention        {c.NumAttentionHeads} heads, {c.NumKeyValueHeads} KV heads ({(c.NumKeyValueGroups == 1 ? "MHA" : $"GQA ×{c.NumKeyValueGroups}")}), head_dim {c.HeadDim}{(c.UsesQkNorm ? ", q/k norm" : "")}{(c.AttentionBias ? ", qkv bias" : "")}");
        Console.WriteLine($"vocabulary       {c.VocabSize}{(c.TieWordEmbeddings ? " (lm_head tied to embeddings)" : "")}");
        Console.WriteLine($"positions        max {c.MaxPositionEmbeddings}, rope_theta {c.RopeTheta}, scaling {Rope(c)}");
        Console.WriteLine($"parameters       {Count(s.Total)} total = embedding {Count(s.Embedding)} + {c.NumHiddenLayers} layers × {Count(s.PerLayer)} + norm {Count(s.FinalNorm)} + lm_head {(c.TieWordEmbeddings ? "tied" : Count(s.LmHead))}");
        Console.WriteLine($"dtype            {Dt(dtype)} (checkpoint torch_dtype {c.TorchDtype})");
        Console.WriteLine($"weights memory   {Bytes(s.WeightBytes)}");
        Console.WriteLine($"KV cache         {Bytes(s.KvCacheBytesPerToken)} per token, {Bytes(s.KvCacheBytesAtMaxPositions)} at {c.MaxPositionEmbeddings} positions (batch 1)");
        Console.WriteLine($"checkpoint       {(files.Count == 0 ? "none (config.json only)" : $"{files.Count} safetensors file{(files.Count == 1 ? "" : "s")}, {Bytes(files.Sum(f => f.Length))}")}");
    }

    private static void PrintHici(ModelConfig mc, HiciConfig hc, HiciParameterCount n)
    {
        long lc = Sum(hc, mc.HiddenSize, "local_constructor."), gi = Sum(hc, mc.HiddenSize, "global_integrator.");
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"HiCI config      M={hc.LocalSlots} K={hc.GlobalSlots} h={hc.NumHeads} bottleneck={hc.BottleneckDim} C={hc.SharedCompressDim} D={hc.GlobalWidth} " +
                          $"({(hc.UseSharedCompressor ? "shared" : "independent")} compressor), causal_mode {HiciConfig.CausalModeName(hc.CausalMode)}, " +
                          (hc.SegmentSize is { } sz ? $"segment_size {sz}" : $"segment_ratio {hc.SegmentRatio.ToString(inv)}"));
        Console.WriteLine($"HiCI per layer   {n.PerLayer.ToString("N0", inv)} (local constructor {lc.ToString("N0", inv)} + global integrator {gi.ToString("N0", inv)})");
        Console.WriteLine($"HiCI total       {n.Total.ToString("N0", inv)} ({(n.ShareOfModel * 100).ToString("F2", inv)}% of {(n.BaseParameters + n.Total).ToString("N0", inv)} with HiCI; {(n.ShareOfBase * 100).ToString("F2", inv)}% of base)");
    }

    private static long Sum(HiciConfig c, int hidden, string prefix) =>
        c.ExpectedShapes(hidden).Where(e => e.Key.StartsWith(prefix, StringComparison.Ordinal)).Sum(e => e.Shape.Aggregate(1L, (a, b) => a * b));

    private static void PrintJson(ModelConfig c, ModelSummary s, torch.ScalarType dtype, List<FileInfo> files, HiciConfig? hc, HiciParameterCount? hn)
    {
        var o = new
        {
            architecture = Arch(c),
            model_type = c.ModelType,
            num_hidden_layers = c.NumHiddenLayers,
            hidden_size = c.HiddenSize,
            intermediate_size = c.IntermediateSize,
            num_attention_heads = c.NumAttentionHeads,
            num_key_value_heads = c.NumKeyValueHeads,
            head_dim = c.HeadDim,
            vocab_size = c.VocabSize,
            tie_word_embeddings = c.TieWordEmbeddings,
            max_position_embeddings = c.MaxPositionEmbeddings,
            rope_scaling = c.RopeScaling?.Type,
            dtype = Dt(dtype),
            parameters = new { embedding = s.Embedding, per_layer = s.PerLayer, layers = s.Layers, final_norm = s.FinalNorm, lm_head = s.LmHead, total = s.Total },
            memory_bytes = new { weights = s.WeightBytes, kv_cache_per_token = s.KvCacheBytesPerToken, kv_cache_at_max_positions = s.KvCacheBytesAtMaxPositions },
            checkpoint_files = files.Select(f => f.Name).ToArray(),
            hici = hn is null ? null : new { per_layer = hn.PerLayer, total = hn.Total, share_of_model = hn.ShareOfModel, share_of_base = hn.ShareOfBase },
        };
        Console.WriteLine(JsonSerializer.Serialize(o, new JsonSerializerOptions { WriteIndented = true }));
    }

    private static string Count(long n) => n >= 1_000_000_000 ? $"{n / 1e9:F2}B" : n >= 1_000_000 ? $"{n / 1e6:F2}M" : n >= 10_000 ? $"{n / 1e3:F1}K" : n.ToString();

    private static string Bytes(long b) => b >= 1L << 30 ? $"{b / (double)(1L << 30):F2} GiB" : b >= 1L << 20 ? $"{b / (double)(1L << 20):F1} MiB" : b >= 1L << 10 ? $"{b / 1024.0:F1} KiB" : $"{b} B";
}
