using static TorchSharp.torch;

namespace Hici.Training;

/// <summary>
/// Checks a saved CPU generator state before it reaches libtorch. <c>torch.set_rng_state</c> must never see bytes
/// it would reject: TorchSharp 0.107 does not turn that rejection into an exception, the process aborts
/// ("terminate called after throwing an instance of 'c10::Error'"). And a state of the right size with a
/// corrupt position makes the Mersenne twister read past its 624 words. The layout is libtorch's
/// <c>CPUGeneratorImplState</c> (aten/src/ATen/CPUGeneratorImpl.cpp): <c>uint64 the_initial_seed; int left; int
/// seeded; uint64 next; uint64 state[624]; …</c>.
/// </summary>
public static class TorchRngState
{
    private const int StateWords = 624;     // MERSENNE_STATE_N
    private const int LeftOffset = 8, NextOffset = 16;

    private static readonly Lazy<long> CurrentSize = new(() => { using var s = get_rng_state(); return s.numel(); });

    public static void Check(byte[] bytes)
    {
        long want = CurrentSize.Value;
        if (bytes.Length != want)
            throw new Hici.HiciException($"trainer state: torch_rng_state holds {bytes.Length} bytes; this libtorch's CPU generator state has {want}");
        int left = BitConverter.ToInt32(bytes, LeftOffset);
        ulong next = BitConverter.ToUInt64(bytes, NextOffset);
        // Right after seeding left = 1, next = 0; after k draws left = 625 - k, next = k (a refill resets both).
        if (left < 1 || left > StateWords || next > StateWords || (ulong)left + next > StateWords + 1)
            throw new Hici.HiciException($"trainer state: torch_rng_state is damaged (generator position left={left}, next={next})");
    }
}
