using System.Text.RegularExpressions;
using Hici.IO;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Hierarchical;

/// <summary>
/// A view of a weight source in which the legacy HiCI key prefixes (<see cref="HiciKeys"/>; the published Qwen3-8b-HiCI-48k trainable_params.bin uses them) read as the current ones:
/// <c>….self_attn.global_memory.*</c> → <c>….self_attn.local_constructor.*</c> and
/// <c>….self_attn.hierarchical_aggregator.*</c> → <c>….self_attn.global_integrator.*</c>. A source holding
/// both spellings of one tensor is refused. Does not own the wrapped source.
/// </summary>
public sealed class HiciKeyAliasSource : RenamedKeySource
{
    private HiciKeyAliasSource(IWeightSource inner) : base(inner, CurrentName, ownsInner: false) { }

    protected override string DuplicateMessage(string first, string second, string current) =>
        $"{Origin}: holds both '{first}' and '{second}' (legacy and current names of one HiCI tensor); keep one";

    public static string CurrentName(string key) => HiciKeys.CurrentName(key);

    /// <summary>The source itself when it has no legacy key, else an aliasing view.</summary>
    public static IWeightSource Wrap(IWeightSource src) =>
        src is HiciKeyAliasSource || !src.Keys.Any(HiciKeys.HasLegacyName) ? src : new HiciKeyAliasSource(src);
}

/// <summary>HiCI-specific checks and key handling around the model loader.</summary>
public static class HiciCheckpoint
{
    private static readonly Regex LayerHiciKey =
        new(@"^model\.layers\.(\d+)\.self_attn\.(local_constructor|global_integrator)\.(.+)$", RegexOptions.Compiled);

    /// <summary>
    /// Prepares a source for <see cref="WeightLoader"/>: legacy prefixes read as current ones, and when the
    /// model holds HiCI modules every HiCI tensor is checked against the HiCI config first, so a
    /// contradiction is reported as such (tensor, both shapes, the config fields) rather than as a generic
    /// shape mismatch.
    /// </summary>
    public static IWeightSource Prepare(ModelConfig cfg, IWeightSource src)
    {
        var s = HiciKeyAliasSource.Wrap(src);
        if (HiciAttentionOptions.Of(cfg)?.Config is { } hc)
        {
            for (int i = 0; i < cfg.NumHiddenLayers; i++)
            {
                string prefix = $"model.layers.{i}.self_attn.";
                hc.CheckShapes(cfg.HiddenSize, sub => s.Contains(prefix + sub) ? s.Shape(prefix + sub) : null, src.Origin, prefix);
            }
            var expected = new HashSet<string>(hc.ExpectedShapes(cfg.HiddenSize).Select(e => e.Key));
            foreach (var key in s.Keys)
            {
                var m = LayerHiciKey.Match(key);
                if (!m.Success || key.Contains(".lora_", StringComparison.Ordinal)) continue;
                string sub = m.Groups[2].Value + "." + m.Groups[3].Value;
                if (int.Parse(m.Groups[1].Value) >= cfg.NumHiddenLayers || !expected.Contains(sub))
                    throw new HiciException(
                        $"{src.Origin}: HiCI tensor '{key}' {HiciConfig.Fmt(s.Shape(key))} has no place in the HiCI config " +
                        $"(use_bottleneck={(hc.UseBottleneck ? "true" : "false")}, use_shared_compressor={(hc.UseSharedCompressor ? "true" : "false")}, " +
                        $"use_local_constructor={(hc.UseLocalConstructor ? "true" : "false")}, use_global_integrator={(hc.UseGlobalIntegrator ? "true" : "false")}, " +
                        $"shared_compress_dim={hc.SharedCompressDim}, bottleneck_dim={hc.BottleneckDim}); the checkpoint was trained with another configuration");
            }
        }
        return s;
    }
}
