using Hici.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Models;

/// <param name="AllowMissing">checkpoint keys that may be absent (e.g. new adapter weights); they are
/// materialised as zeros and listed in <see cref="WeightLoadReport.ZeroFilled"/> for the caller to initialise</param>
/// <param name="Layout">how projection weights are stored after loading (<see cref="WeightLayout"/>; null = its
/// preferred layout for inference; training asks for row, which its optimizer state needs)</param>
public sealed record WeightLoadOptions(Func<string, bool>? AllowMissing = null, WeightLayout.Kind? Layout = null);

public sealed record WeightLoadReport(int Loaded, IReadOnlyList<string> Ignored, IReadOnlyList<string> ZeroFilled);

/// <summary>
/// Fills a meta-built <see cref="CausalLM"/> from an <see cref="IWeightSource"/> through <see cref="WeightMap"/>.
/// Strict: every parameter must come from the source, every source key must be used, shapes must agree;
/// all problems are reported together in one HiciException. Nothing is assigned unless everything
/// loads, so a failed load leaves the model unloaded rather than half-loaded.
/// </summary>
public static class WeightLoader
{
    public static WeightLoadReport Load(CausalLM lm, IWeightSource src, WeightLoadOptions? options = null)
    {
        var allowMissing = options?.AllowMissing ?? (_ => false);
        var cfg = lm.Config;
        // Adapter weights (LoRA A/B) are not in the base checkpoint; their own loader fills them.
        var adapterOwned = AdapterModules.ParameterPaths(lm);
        var ours = lm.named_parameters().Where(p => !adapterOwned.Contains(p.name)).ToList();

        var unmapped = new List<string>();
        var wanted = new Dictionary<string, (string Path, Parameter Param)>();   // hf key → our parameter
        foreach (var (path, p) in ours)
        {
            var hf = WeightMap.ToHf(path);
            if (hf is null) unmapped.Add(path); else wanted[hf] = (path, p);
        }
        if (unmapped.Count > 0)
            throw new InvalidOperationException($"WeightMap has no row for parameters {List(unmapped)}; add them to the table");

        var ignored = new List<string>();
        var unexpected = new List<string>();
        foreach (var key in src.Keys.OrderBy(k => k, StringComparer.Ordinal))
        {
            if (wanted.ContainsKey(key)) continue;
            // A tied checkpoint may still carry lm_head.weight (a copy of the embedding); HF ignores it too.
            if (WeightMap.IsIgnorable(key) || (cfg.TieWordEmbeddings && key == "lm_head.weight")) ignored.Add(key);
            else unexpected.Add(key);
        }
        var missing = wanted.Keys.Where(k => !src.Contains(k) && !allowMissing(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();

        var badShape = new List<string>();
        var badType = new List<string>();
        foreach (var (key, (_, p)) in wanted.OrderBy(w => w.Key, StringComparer.Ordinal))
        {
            if (!src.Contains(key)) continue;
            var shape = src.Shape(key);
            if (!shape.SequenceEqual(p.shape)) badShape.Add($"{key} is {Dims(shape)}, the config needs {Dims(p.shape)}");
            var dt = src.DType(key);
            if (dt is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float64)) badType.Add($"{key} is {dt}");
        }

        if (missing.Count + unexpected.Count + badShape.Count + badType.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0) parts.Add($"missing {Count(missing.Count, "key")} {List(missing)}");
            if (unexpected.Count > 0) parts.Add($"unexpected {Count(unexpected.Count, "key")} {List(unexpected)}");
            if (badShape.Count > 0) parts.Add($"wrong shape: {string.Join("; ", badShape.Take(8))}{More(badShape.Count, 8)}");
            if (badType.Count > 0) parts.Add($"not floating point: {string.Join("; ", badType.Take(8))}{More(badType.Count, 8)}");
            throw new HiciException($"{src.Origin}: weights do not match the {cfg.ModelType} config " +
                $"({cfg.NumHiddenLayers} layers, hidden {cfg.HiddenSize}, tie_word_embeddings={cfg.TieWordEmbeddings.ToString().ToLowerInvariant()}): " +
                string.Join("; ", parts));
        }

        var loaded = new List<(string Path, Parameter Param)>();
        var zeroFilled = new List<string>();
        try
        {
            foreach (var (key, (path, p)) in wanted)
            {
                Tensor t;
                if (src.Contains(key))
                {
                    try { t = src.Load(key, lm.DType, lm.Device); }
                    catch (Exception e) when (e is not HiciException)
                    { throw new HiciException($"{src.Origin}: cannot read {key}: {e.Message}", e); }
                }
                else
                {
                    t = torch.zeros(p.shape, dtype: lm.DType, device: lm.Device);
                    zeroFilled.Add(key);
                }
                // Frozen by default: inference needs no autograd; fine-tuning opts parameters back in.
                var param = new Parameter(t, requires_grad: false);   // takes t's handle
                param.DetachFromDisposeScope();                         // the model owns it, not the caller's scope
                loaded.Add((path, param));
            }
        }
        catch
        {
            foreach (var (_, p) in loaded) p.Dispose();
            throw;
        }
        foreach (var (path, p) in loaded) ModuleTree.SetParameter(lm, path, p);
        return new WeightLoadReport(loaded.Count - zeroFilled.Count, ignored, zeroFilled);
    }

    private static string Dims(long[] s) => "[" + string.Join(", ", s) + "]";
    private static string Count(int n, string noun) => n == 1 ? $"1 {noun}" : $"{n} {noun}s";
    private static string More(int n, int shown) => n > shown ? $" … ({n - shown} more)" : "";
    private static string List(List<string> keys) => "[" + string.Join(", ", keys.Take(8)) + More(keys.Count, 8) + "]";
}
