using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hici.Models;

namespace Hici.Bench;

/// <summary>
/// Runs bench/peer_torch.py (PyTorch, same shapes, same threads) and parses its JSON lines. Where the PyTorch 2.6
/// peer environment exists (a Debian 13 chroot holding python3-torch 2.6 and libopenblas0-pthread, default
/// /srv/peer-trixie with a READY file, or $HICI_PEER_ROOT) the script runs there with SDPA; otherwise with the
/// host's /usr/bin/python3 (Debian 12: torch 1.13, eager attention), and the label says which.
/// </summary>
public static class Peer
{
    public sealed record Result(string Label, Dictionary<(string, int), (double Tok, double Ms)> Rows, Dictionary<string, double> Gflops);

    /// <summary>OpenBLAS cores older than AVX2: a CPU with AVX2/AVX-512 that is detected as one of these is mis-detected.</summary>
    private static readonly string[] PreAvx2Cores =
        { "Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Katmai", "Coppermine", "Northwood", "Banias",
          "Opteron", "Barcelona", "Bobcat", "Sandybridge", "Bulldozer", "Piledriver", "Generic" };

    public static Result? Run(BenchArgs o, ModelConfig c)
    {
        var rows = new Dictionary<(string, int), (double, double)>();
        var gf = new Dictionary<string, double>();
        var label = Exec(new { threads = o.Threads, dtypes = o.DTypes, lengths = o.Lengths, decode_steps = o.DecodeSteps, config = ConfigArg(c) }, j =>
        {
            string dt = (string)j["dtype"]!;
            if (j["matmul_gflops"] is JsonNode g) { gf[dt] = (double)g; Console.WriteLine($"  matmul 1024³ {dt}: {(double)g:F0} GFLOP/s"); return; }
            int t = (int)j["tokens"]!;
            rows[(dt, t)] = ((double)j["prefill_tok_s"]!, (double)j["decode_ms"]!);
            Console.WriteLine($"  {dt} T={t}: prefill {(double)j["prefill_tok_s"]!:F0} tok/s, decode {(double)j["decode_ms"]!:F2} ms/token");
        });
        return label is null ? null : new Result(label, rows, gf);
    }

    public sealed record TrainResult(string Label, Dictionary<string, (double Fwd, double Bwd, double Opt)> Rows, Dictionary<string, double> Gflops);

    /// <summary>The training step of bench/peer_torch.py's train mode (Hici.Bench --train): seconds per phase by dtype.</summary>
    public static TrainResult? RunTrain(BenchArgs o, ModelConfig c, int tokens, int steps, int loraRank, double loraAlpha)
    {
        var rows = new Dictionary<string, (double, double, double)>();
        var gf = new Dictionary<string, double>();
        var label = Exec(new
        {
            threads = o.Threads, dtypes = o.DTypes, train_length = tokens, train_steps = steps, lora_r = loraRank, lora_alpha = loraAlpha,
            lengths = new[] { tokens }, decode_steps = 0, config = ConfigArg(c),
        }, j =>
        {
            string dt = (string)j["dtype"]!;
            if (j["matmul_gflops"] is JsonNode g) { gf[dt] = (double)g; Console.WriteLine($"  matmul 1024³ {dt}: {(double)g:F0} GFLOP/s"); return; }
            var r = ((double)j["fwd_s"]!, (double)j["bwd_s"]!, (double)j["opt_s"]!);
            rows[dt] = r;
            Console.WriteLine($"  {dt} full: forward {r.Item1:F2} s, backward {r.Item2:F2} s, optimizer {r.Item3 * 1000:F0} ms");
        });
        return label is null ? null : new TrainResult(label, rows, gf);
    }

    private static object ConfigArg(ModelConfig c) => new
    {
        hidden = c.HiddenSize, mlp = c.IntermediateSize, layers = c.NumHiddenLayers, heads = c.NumAttentionHeads,
        kv_heads = c.NumKeyValueHeads, head_dim = c.HeadDim, vocab = c.VocabSize, theta = c.RopeTheta,
    };

