using System.Text.RegularExpressions;
using Hici.Hierarchical;
using Hici.Models;

namespace Hici.Lora;

/// <summary>One LoRA tensor named in an adapter file: the HF module path it belongs to and which matrix.</summary>
public sealed record PeftLoraKey(string Module, char Matrix);

/// <summary>
/// The key table between PEFT adapter files and our LoRA layers. PEFT 0.5 writes
/// <c>base_model.model.&lt;HF module&gt;.lora_A.weight</c> (the adapter name "default" stripped); raw DeepSpeed /
/// zero_to_fp32 state dicts keep it, <c>...lora_A.default.weight</c>. The HF module path is our module path
/// through <see cref="WeightMap"/>, and HiCI's pre-rename prefixes (see <see cref="Hici.Hierarchical.HiciKeys"/>) are read as the current ones.
/// </summary>
public static class PeftAdapterKeys
{
    public const string Prefix = "base_model.model.";

    private static readonly Regex Lora = new(
        @"^base_model\.model\.(?<module>.+)\.lora_(?<ab>[AB])(?:\.default)?\.weight$", RegexOptions.Compiled | RegexOptions.CultureInvariant);

    /// <summary>The key PEFT 0.5 writes for matrix 'A' or 'B' of <paramref name="hfModule"/>.</summary>
    public static string Key(string hfModule, char matrix) => $"{Prefix}{hfModule}.lora_{matrix}.weight";

    /// <summary>The checkpoint (HF) module path of one of our module paths.</summary>
    public static string HfModule(string ourModule)
    {
        var hf = WeightMap.ToHf(ourModule + ".weight");
        return hf is null ? ourModule : hf[..^".weight".Length];
    }

    /// <summary>A LoRA Linear key in either naming, with legacy HiCI prefixes renamed; null if the key is not one.</summary>
    public static PeftLoraKey? Parse(string key)
    {
        var m = Lora.Match(key);
        if (!m.Success) return null;
        return new PeftLoraKey(HiciKeys.CurrentName(m.Groups["module"].Value), m.Groups["ab"].Value[0]);
    }

    /// <summary>Any key that names LoRA state, including forms this code does not read (embeddings, DoRA, other adapter names).</summary>
    public static bool LooksLikeLora(string key) => key.Contains("lora_", StringComparison.Ordinal);

}
