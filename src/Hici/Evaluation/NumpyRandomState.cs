namespace Hici.Evaluation;

/// <summary>
/// NumPy's legacy global generator (<c>numpy.random.seed</c> / <c>numpy.random.randint</c>, i.e. a
/// <c>RandomState</c> over MT19937) re-implemented so prompts built with it in the reference
/// (LongLoRA's <c>passkey_retrieval.py → generate_prompt_landmark</c>) come out identical here.
/// Two details decide the stream: an integer seed goes through MT19937's <c>init_genrand</c> (NumPy's
/// <c>_legacy_seeding → mt19937_seed</c>, not <c>init_by_array</c> as Python's own <c>random.seed</c> does),
/// and <c>randint</c> draws by masked rejection sampling on 32-bit outputs (<c>random_bounded_uint64_fill</c>
/// with <c>use_masked=True</c>), so the number of raw draws a call consumes depends on its range.
/// </summary>
public sealed class NumpyRandomState
{
    private const int N = 624, M = 397;
    private readonly uint[] _mt = new uint[N];
    private int _pos;

    public NumpyRandomState(uint seed) => Seed(seed);

    /// <summary><c>np.random.seed(seed)</c> for an integer seed in [0, 2³²).</summary>
    public void Seed(uint seed)
    {
        _mt[0] = seed;
        for (int i = 1; i < N; i++)
            _mt[i] = unchecked(1812433253u * (_mt[i - 1] ^ (_mt[i - 1] >> 30)) + (uint)i);
        _pos = N;
    }

    /// <summary>The next raw 32-bit output (MT19937 <c>genrand_int32</c>).</summary>
    public uint NextUInt32()
    {
        if (_pos >= N) Twist();
        uint y = _mt[_pos++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        y ^= y >> 18;
        return y;
    }

    private void Twist()
    {
        for (int i = 0; i < N; i++)
        {
            uint y = (_mt[i] & 0x80000000u) | (_mt[(i + 1) % N] & 0x7fffffffu);
            _mt[i] = _mt[(i + M) % N] ^ (y >> 1) ^ ((y & 1) != 0 ? 0x9908b0dfu : 0u);
        }
        _pos = 0;
    }

    /// <summary>
    /// <c>randint(low, high)</c>: an integer in [low, high). Ranges that fit 32 bits use masked rejection on
    /// single 32-bit draws; wider ones on 64-bit draws made of two 32-bit outputs (high word first).
    /// </summary>
    public long RandInt(long low, long high)
    {
        if (high <= low) throw new ArgumentOutOfRangeException(nameof(high), $"randint: low ({low}) >= high ({high})");
        ulong rng = (ulong)(high - 1 - low);
        if (rng == 0) return low;
        if (rng <= uint.MaxValue)
        {
            if (rng == uint.MaxValue) return low + NextUInt32();
            uint mask = (uint)Mask(rng);
            uint v;
            while ((v = NextUInt32() & mask) > rng) { }
            return low + v;
        }
        ulong mask64 = Mask(rng);
        ulong w;
        while ((w = NextUInt64() & mask64) > rng) { }
        return low + (long)w;
    }

    private ulong NextUInt64() => ((ulong)NextUInt32() << 32) | NextUInt32();

    /// <summary>The smallest 2^k − 1 that is ≥ <paramref name="max"/> (NumPy's <c>gen_mask</c>).</summary>
    private static ulong Mask(ulong max)
    {
        ulong m = max;
        m |= m >> 1; m |= m >> 2; m |= m >> 4; m |= m >> 8; m |= m >> 16; m |= m >> 32;
        return m;
    }
}