    /// <summary>Runs the peer script with <paramref name="arg"/> (JSON) and hands each result line to <paramref name="onRow"/>;
    /// returns the peer's label, or null when there is no peer or it failed.</summary>
    private static string? Exec(object arg, Action<JsonNode> onRow)
    {
        var script = FindScript();
        if (script is null) return null;
        var launcher = Launcher();
        if (launcher is null) return null;
        var (exe, prefix, where) = launcher.Value;

        // Which OpenBLAS kernel does the peer's torch pick? Override only a mis-detection (checked, not guessed).
        var env = new Dictionary<string, string>();
        var core = DetectedCore(exe, prefix);
        string blas = core is null ? "OpenBLAS reported no core: not loaded? (reference BLAS is ~50x slower; install libopenblas0-pthread)"
            : $"OpenBLAS core: {core} (detected)";
        if (core is not null && PreAvx2Cores.Contains(core) && CpuFlags() is { } flags && (flags.Contains("avx512f") || flags.Contains("avx2")))
        {
            env["OPENBLAS_CORETYPE"] = flags.Contains("avx512f") ? "SkylakeX" : "Haswell";
            blas = $"OpenBLAS detected {core} on a CPU with {(flags.Contains("avx512f") ? "avx512f" : "avx2")}: OPENBLAS_CORETYPE={env["OPENBLAS_CORETYPE"]} for the peer";
        }

        var psi = Start(exe, prefix, env);
        psi.ArgumentList.Add("-");                          // the script comes on stdin: nothing is copied into the chroot
        psi.ArgumentList.Add(JsonSerializer.Serialize(arg));
        using var p = Process.Start(psi)!;
        p.StandardInput.Write(File.ReadAllText(script));
        p.StandardInput.Close();
        var stderr = p.StandardError.ReadToEndAsync();
        string label = "PyTorch";
        string? line;
        while ((line = p.StandardOutput.ReadLine()) is not null)
        {
            var j = JsonNode.Parse(line)!;
            if (j["peer"] is JsonNode pl)
            {
                label = $"{(string)pl!} ({where}; {blas})";
                Console.WriteLine($"PyTorch peer: {label}");
                continue;
            }
            onRow(j);
        }
        p.WaitForExit();
        if (p.ExitCode != 0) { Console.WriteLine("  peer failed: " + stderr.Result.Trim().Split('\n').LastOrDefault()); return null; }
        return label;
    }

    /// <summary>(program, leading arguments, description): the PyTorch 2.6 chroot when present, else the host python.</summary>
    private static (string Exe, string[] Prefix, string Where)? Launcher()
    {
        string root = Environment.GetEnvironmentVariable("HICI_PEER_ROOT") ?? "/srv/peer-trixie";
        if (File.Exists(Path.Combine(root, "READY")) && File.Exists(Path.Combine(root, "usr/bin/python3")) && File.Exists("/usr/sbin/chroot"))
            return ("/usr/sbin/chroot", new[] { root, "/usr/bin/python3" }, $"Debian 13 chroot {root}");
        if (File.Exists("/usr/bin/python3")) return ("/usr/bin/python3", Array.Empty<string>(), "host /usr/bin/python3 (Debian 12: torch 1.13, no SDPA)");
        return null;
    }

    private static ProcessStartInfo Start(string exe, string[] prefix, Dictionary<string, string> env)
    {
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (var a in prefix) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        return psi;
    }

    /// <summary>The core OpenBLAS reports (OPENBLAS_VERBOSE=2 prints "Core: X" when torch loads it), or null.</summary>
    private static string? DetectedCore(string exe, string[] prefix)
    {
        try
        {
            var psi = Start(exe, prefix, new() { ["OPENBLAS_VERBOSE"] = "2" });
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("import torch; torch.ones(64, 64) @ torch.ones(64, 64)");
            using var p = Process.Start(psi)!;
            p.StandardInput.Close();
            var err = p.StandardError.ReadToEndAsync();
            string outText = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            var core = (outText + "\n" + err.Result).Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("Core:"));
            return core?["Core:".Length..].Trim();
        }
        catch (Exception) { return null; }
    }

    private static string? CpuFlags() =>
        File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags")) : null;

    static string? FindScript()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var f = Path.Combine(d.FullName, "bench", "peer_torch.py");
            if (File.Exists(f)) return f;
        }
        return null;
    }
}
