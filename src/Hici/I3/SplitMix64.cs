namespace Hici.I3;

/// <summary>A tiny random generator whose whole state is one ulong, so a training run's data order can be checkpointed and resumed exactly.</summary>
public sealed class SplitMix64(ulong state)
{
    public ulong State { get; private set; } = state;

    public ulong Next()
    {
        ulong z = State += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, n) (n ≥ 1), by rejection so every value is equally likely.</summary>
    public long NextLong(long n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n));
        ulong un = (ulong)n, limit = ulong.MaxValue - ulong.MaxValue % un;
        ulong x;
        do x = Next(); while (x >= limit);
        return (long)(x % un);
    }
}
