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

    public static readonly Option<bool> Force = new("--force")
    {
        Description = "Run even when the memory estimate says the forward cannot fit (it may then fail or be killed)",
    };

    public static void AddComputeOptions(Command cmd)
    {
        cmd.Options.Add(Force);
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

    /// <summary>
    /// Runs a command body: user errors become one line on stderr and exit 1, internal faults one line and exit 70.
    /// Messages are cut to their first line (libtorch appends a native stack of "frame #N" lines; System.Text.Json
    /// could quote input); the full text and stack are printed under --verbose.
    /// </summary>
    public static int Run(ParseResult pr, Func<int> body)
    {
        bool verbose = pr.GetValue(Verbose);
        try { return body(); }
        catch (Exception e)
        {
            var (exit, line) = Classify(e);
            // A user error stays one line; a cut message says where the rest is.
            if (exit == 1 && !verbose && line.Length < e.Message.Trim().Length && !line.EndsWith("--verbose)", StringComparison.Ordinal))
                line += " (details: --verbose)";
            Console.Error.WriteLine(exit == 1 ? $"hici: error: {line}" : $"hici: internal error: {line}");
            if (verbose) Console.Error.WriteLine(e);
            else if (exit != 1) Console.Error.WriteLine("(run with --verbose for the stack trace)");
            return exit;
        }
    }

    /// <summary>Exit code and the one line to print for an exception escaping a command.</summary>
    public static (int Exit, string Line) Classify(Exception e)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } agg) e = agg.InnerExceptions[0];
        if (e is TypeInitializationException { InnerException: { } inner }) e = inner;
        switch (e)
        {
            case HiciException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException
                or UnauthorizedAccessException or System.Text.Json.JsonException or PathTooLongException:
                return (1, OneLine(e.Message));
            case ArgumentException { ParamName: "path" or "fileName" or "sourceFileName" or "destFileName" }:
                return (1, $"a file or folder path is empty or invalid ({OneLine(e.Message)})");
            case OutOfMemoryException or InsufficientMemoryException:
                return (1, $"out of memory ({OneLine(e.Message)}); use a shorter input or a machine with more memory");
            case IOException io when IsDiskFull(io):
                return (1, $"the disk is full ({OneLine(e.Message)})");
        }
        var msg = e.Message;
        if (IsNativeAllocationFailure(msg))
            return (1, $"out of memory: {OneLine(msg)}; use a shorter input, --dtype bf16, or a machine with more memory");
        return (70, $"{e.GetType().Name}: {OneLine(msg)}");
    }

    static bool IsNativeAllocationFailure(string msg) =>
        msg.Contains("DefaultCPUAllocator", StringComparison.Ordinal) || msg.Contains("can't allocate memory", StringComparison.Ordinal)
        || msg.Contains("out of memory", StringComparison.OrdinalIgnoreCase) || msg.Contains("std::bad_alloc", StringComparison.Ordinal);

    static bool IsDiskFull(IOException e) => (e.HResult & 0xFFFF) == 28 /* ENOSPC */ || e.Message.Contains("No space left", StringComparison.Ordinal);

    /// <summary>The first line of a message, without libtorch's "Exception raised from …" tail, at most 4000 characters.</summary>
    public static string OneLine(string message)
    {
        var s = message.Replace("\r", "");
        int nl = s.IndexOf('\n');
        if (nl >= 0) s = s[..nl];
        int raised = s.IndexOf("Exception raised from", StringComparison.Ordinal);
        if (raised > 0) s = s[..raised];
        s = s.Trim();
        return s.Length > 4000 ? s[..3997] + "..." : s;
    }
}
