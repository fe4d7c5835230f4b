using TorchSharp;

namespace Hici.Runtime;

/// <summary>Loads the native backend once and reports why it failed, in words a user can act on.</summary>
public static class TorchRuntime
{
    public sealed record Status(bool Loaded, string? TorchSharpVersion, string? LibTorchVersion, string? Error, string? Advice);

    public static Status Probe()
    {
        var tsv = typeof(torch).Assembly.GetName().Version?.ToString();
        try
        {
            using var t = torch.ones(2, 2);
            _ = t.sum().item<float>();
            return new Status(true, tsv, torch.__version__, null, null);
        }
        catch (Exception e)
        {
            var inner = e;
            while (inner.InnerException is not null) inner = inner.InnerException;
            var msg = inner.Message;
            string advice = msg.Contains("GLIBCXX") || e is TypeInitializationException
                ? "TorchSharp 0.107's libLibTorchSharp.so needs GLIBCXX_3.4.32 (GCC 13+ libstdc++). On Debian 12 run 'bash scripts/setup.sh' (installs libstdc++6 from Debian 13 with a low apt pin); elsewhere install GCC 13+'s libstdc++ (Ubuntu 24.04+, Debian 13+ have it). Then delete bin/*/cpu/ left by the failed load."
                : "Check that the TorchSharp-cpu native package restored (dotnet restore) and that the machine is x64 Linux, Windows or macOS arm64.";
            return new Status(false, tsv, null, $"{e.GetType().Name}: {msg}", advice);
        }
    }

    /// <summary>Sets intra-op threads explicitly (libtorch's default may oversubscribe a shared box).</summary>
    public static void SetThreads(int? threads)
    {
        int n = threads is > 0 ? threads.Value : Environment.ProcessorCount;
        torch.set_num_threads(n);
    }
}
