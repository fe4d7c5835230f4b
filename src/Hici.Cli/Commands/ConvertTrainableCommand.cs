using System.CommandLine;
using Hici.Hierarchical;
using Hici.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Cli.Commands;

/// <summary>
/// <c>hici convert-trainable</c>: a trainable-parameter file (embeddings, norms, HiCI modules) between the
/// reference's <c>trainable_params.bin</c> (PyTorch zip pickle, so a DeepSpeed run of the reference can continue
/// from it) and our safetensors. Keys come out normalised: legacy HiCI prefixes renamed, PEFT prefixes dropped.
/// </summary>
public static class ConvertTrainableCommand
{
    public static Command Build()
    {
        var input = new Option<string>("--input") { Description = "trainable_params.bin (PyTorch zip pickle), .safetensors, or a training checkpoint folder (its trainable.safetensors; with its hici_config.json the HiCI shapes are checked and the reference's HiCI flags printed)", Required = true };
        var output = new Option<string>("--output") { Description = "File to write (atomically: temp file, then rename)", Required = true };
        var format = new Option<string?>("--format") { Description = "reference (trainable_params.bin that torch.load accepts) | safetensors; default: from the --output extension" };
        var cmd = new Command("convert-trainable", "Convert trainable parameters between the reference's trainable_params.bin and safetensors (keys normalised, fp32)");
        cmd.Options.Add(input);
        cmd.Options.Add(output);
        cmd.Options.Add(format);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            string inPath = InputFiles.CheckPath(pr.GetValue(input), "--input");
            if (Directory.Exists(inPath)) inPath = Path.Combine(inPath, Hici.Training.TrainingCheckpoint.TrainableName);
            string outPath = InputFiles.CheckPath(pr.GetValue(output), "--output");
            bool toReference = ResolveFormat(pr.GetValue(format), outPath);
            if (Path.GetFullPath(inPath) == Path.GetFullPath(outPath)) throw new HiciException($"{outPath}: --output must differ from --input");
            var outDir = Path.GetDirectoryName(Path.GetFullPath(outPath))!;
            if (!Directory.Exists(outDir)) throw new HiciException($"{outDir}: no such folder for --output");
            Common.InitTorch(pr);
            using var src = TrainableParams.Open(inPath);
            // A whole model (or an adapter) is not a trainable-parameter file; writing it as one would mislead the reference.
            var foreign = src.Keys.Where(k => !HiciKeys.IsTrainableKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
            if (foreign.Count > 0)
                throw new HiciException($"{inPath}: not a trainable-parameter file: {foreign.Count} key(s) are not embeddings, norms or HiCI modules (e.g. {string.Join(", ", foreign.Take(3))})");
            using var scope = NewDisposeScope();
            // Reference order: the reference's state_dict walks modules in order; sorting keeps files reproducible.
            var tensors = src.Keys.OrderBy(k => k, StringComparer.Ordinal)
                .Select(k => (k, src.Load(k, ScalarType.Float32).contiguous())).ToList();
            if (tensors.Count == 0) throw new HiciException($"{inPath}: holds no tensors");
            var hiciConfig = CheckAgainstHiciConfig(inPath, tensors);
            if (toReference) TorchPickleWriter.Save(outPath, tensors);
            else SafeTensorsWriter.Save(outPath, tensors);
            long elems = tensors.Sum(t => t.Item2.NumberOfElements);
            Console.WriteLine($"wrote {outPath}: {tensors.Count} tensors, {elems:N0} parameters, fp32, {(toReference ? "reference trainable_params.bin (PyTorch zip pickle)" : "safetensors")}");
            foreach (var (legacy, current) in src.Renamed.Take(3)) Console.WriteLine($"renamed     {legacy} → {current}");
            if (src.Renamed.Count > 3) Console.WriteLine($"renamed     … {src.Renamed.Count - 3} more legacy keys");
            if (hiciConfig is { } hc)
                Console.WriteLine($"HiCI config {hc.Path}: shapes match; the reference's run takes it as --num_local_slots {hc.Config.LocalSlots} --global_slots {hc.Config.GlobalSlots} " +
                    $"--num_heads {hc.Config.NumHeads} --use_bottleneck {(hc.Config.UseBottleneck ? "True" : "False")} --bottleneck_dim {hc.Config.BottleneckDim} --shared_compress_dim {hc.Config.SharedCompressDim}");
            return 0;
        }));
        return cmd;
    }

    /// <summary>
    /// A hici_config.json beside the input (a training checkpoint's) describes the HiCI tensors: every layer's are
    /// checked against it (hidden size from the local constructor's memory slots), so a file never leaves with
    /// settings that do not fit it. Null when there is no config or no HiCI tensor.
    /// </summary>
    private static (string Path, HiciConfig Config)? CheckAgainstHiciConfig(string inPath, List<(string Key, Tensor T)> tensors)
    {
        var path = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(inPath))!, HiciConfig.FileName);
        if (!File.Exists(path)) return null;
        var cfg = HiciConfig.Load(path);
        var byKey = tensors.ToDictionary(t => t.Key, t => t.T.shape);
        var layers = tensors.Select(t => HiciLayerPrefix(t.Key)).Where(p => p is not null).Distinct().ToList();
        if (layers.Count == 0) return null;
        long[]? slots = byKey.FirstOrDefault(kv => kv.Key.EndsWith(".local_constructor.memory_slots", StringComparison.Ordinal)).Value;
        long[]? embed = byKey.GetValueOrDefault(TrainableParams.EmbedKey);
        int hidden = (int)(slots?[1] ?? embed?[1] ?? throw new HiciException($"{inPath}: cannot tell the hidden size to check the HiCI tensors against {path} (no memory_slots, no embedding)"));
        foreach (var prefix in layers)
            cfg.CheckShapes(hidden, k => byKey.GetValueOrDefault(prefix + k), $"{inPath} with {path}", prefix);
        return (path, cfg);
    }

    private static string? HiciLayerPrefix(string key)
    {
        int i = key.IndexOf(".self_attn.", StringComparison.Ordinal);
        if (i < 0) return null;
        var rest = key[(i + ".self_attn.".Length)..];
        return rest.StartsWith("local_constructor.", StringComparison.Ordinal) || rest.StartsWith("global_integrator.", StringComparison.Ordinal)
            ? key[..(i + ".self_attn.".Length)] : null;
    }

    private static bool ResolveFormat(string? format, string outPath)
    {
        bool extSafetensors = outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);
        switch (format?.ToLowerInvariant())
        {
            case null: return !extSafetensors;
            case "reference":
                if (extSafetensors) throw new HiciException($"--format reference writes a PyTorch file; {outPath} ends in .safetensors");
                return true;
            case "safetensors":
                if (!extSafetensors) throw new HiciException($"--format safetensors: name the output *.safetensors (got {outPath})");
                return false;
            default: throw new HiciException($"--format: '{format}' is not supported (use reference or safetensors)");
        }
    }
}
