using Hici.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>
/// Random weights for a config, keyed like an HF checkpoint: N(0, std²) for matrices, ones for norm
/// weights, zeros for biases (HF's _init_weights). For benchmarks and training from scratch.
/// </summary>
public static class RandomWeights
{
    public static MemoryWeightSource For(ModelConfig cfg, long seed = 0, double std = 0.02)
    {
        using var meta = CausalLM.Create(cfg, ScalarType.Float32);
        using var gen = new Generator();
        gen.manual_seed(seed);
        var d = new Dictionary<string, Tensor>();
        foreach (var (path, p) in meta.named_parameters())
        {
            var key = WeightMap.ToHf(path) ?? throw new InvalidOperationException($"WeightMap has no row for {path}");
            Tensor t;
            if (path.EndsWith("norm.weight") || path.EndsWith("layernorm.weight")) t = ones(p.shape);
            else if (path.EndsWith(".bias")) t = zeros(p.shape);
            else t = normal(0.0, std, p.shape, generator: gen);
            d[key] = t;
        }
        return new MemoryWeightSource(d, $"random({cfg.ModelType}, seed {seed})");
    }

    public static CausalLM Model(ModelConfig cfg, ScalarType dtype, long seed = 0, Device? device = null)
    {
        using var w = For(cfg, seed);
        return CausalLM.Load(cfg, w, dtype, device);
    }
}
