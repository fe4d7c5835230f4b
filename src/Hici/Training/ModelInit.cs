using System.Text.Json.Nodes;
using Hici.IO;
using Hici.Models;
using static TorchSharp.torch;

namespace Hici.Training;

/// <summary>A random HF model folder from a config.json (HF _init_weights: N(0, initializer_range²), norms 1).</summary>
public static class ModelInit
{
    private static readonly string[] TokenizerFiles = { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json" };

    public static (ModelConfig Config, long Parameters) Write(string configFile, string outDir, long seed, string? tokenizerDir = null)
    {
        var bytes = InputFiles.ReadBytes(configFile, HfConfigReader.MaxBytes);
        var cfg = HfConfigReader.Parse(bytes, configFile);
        double std = 0.02;
        if (JsonFiles.ParseNode(configFile, bytes) is JsonObject o && o["initializer_range"] is JsonValue v && v.TryGetValue<double>(out var r))
        {
            if (!(r > 0) || !double.IsFinite(r)) throw new HiciException($"{configFile}: initializer_range must be positive (got {r})");
            std = r;
        }
        if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any())
            throw new HiciException($"{outDir}: exists and is not empty");
        long n = 0;
        AtomicDirectory.Write(outDir, tmp =>
        {
            using var w = RandomWeights.For(cfg, seed, std);
            using (var scope = NewDisposeScope())
            {
                var tensors = w.Keys.OrderBy(k => k, StringComparer.Ordinal).Select(k => { var t = w.Load(k, ScalarType.Float32, CPU); n += t.numel(); return (k, t); }).ToList();
                SafeTensorsWriter.Save(Path.Combine(tmp, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
            }
            File.WriteAllBytes(Path.Combine(tmp, "config.json"), bytes);   // the bytes checked above, not the file again
            if (tokenizerDir is not null)
                foreach (var f in TokenizerFiles.Select(f => Path.Combine(tokenizerDir, f)).Where(File.Exists))
                    InputFiles.Copy(f, Path.Combine(tmp, Path.GetFileName(f)));
        });
        return (cfg, n);
    }
}
