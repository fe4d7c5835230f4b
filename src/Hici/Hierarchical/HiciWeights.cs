using Hici.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Hierarchical;

/// <summary>What a HiCI load found: per-key outcome, for the load report.</summary>
public sealed class HiciLoadReport
{
    public List<string> Loaded { get; } = new();
    public List<string> Missing { get; } = new();
    /// <summary>Keys read through a legacy prefix (global_memory → local_constructor, hierarchical_aggregator → global_integrator).</summary>
    public List<(string Legacy, string Current)> Renamed { get; } = new();
}

/// <summary>
/// Loading HiCI module weights from a checkpoint (names as the reference's register_hici_to_model sets them; legacy names: <see cref="HiciKeys"/>). Keys are
/// <c>{layerPrefix}local_constructor.*</c> and <c>{layerPrefix}global_integrator.*</c>, with layerPrefix like
/// <c>model.layers.3.self_attn.</c>; the legacy prefixes <c>global_memory.</c> and
/// <c>hierarchical_aggregator.</c> are accepted as aliases (and reported), and a checkpoint holding both
/// spellings of one tensor is refused. Shapes are checked against the config before anything is copied.
/// </summary>
public static class HiciWeights
{
    private static readonly IReadOnlyList<(string Legacy, string Current)> LegacyPrefixes =
        HiciKeys.LegacyModules.Select(p => (p.Legacy + ".", p.Current + ".")).ToArray();

    /// <summary>The checkpoint key that holds <paramref name="subKey"/> (current or legacy spelling), or null.</summary>
    public static string? Resolve(IWeightSource src, string layerPrefix, string subKey)
    {
        string current = layerPrefix + subKey;
        string? legacy = null;
        foreach (var (old, cur) in LegacyPrefixes)
            if (subKey.StartsWith(cur, StringComparison.Ordinal)) legacy = layerPrefix + old + subKey[cur.Length..];
        bool hasCur = src.Contains(current), hasOld = legacy is not null && src.Contains(legacy);
        if (hasCur && hasOld)
            throw new HiciException($"{src.Origin}: holds both '{current}' and its legacy spelling '{legacy}'; keep one");
        return hasCur ? current : hasOld ? legacy : null;
    }

    /// <summary>
    /// Checks every HiCI tensor of one layer against <paramref name="cfg"/> (a contradiction → HiciException
    /// naming the tensor and both shapes) and copies the present ones into the modules. Missing tensors are
    /// listed in the report (and are an error when <paramref name="strict"/>).
    /// </summary>
    public static void LoadLayer(IWeightSource src, string layerPrefix, HiciConfig cfg, int hiddenSize,
        LocalConstructor? lc, IGlobalIntegrator? gi, HiciLoadReport? report = null, bool strict = false)
    {
        report ??= new HiciLoadReport();
        var keyOf = new Dictionary<string, string>();
        var missing = cfg.CheckShapes(hiddenSize, sub =>
        {
            var k = Resolve(src, layerPrefix, sub);
            if (k is null) return null;
            keyOf[sub] = k;
            return src.Shape(k);
        }, src.Origin, layerPrefix);
        if (strict && missing.Count > 0)
            throw new HiciException($"{src.Origin}: missing HiCI tensors: {string.Join(", ", missing.Take(6))}{(missing.Count > 6 ? $" (+{missing.Count - 6} more)" : "")}");
        report.Missing.AddRange(missing);

        // A HiCI tensor the config has no place for means the config contradicts the checkpoint
        // (e.g. independent compressors vs shared, or no bottleneck vs bottleneck).
        var expected = new HashSet<string>(cfg.ExpectedShapes(hiddenSize).Select(e => e.Key));
        var prefixes = new[] { "local_constructor.", "global_integrator." }
            .Concat(LegacyPrefixes.Select(p => p.Legacy)).Select(p => layerPrefix + p).ToArray();
        foreach (var key in src.Keys)
        {
            var pre = prefixes.FirstOrDefault(p => key.StartsWith(p, StringComparison.Ordinal));
            if (pre is null) continue;
            string sub = key[layerPrefix.Length..];
            foreach (var (old, cur) in LegacyPrefixes)
                if (sub.StartsWith(old, StringComparison.Ordinal)) sub = cur + sub[old.Length..];
            bool disabled = (!cfg.UseLocalConstructor && sub.StartsWith("local_constructor.", StringComparison.Ordinal))
                         || (!cfg.UseGlobalIntegrator && sub.StartsWith("global_integrator.", StringComparison.Ordinal));
            if (!expected.Contains(sub) && !disabled && !sub.Contains(".lora_", StringComparison.Ordinal))
                throw new HiciException(
                    $"{src.Origin}: HiCI tensor '{key}' {HiciConfig.Fmt(src.Shape(key))} has no place in the HiCI config " +
                    $"(use_bottleneck={(cfg.UseBottleneck ? "true" : "false")}, use_shared_compressor={(cfg.UseSharedCompressor ? "true" : "false")}, " +
                    $"shared_compress_dim={cfg.SharedCompressDim}, bottleneck_dim={cfg.BottleneckDim}); the checkpoint was trained with another configuration");
        }

        var targets = new Dictionary<string, Parameter>();
        if (lc is not null)
            foreach (var (name, p) in lc.named_parameters()) targets["local_constructor." + name] = p;
        if (gi is not null)
            foreach (var (name, p) in gi.Module.named_parameters()) targets["global_integrator." + name] = p;

        using var noGrad = no_grad();
        foreach (var (sub, key) in keyOf)
        {
            if (!targets.TryGetValue(sub, out var p))
                continue; // e.g. HiCI weights present while the config disables the module: checked, not used
            using var t = src.Load(key, p.dtype, p.device);
            p.copy_(t);
            report.Loaded.Add(key);
            if (key != layerPrefix + sub)
                report.Renamed.Add((key, layerPrefix + sub));
        }
    }
}
