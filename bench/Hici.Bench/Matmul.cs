using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Bench;

public static class Matmul
{
    /// <summary>The machine's n³ matmul rate for a dtype: the floor every other number is compared with.</summary>
    public static double Gflops(int n, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var a = randn(n, n).to(dtype); var b = randn(n, n).to(dtype);
        matmul(a, b).Dispose();
        var sw = Stopwatch.StartNew(); int reps = 0;
        while (sw.Elapsed.TotalSeconds < 1.0) { matmul(a, b).Dispose(); reps++; }
        return 2.0 * n * n * n * reps / sw.Elapsed.TotalSeconds / 1e9;
    }

    /// <summary>Memory copy rate (GB/s counting read + write) of a 256 MiB fp32 tensor: the bandwidth floor.</summary>
    public static double CopyGBs()
    {
        using var scope = NewDisposeScope();
        var a = ones(64L << 20); var b = empty_like(a);
        b.copy_(a);
        var sw = Stopwatch.StartNew(); int reps = 0;
        while (sw.Elapsed.TotalSeconds < 1.0) { b.copy_(a); reps++; }
        return 2.0 * a.NumberOfElements * 4 * reps / sw.Elapsed.TotalSeconds / 1e9;
    }
}
