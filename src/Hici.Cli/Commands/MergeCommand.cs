using System.CommandLine;
using System.Globalization;
using Hici.IO;
using Hici.Lora;
using TorchSharp;

namespace Hici.Cli.Commands;

/// <summary><c>hici merge</c>: base + PEFT adapter (+ trainable_params) → a standalone HF folder (see <see cref="LoraMerge"/>).</summary>
public static class MergeCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "Base HF model folder (config.json + safetensors)", Required = true };
        var adapter = new Option<string>("--adapter") { Description = "PEFT adapter folder (adapter_config.json + adapter_model.safetensors or .bin)", Required = true };
        var trainable = new Option<string?>("--trainable") { Description = "trainable_params.bin (or .safetensors): embed/norm overrides and HiCI weights" };
        var output = new Option<string>("--output") { Description = "New folder to write (must not exist or be empty)", Required = true };
        var context = new Option<int?>("--context-size") { Description = "Write rope_scaling for this context (Qwen3: exact ratio; Llama: rounded up)" };
        var dtype = new Option<string>("--dtype") { Description = "Output dtype: auto (the base config's torch_dtype) | fp32 | bf16 | fp16", DefaultValueFactory = _ => "auto" };
        var strict = new Option<bool>("--strict") { Description = "Refuse adapters that leave LoRA layers uncovered, carry non-LoRA keys, or have HiCI LoRA without HiCI weights" };
        var hiciConfig = new Option<string?>("--hici-config") { Description = "hici_config.json to write beside hici.safetensors (default: the one in the --adapter folder, e.g. a training checkpoint's)" };
        var shard = new Option<string>("--max-shard-size") { Description = "Largest model.safetensors shard, e.g. 5GB, 500MB", DefaultValueFactory = _ => "5GB" };
        var cmd = new Command("merge", "Merge a LoRA adapter (and trainable params) into the base weights and write an HF folder");
        foreach (var o in new Option[] { model, adapter, trainable, output, context, dtype, strict, hiciConfig, shard, Common.Threads }) cmd.Options.Add(o);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            // a training checkpoint (OUTPUT/checkpoint-N) holds its HiCI config beside the adapter: take it as it is
            var hiciPath = pr.GetValue(hiciConfig) ?? BesideAdapter(pr.GetValue(adapter)!);
            var options = new MergeOptions
            {
                ContextSize = pr.GetValue(context),
                DType = ParseDtype(pr.GetValue(dtype)!),
                Strict = pr.GetValue(strict),
                HiciConfigPath = hiciPath,
                MaxShardBytes = ParseSize(pr.GetValue(shard)!),
            };
            if (options.ContextSize is <= 0) throw new HiciException($"--context-size must be positive (got {options.ContextSize})");
            Common.InitTorch(pr);
            using var overlay = pr.GetValue(trainable) is { } t ? OpenTrainable(t) : null;
            var r = LoraMerge.MergeAndSave(pr.GetValue(model)!, pr.GetValue(adapter)!, overlay, pr.GetValue(output)!, options: options);
            foreach (var line in r.Adapter.Lines()) Console.WriteLine(line);
            if (pr.GetValue(hiciConfig) is null && hiciPath is not null && r.HiciTensors.Count > 0) Console.WriteLine($"HiCI config {hiciPath} (from the adapter folder)");
            if (r.Overridden.Count > 0) Console.WriteLine($"overrides   {r.Overridden.Count} tensors from the trainable params");
            if (r.HiciTensors.Count > 0)
                Console.WriteLine($"HiCI        {r.HiciTensors.Count} tensors → {LoraMerge.HiciWeightsName}, LoRA merged into {r.HiciLoraMerged.Count} projections");
            foreach (var n in r.Notes) Console.WriteLine($"note        {n}");
            Console.WriteLine($"wrote       {r.OutputDir}");
            return 0;
        }));
        return cmd;
    }

    private static string? BesideAdapter(string adapterDir)
    {
        var p = Path.Combine(adapterDir, LoraMerge.HiciConfigName);
        return Directory.Exists(adapterDir) && File.Exists(p) ? p : null;
    }

    private static IWeightSource OpenTrainable(string path) =>
        path.EndsWith(".safetensors", StringComparison.Ordinal) ? SafeTensorsWeightSource.Open(path) : TorchPickleWeightSource.Open(path);

    private static torch.ScalarType? ParseDtype(string s) => s.ToLowerInvariant() switch
    {
        "auto" => null,
        "fp32" or "float32" => torch.ScalarType.Float32,
        "bf16" or "bfloat16" => torch.ScalarType.BFloat16,
        "fp16" or "float16" => torch.ScalarType.Float16,
        _ => throw new HiciException($"--dtype: '{s}' is not supported (auto, fp32, bf16 or fp16)"),
    };

    /// <summary>"5GB", "500MB", "64KB" (decimal units, as HF's max_shard_size) or a byte count.</summary>
    public static long ParseSize(string s)
    {
        var t = s.Trim().ToUpperInvariant();
        (string Suffix, long Mult)[] units = { ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000), ("B", 1) };
        foreach (var (suffix, mult) in units)
            if (t.EndsWith(suffix, StringComparison.Ordinal) && double.TryParse(t[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0)
                return (long)(v * mult);
        if (long.TryParse(t, out var n) && n > 0) return n;
        throw new HiciException($"--max-shard-size: '{s}' is not a size (e.g. 5GB, 500MB)");
    }
}
