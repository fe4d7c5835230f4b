namespace Hici.Lora;

/// <param name="Loaded">module paths whose A and B came from the file</param>
/// <param name="Missing">LoRA layers of the model the file has no weights for (they keep B = 0: no effect)</param>
/// <param name="Unexpected">keys that are not LoRA weights (e.g. base weights in a full zero_to_fp32 state dict)</param>
/// <param name="Ignored">LoRA keys of HiCI projections in a model built without HiCI modules (the reference's
/// LoRA-only merge drops them the same way; they cannot matter when the HiCI modules are absent)</param>
public sealed record PeftLoadReport(
    string Origin,
    IReadOnlyList<string> Loaded,
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected,
    IReadOnlyList<string> Ignored)
{
    public bool IsComplete => Missing.Count == 0 && Unexpected.Count == 0 && Ignored.Count == 0;

    /// <summary>One line per category, the form the CLI prints.</summary>
    public IEnumerable<string> Lines()
    {
        yield return $"adapter {Origin}: loaded LoRA for {Loaded.Count} modules";
        if (Missing.Count > 0) yield return $"  missing (left at B = 0): {Count(Missing)}";
        if (Ignored.Count > 0) yield return $"  ignored (model has no HiCI modules): {Count(Ignored)}";
        if (Unexpected.Count > 0) yield return $"  unexpected (not LoRA weights): {Count(Unexpected)}";
    }

    internal static string Count(IReadOnlyList<string> xs) =>
        $"{xs.Count}: " + string.Join(", ", xs.Take(6)) + (xs.Count > 6 ? $", … ({xs.Count - 6} more)" : "");
}
