using System.CommandLine;
using Hici.Runtime;
using TorchSharp;

namespace Hici.Cli;

/// <summary>Options every compute command takes, and the one place where errors become exit codes.</summary>
public static class Common
{
    public static readonly Option<string> Dtype = new("--dtype")
    {
        Description = "Compute dtype: fp32 | bf16",
        DefaultValueFactory = _ => "fp32",
    };
    public const int MaxThreads = 1024;
    public static readonly Option<int?> Threads = MakeThreads();

    private static Option<int?> MakeThreads()
    {
        var o = new Option<int?>("--threads") { Description = $"Intra-op threads, 1..{MaxThreads} (default: all cores)" };
        // 0 or a negative count used to mean "all cores" silently, and a huge one started that many native threads.
        o.Validators.Add(r =>
        {
            int? n;
            try { n = r.GetValueOrDefault<int?>(); }
            catch (InvalidOperationException) { return; }   // not an int: the parser reports that itself
            if (n is < 1 or > MaxThreads)
                r.AddError($"--threads {n}: must be between 1 and {MaxThreads}");
        });
        return o;
    }
    public static readonly Option<string> Device = new("--device")
    {
        Description = "cpu | cuda (cuda needs a CUDA build of TorchSharp referenced instead of TorchSharp-cpu)",
        DefaultValueFactory = _ => "cpu",
    };
    public static readonly Option<bool> Verbose = new("--verbose", "-v")
    {
        Description = "Print stack traces and extra detail",
        Recursive = true,
    };

    public static void AddComputeOptions(Command cmd)
    {
        cmd.Options.Add(Dtype);
        cmd.Options.Add(Threads);
        cmd.Options.Add(Device);
    }

    public static torch.ScalarType ParseDtype(string s) => s.ToLowerInvariant() switch
    {
        "fp32" or "float32" or "f32" => torch.ScalarType.Float32,
        "bf16" or "bfloat16" => torch.ScalarType.BFloat16,
        _ => throw new HiciException($"--dtype: '{s}' is not supported (use fp32 or bf16)"),
    };

    public static torch.Device ParseDevice(string s)
    {
        switch (s.ToLowerInvariant())
        {
            case "cpu": return torch.CPU;
            case "cuda":
                if (!torch.cuda.is_available())
                    throw new HiciException("--device cuda: CUDA is not available (this build references TorchSharp-cpu; reference a TorchSharp CUDA package and run on a machine with an NVIDIA GPU)");
                return torch.CUDA;
            default: throw new HiciException($"--device: '{s}' is not supported (use cpu or cuda)");
        }
    }

    /// <summary>Applies --threads and checks the native backend loads, with advice if not.</summary>
    public static void InitTorch(ParseResult pr)
    {
        var st = TorchRuntime.Probe();
        if (!st.Loaded) throw new HiciException($"the native TorchSharp backend does not load ({st.Error}). {st.Advice}");
        TorchRuntime.SetThreads(pr.GetValue(Threads));
    }

    /// <summary>Runs a command body: user errors become one line on stderr and exit 1.</summary>
    public static int Run(ParseResult pr, Func<int> body)
    {
        bool verbose = pr.GetValue(Verbose);
        try { return body(); }
        catch (Exception e) when (e is HiciException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            Console.Error.WriteLine($"hici: error: {e.Message}");
            if (verbose) Console.Error.WriteLine(e);
            return 1;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"hici: internal error: {e.GetType().Name}: {e.Message}");
            if (verbose) Console.Error.WriteLine(e); else Console.Error.WriteLine("(run with --verbose for the stack trace)");
            return 70;
        }
    }
}
