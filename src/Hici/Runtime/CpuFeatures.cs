namespace Hici.Runtime;

/// <summary>CPU flags the kernels' speed depends on (Linux /proc/cpuinfo; elsewhere none are reported).</summary>
public static class CpuFeatures
{
    private static readonly Lazy<HashSet<string>> Flags = new(ReadFlags);

    /// <summary>True when the CPU reports the flag in /proc/cpuinfo (e.g. avx512_bf16, amx_bf16).</summary>
    public static bool Has(string flag) => Flags.Value.Contains(flag);

    /// <summary>
    /// bf16 dot products in hardware (AVX512-BF16 or AMX): oneDNN's bf16 GEMMs then run several times the
    /// float32 rate. Without them bf16 GEMMs are emulated and slower than float32.
    /// </summary>
    public static bool NativeBf16 => Has("avx512_bf16") || Has("amx_bf16");

    private static HashSet<string> ReadFlags()
    {
        try
        {
            var line = File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags")) : null;
            return line is null ? new() : line[(line.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        }
        catch (IOException) { return new(); }
        catch (UnauthorizedAccessException) { return new(); }
    }
}
