using System.Runtime.InteropServices;

namespace Hici.Profiling;

/// <summary>
/// The process's resident memory from /proc (Linux): current RSS, peak RSS (VmHWM) and a way to restart the
/// peak, so one process can measure the peak of each run in turn — the CPU counterpart of CUDA's
/// reset_peak_memory_stats / max_memory_allocated. Elsewhere the values are null.
/// </summary>
public static partial class ProcessMemory
{
    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    /// <summary>
    /// Returns freed heap to the OS (glibc malloc_trim; libtorch's CPU allocator frees into malloc, which may
    /// keep the pages) and restarts the peak at the current RSS (writing 5 to /proc/self/clear_refs, Linux 4.0+).
    /// False when the peak cannot be restarted here.
    /// </summary>
    public static bool ResetPeak()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        try { MallocTrim(0); } catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>Current resident set size in bytes.</summary>
    public static long? Rss() => Status("VmRSS:");

    /// <summary>Peak resident set size in bytes since the start or the last <see cref="ResetPeak"/>.</summary>
    public static long? PeakRss() => Status("VmHWM:");

    /// <summary>Memory the kernel says can be given to new work without swapping (MemAvailable), in bytes.</summary>
    public static long? Available() => KiB("/proc/meminfo", "MemAvailable:");

    private static long? Status(string field) => KiB("/proc/self/status", field);

    private static long? KiB(string file, string field)
    {
        try
        {
            foreach (var line in File.ReadLines(file))
                if (line.StartsWith(field, StringComparison.Ordinal))
                    return long.Parse(line[field.Length..].Trim().Split(' ')[0]) * 1024;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return null;
    }
}
