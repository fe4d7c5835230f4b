using System.CommandLine;
using System.Text.Json.Nodes;
using Hici.IO;
using Hici.Models;
using Hici.Training;

namespace Hici.Cli.Commands;

/// <summary>
/// <c>hici init</c>: a randomly initialised HF folder from a config.json, for training from scratch — HF's
/// _init_weights: every Linear and the embedding N(0, initializer_range²), norms 1, biases 0.
/// </summary>
public static class InitCommand
{
    public static Command Build()
    {
        var config = new Option<string>("--config") { Description = "An HF config.json (model_type llama or qwen3)", Required = true };
        var output = new Option<string>("--output") { Description = "New folder to write (config.json + model.safetensors); written to a temp folder and renamed", Required = true };
        var seed = new Option<long>("--seed") { Description = "Random seed", DefaultValueFactory = _ => 0 };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Folder whose tokenizer files are copied beside the weights" };
        var cmd = new Command("init", "Write a randomly initialised HF model folder from a config.json (HF init: normal(0, initializer_range), norms 1)");
        foreach (var o in new Option[] { config, output, seed, tokenizer }) cmd.Options.Add(o);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            var file = pr.GetValue(config)!;
            if (!File.Exists(file)) throw new HiciException($"{file}: no such file");
            var outDir = pr.GetValue(output)!;
            Common.InitTorch(pr);
            var (cfg, n) = ModelInit.Write(file, outDir, pr.GetValue(seed), pr.GetValue(tokenizer));
            Console.WriteLine($"wrote {outDir}: {cfg.ModelType}, {cfg.NumHiddenLayers} layers, hidden {cfg.HiddenSize}, vocabulary {cfg.VocabSize}, {n:N0} parameters (seed {pr.GetValue(seed)})");
            return 0;
        }));
        return cmd;
    }
}
