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
        var input = new Option<string>("--input") { Description = "trainable_params.bin (PyTorch zip pickle) or .safetensors", Required = true };
        var output = new Option<string>("--output") { Description = "File to write (atomically: temp file, then rename)", Required = true };
        var format = new Option<string?>("--format") { Description = "reference (trainable_params.bin that torch.load accepts) | safetensors; default: from the --output extension" };
        var cmd = new Command("convert-trainable", "Convert trainable parameters between the reference's trainable_params.bin and safetensors (keys normalised, fp32)");
        cmd.Options.Add(input);
        cmd.Options.Add(output);
        cmd.Options.Add(format);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            string inPath = InputFiles.CheckPath(pr.GetValue(input), "--input"), outPath = InputFiles.CheckPath(pr.GetValue(output), "--output");
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
            if (toReference) TorchPickleWriter.Save(outPath, tensors);
            else SafeTensorsWriter.Save(outPath, tensors);
            long elems = tensors.Sum(t => t.Item2.NumberOfElements);
            Console.WriteLine($"wrote {outPath}: {tensors.Count} tensors, {elems:N0} parameters, fp32, {(toReference ? "reference trainable_params.bin (PyTorch zip pickle)" : "safetensors")}");
            foreach (var (legacy, current) in src.Renamed.Take(3)) Console.WriteLine($"renamed     {legacy} → {current}");
            if (src.Renamed.Count > 3) Console.WriteLine($"renamed     … {src.Renamed.Count - 3} more legacy keys");
            return 0;
        }));
        return cmd;
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
