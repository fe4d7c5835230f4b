using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace Hici.Lora;

/// <summary>
/// What LoRA wraps and how (PEFT <c>LoraConfig</c>). Defaults are the HiCI recipe (the reference's fine-tune_hici.py → train):
/// r 8, alpha 16 (scale 2), no dropout, every module named q_proj/k_proj/v_proj/o_proj — which by PEFT's
/// suffix rule includes HiCI's own projections inside local_constructor and global_integrator.
/// </summary>
public sealed record LoraConfig
{
    public static readonly IReadOnlyList<string> DefaultTargets = new[] { "q_proj", "k_proj", "v_proj", "o_proj" };

    public int R { get; init; } = 8;
    public double Alpha { get; init; } = 16;
    public double Dropout { get; init; }
    /// <summary>Module names matched by suffix: a path matches "q_proj" if it is "q_proj" or ends in ".q_proj".</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = DefaultTargets;
    /// <summary>PEFT's other form: target_modules as one string is a regex that must match the whole module path.
    /// When set it replaces <see cref="TargetModules"/>.</summary>
    public string? TargetRegex { get; init; }
    /// <summary>rsLoRA (newer PEFT): scale alpha/√r instead of alpha/r.</summary>
    public bool UseRsLora { get; init; }
    /// <summary>dtype of A and B. PEFT keeps them in float32 whatever the base dtype and casts the input.</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;

    public double Scale => UseRsLora ? Alpha / Math.Sqrt(R) : Alpha / R;

    public bool Matches(string modulePath)
    {
        // Regex's static methods cache compiled patterns; a cached field would go stale through `with`.
        if (TargetRegex is not null) return Regex.IsMatch(modulePath, Anchored(TargetRegex), Options, Timeout);
        foreach (var t in TargetModules)
            if (modulePath == t || modulePath.EndsWith("." + t, StringComparison.Ordinal)) return true;
        return false;
    }

    /// <summary>Beyond any model's hidden size; a larger r only sizes an allocation nothing can fill.</summary>
    public const int MaxRank = 1 << 16;

    /// <summary>Throws a HiciException naming <paramref name="origin"/> for anything LoRA cannot run with.</summary>
    public void Validate(string origin)
    {
        var bad = new List<string>();
        if (R <= 0 || R > MaxRank) bad.Add($"r must be an integer in 1..{MaxRank}, got {R}");
        if (!double.IsFinite(Alpha) || Alpha <= 0) bad.Add($"lora_alpha must be positive, got {Alpha}");
        if (!double.IsFinite(Dropout) || Dropout < 0 || Dropout >= 1) bad.Add($"lora_dropout must be in [0, 1), got {Dropout}");
        if (DType is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            bad.Add($"LoRA dtype {DType} is not a floating-point type LoRA can use");
        if (TargetRegex is null)
        {
            if (TargetModules.Count == 0) bad.Add("target_modules is empty");
            if (TargetModules.Any(string.IsNullOrWhiteSpace)) bad.Add("target_modules has an empty name");
        }
        else
        {
            try { Compile(TargetRegex, "target_modules"); }
            catch (HiciException e) { bad.Add(e.Message); }
        }
        if (bad.Count > 0) throw new HiciException($"{origin}: {string.Join("; ", bad)}");
    }

    public string DescribeTargets() => TargetRegex is not null ? $"regex '{TargetRegex}'" : "[" + string.Join(", ", TargetModules) + "]";

    private const RegexOptions Options = RegexOptions.CultureInvariant;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);

    // Python's re.fullmatch: anchored at both ends, and \z so a trailing newline does not count as the end.
    private static string Anchored(string pattern) => $"^(?:{pattern})\\z";

    private static Regex Compile(string pattern, string field)
    {
        try { return new Regex(Anchored(pattern), Options, Timeout); }
        catch (ArgumentException e) { throw new HiciException($"{field} regex '{pattern}' is not valid ({e.Message})"); }
    }
}
