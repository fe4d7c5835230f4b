using System.Text.RegularExpressions;

namespace Hici.Hierarchical;

/// <summary>
/// The one recogniser of HiCI checkpoint keys: the module names (current and the reference's pre-rename
/// legacy ones, <c>global_memory</c> → <c>local_constructor</c>, <c>hierarchical_aggregator</c> →
/// <c>global_integrator</c>), PEFT target matching inside the HiCI modules, and the reference's
/// trainable-parameter filter. Loaders, the LoRA code and the trainable-params reader all ask here.
/// </summary>
public static class HiciKeys
{
    public static readonly IReadOnlyList<(string Legacy, string Current)> LegacyModules = new[]
    {
        ("global_memory", "local_constructor"),
        ("hierarchical_aggregator", "global_integrator"),
    };

    /// <summary>Current and legacy module names.</summary>
    private static readonly HashSet<string> AnyModuleName = new(LegacyModules.SelectMany(p => new[] { p.Legacy, p.Current }), StringComparer.Ordinal);

    private static readonly Regex LayerKey = new(
        @"^model\.layers\.\d+\.self_attn\.(local_constructor|global_integrator|global_memory|hierarchical_aggregator)\.", RegexOptions.Compiled);
    private static readonly Regex Legacy = new(@"(^|\.)(global_memory|hierarchical_aggregator)\.", RegexOptions.Compiled);

    /// <summary>get_trainable_weights.py's default filter ("embed,norm,local_constructor,global_integrator").</summary>
    private static readonly string[] TrainableSubstrings = { "embed", "norm", "local_constructor", "global_integrator" };

    /// <summary>True for a tensor of a layer's HiCI module (current or legacy name), HF key form.</summary>
    public static bool IsHiciKey(string key) => LayerKey.IsMatch(key);

    public static bool HasLegacyName(string key) => Legacy.IsMatch(key);

    /// <summary>The key or module path with legacy HiCI module names replaced by the current ones.</summary>
    public static string CurrentName(string key) => Legacy.Replace(key, m =>
        m.Groups[1].Value + (m.Groups[2].Value == "global_memory" ? "local_constructor." : "global_integrator."));

    /// <summary>True when a module path or key (any prefix, e.g. PEFT's base_model.model.) lies inside a HiCI
    /// module: LoRA on it has nothing to attach to in a model built without HiCI.</summary>
    public static bool IsInHiciModule(string path) => path.Split('.').Any(AnyModuleName.Contains);

    /// <summary>True for a checkpoint key the reference would put in trainable_params.bin (LoRA excluded).</summary>
    public static bool IsTrainableKey(string key) =>
        !key.Contains("lora_", StringComparison.Ordinal) && TrainableSubstrings.Any(s => key.Contains(s, StringComparison.Ordinal));
}
