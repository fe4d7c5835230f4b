using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hici.Models;

namespace Hici.Bench;

/// <summary>Runs bench/peer_torch.py (PyTorch eager, same shapes, same threads) and parses its JSON lines.</summary>
public static class Peer
{
    public static (Dictionary<(string, int), (double Tok, double Ms)> Rows, Dictionary<string, double> Gflops)? Run(BenchArgs o, ModelConfig c)
    {
        const string py = "/usr/bin/python3";
        var script = FindScript();
        if (!File.Exists(py) || script is null) return null;
        var arg = JsonSerializer.Serialize(new
        {
            threads = o.Threads, dtypes = o.DTypes, lengths = o.Lengths, decode_steps = o.DecodeSteps,
            config = new { hidden = c.HiddenSize, mlp = c.IntermediateSize, layers = c.NumHiddenLayers, heads = c.NumAttentionHeads,
                           kv_heads = c.NumKeyValueHeads, head_dim = c.HeadDim, vocab = c.VocabSize, theta = c.RopeTheta },
        });
        var psi = new ProcessStartInfo(py) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(script); psi.ArgumentList.Add(arg);
        using var p = Process.Start(psi)!;
        var rows = new Dictionary<(string, int), (double, double)>();
        var gf = new Dictionary<string, double>();
        string? line;
        Console.WriteLine("PyTorch eager peer (/usr/bin/python3):");
        while ((line = p.StandardOutput.ReadLine()) is not null)
        {
            var j = JsonNode.Parse(line)!;
            string dt = (string)j["dtype"]!;
            if (j["matmul_gflops"] is JsonNode g) { gf[dt] = (double)g; Console.WriteLine($"  matmul 1024³ {dt}: {(double)g:F0} GFLOP/s"); continue; }
            int t = (int)j["tokens"]!;
            rows[(dt, t)] = ((double)j["prefill_tok_s"]!, (double)j["decode_ms"]!);
            Console.WriteLine($"  {dt} T={t}: prefill {(double)j["prefill_tok_s"]!:F0} tok/s, decode {(double)j["decode_ms"]!:F2} ms/token");
        }
        p.WaitForExit();
        if (p.ExitCode != 0) { Console.WriteLine("  peer failed: " + p.StandardError.ReadToEnd().Trim().Split('\n').LastOrDefault()); return null; }
        return (rows, gf);
    }

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
