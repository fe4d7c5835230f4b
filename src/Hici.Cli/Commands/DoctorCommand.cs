using System.CommandLine;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Hici.Runtime;
using TorchSharp;

namespace Hici.Cli.Commands;

public static class DoctorCommand
{
    public static Command Build()
    {
        var quiet = new Option<bool>("--quiet") { Description = "Print nothing; exit 0 only if the native backend loads" };
        var cmd = new Command("doctor", "Check the runtime: .NET, TorchSharp and libtorch versions, threads, CPU features, native backend load");
        cmd.Options.Add(quiet);
        cmd.Options.Add(Common.Threads);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            var st = TorchRuntime.Probe();
            if (pr.GetValue(quiet)) return st.Loaded ? 0 : 1;
            Console.WriteLine($".NET runtime      {RuntimeInformation.FrameworkDescription} ({RuntimeInformation.RuntimeIdentifier})");
            Console.WriteLine($"OS                {RuntimeInformation.OSDescription}");
            Console.WriteLine($"TorchSharp        {st.TorchSharpVersion}");
            Console.WriteLine($"logical cores     {Environment.ProcessorCount}");
            Console.WriteLine($"CPU features      {CpuFeatures()}");
            if (!st.Loaded)
            {
                Console.WriteLine($"native backend    FAILED: {st.Error}");
                Console.WriteLine($"what to do        {st.Advice}");
                return 1;
            }
            TorchRuntime.SetThreads(pr.GetValue(Common.Threads));
            Console.WriteLine($"libtorch          {st.LibTorchVersion}");
            Console.WriteLine($"native backend    loads");
            Console.WriteLine($"threads           {torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} inter-op");
            Console.WriteLine($"CUDA              {(torch.cuda.is_available() ? $"available ({torch.cuda.device_count()} devices)" : "not available (TorchSharp-cpu build)")}");
            Console.WriteLine($"matmul 512³ fp32  {MatmulGflops(512, torch.ScalarType.Float32):F0} GFLOP/s");
            Console.WriteLine($"matmul 512³ bf16  {MatmulGflops(512, torch.ScalarType.BFloat16):F0} GFLOP/s");
            return 0;
        }));
        return cmd;
    }

    static string CpuFeatures()
    {
        var f = new List<string>();
        if (RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86)
        {
            if (Avx2.IsSupported) f.Add("avx2");
            if (Fma.IsSupported) f.Add("fma");
            if (Avx512F.IsSupported) f.Add("avx512f");
            if (Avx512BW.IsSupported) f.Add("avx512bw");
        }
        else f.Add(RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant());
        foreach (var x in new[] { "avx512_bf16", "amx_bf16", "avx512_vnni" })
            if (Hici.Runtime.CpuFeatures.Has(x)) f.Add(x);
        return string.Join(' ', f);
    }

    static double MatmulGflops(int n, torch.ScalarType dt)
    {
        using var scope = torch.NewDisposeScope();
        var a = torch.randn(n, n).to(dt); var b = torch.randn(n, n).to(dt);
        torch.matmul(a, b);
        var sw = System.Diagnostics.Stopwatch.StartNew(); int reps = 0;
        while (sw.Elapsed.TotalSeconds < 0.3) { torch.matmul(a, b).Dispose(); reps++; }
        return 2.0 * n * n * n * reps / sw.Elapsed.TotalSeconds / 1e9;
    }
}
