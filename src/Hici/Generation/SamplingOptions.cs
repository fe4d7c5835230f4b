namespace Hici.Generation;

/// <summary>How the next token is chosen. Temperature 0 (or null) means greedy.</summary>
public sealed record SamplingOptions
{
    public double Temperature { get; init; } = 0.0;
    public int TopK { get; init; } = 0;          // 0 = off
    public double TopP { get; init; } = 1.0;     // 1 = off
    public long? Seed { get; init; }
    public bool Greedy => Temperature <= 0.0;

    public void Validate()
    {
        if (double.IsNaN(Temperature) || Temperature < 0) throw new HiciException($"--temperature must be ≥ 0 (got {Temperature})");
        if (TopK < 0) throw new HiciException($"--top-k must be ≥ 0 (got {TopK})");
        if (!(TopP > 0 && TopP <= 1)) throw new HiciException($"--top-p must be in (0, 1] (got {TopP})");
    }
}
