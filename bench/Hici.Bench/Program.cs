using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Hici.Bench;
using Hici.Models;
using Hici.Runtime;
using TorchSharp;
using static TorchSharp.torch;

// hici-bench: prefill tokens/s and decode ms/token for the ~58M Qwen3-shaped random model, the machine's
// matmul rate in the same run, and the same model in PyTorch (2.6 with SDPA in the peer chroot, else Debian 12's 1.13) as a ratio.
// Usage: dotnet run -c Release --project bench/Hici.Bench -- [--lengths 512,2048,8192] [--dtypes fp32,bf16]
//        [--threads 2] [--decode-steps 16] [--no-peer] [--out bench-results.json]
//        --hici [--lengths 2048,8192,16384]: prefill time full vs HiCI attention (fp32) beside the expected FLOP ratio
//        --decode [--lengths 1024,4096,16384]: decode ms/token, column vs row weight layout, packed vs separate projections
//        --attention [--lengths 256,512,2048,8192]: one layer's causal attention, SDPA vs blocked GEMMs
//        --dca [--pretraining-length 2048] [--lengths 2048,4096,8192,16384]: prefill time full vs dual chunk attention
//        --stream [--segment 4096] [--lengths 32768,65536,131072]: streaming HiCI scoring time and peak RSS
//        --train [--lengths 2048] [--dtypes fp32,bf16]: one training step (fwd/bwd/optimizer), full vs hici, PyTorch beside it
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
BenchArgs opts;
try { opts = BenchArgs.Parse(args); }
catch (Exception e) when (e is ArgumentException or FormatException) { Console.Error.WriteLine($"Hici.Bench: {e.Message}\n{BenchArgs.Usage}"); return 2; }
var st = TorchRuntime.Probe();
if (!st.Loaded) { Console.Error.WriteLine($"native backend does not load: {st.Error}\n{st.Advice}"); return 1; }
torch.set_num_threads(opts.Threads);
Console.WriteLine($"HiCI.NET benchmark: TorchSharp {st.TorchSharpVersion}, libtorch {st.LibTorchVersion}, {opts.Threads} threads, {Environment.ProcessorCount} cores");
Console.WriteLine($"CPU: {CpuModel()}; hardware bf16 (avx512_bf16/amx_bf16): {(CpuFeatures.NativeBf16 ? "yes" : "no")}; prefill attention kernel: {BlockedAttention.Kernel.ToString().ToLowerInvariant()}; {LoadAverage()}");

if (opts.Stream)
{
    foreach (var dt in opts.DTypes)
        StreamBench.Run(opts.LengthsGiven ? opts.Lengths : StreamBench.DefaultLengths, opts.Segment,
            dt == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32);
    return 0;
}

if (opts.Dca)
{
    DcaBench.Run(opts.LengthsGiven ? opts.Lengths : DcaBench.DefaultLengths, opts.PretrainingLength,
        opts.DTypes.Select(dt => dt == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32));
    return 0;
}

if (opts.Train)
{
    TrainBench.Run(opts);
    return 0;
}

if (opts.DecodeOnly)
{
    DecodeBench.Run(opts.LengthsGiven ? opts.Lengths : DecodeBench.DefaultLengths, opts.DTypes, opts.DecodeSteps);
    return 0;
}

if (opts.AttentionOnly)
{
    AttentionBench.Run(opts.LengthsGiven ? opts.Lengths : AttentionBench.DefaultLengths, opts.DTypes);
    return 0;
}

if (opts.Hici)
{
    HiciBench.Run(opts.LengthsGiven ? opts.Lengths : HiciBench.DefaultLengths, Matmul.Gflops(1024, ScalarType.Float32));
    return 0;
}

int maxLen = opts.Lengths.Max() + opts.DecodeSteps + 1;
var cfg = BenchModel.Config(maxLen);
Console.WriteLine($"model: Qwen3-shaped, {BenchModel.Parameters(cfg) / 1e6:F1}M parameters (hidden 512, 8 layers, heads 8/4, head_dim 64, MLP 1536, vocab 32000, untied lm_head)");

var rows = new List<Row>();
var gflops = new Dictionary<string, double>();
double copyGbs = Matmul.CopyGBs();
Console.WriteLine($"memory copy (256 MiB): {copyGbs:F1} GB/s (read + write): the floor for decode, which reads every weight per token");
foreach (var dt in opts.DTypes)
{
    var dtype = dt == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
    gflops[dt] = Matmul.Gflops(1024, dtype);
    Console.WriteLine($"matmul 1024³ {dt}: {gflops[dt]:F0} GFLOP/s");
    using var model = RandomWeights.Model(cfg, dtype, seed: 0);
    model.eval();
    using var _ = torch.no_grad();
    foreach (var t in opts.Lengths)
    {
        var (pre, dec) = Measure(model, t, opts.DecodeSteps);
        var r = new Row(dt, t, t / pre, dec * 1000,
            BenchModel.PrefillFlops(cfg, t) / pre / 1e9, BenchModel.DecodeBytes(cfg, t + opts.DecodeSteps / 2, dtype) / dec / 1e9);
        rows.Add(r);
        Console.WriteLine($"  {dt} T={t}: prefill {r.PrefillTokS:F0} tok/s ({r.PrefillGflops:F0} GFLOP/s), decode {r.DecodeMs:F2} ms/token ({r.DecodeGbs:F1} GB/s of weights + KV read)");
    }
}

Dictionary<(string, int), (double Tok, double Ms)> peer = new();
double? peerGf32 = null, peerGf16 = null;
string peerLabel = "none";
if (!opts.NoPeer)
{
    var p = Peer.Run(opts, cfg);
    if (p is null) Console.WriteLine("PyTorch peer: not run (needs the PyTorch 2.6 chroot /srv/peer-trixie, or /usr/bin/python3 with torch: apt-get install python3-torch libopenblas0-pthread)");
    else { peer = p.Rows; peerGf32 = p.Gflops.GetValueOrDefault("fp32"); peerGf16 = p.Gflops.GetValueOrDefault("bf16"); peerLabel = p.Label; }
}

Console.WriteLine();
Console.WriteLine($"PyTorch column: {peerLabel}");
Console.WriteLine("| dtype | tokens | prefill tok/s | prefill GFLOP/s | share of matmul peak | decode ms/token | decode GB/s read | share of copy GB/s | PyTorch prefill tok/s | prefill ratio (ours/PyTorch) | PyTorch decode ms/token | decode ratio (PyTorch/ours) |");
Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
foreach (var r in rows)
{
    var has = peer.TryGetValue((r.DType, r.Tokens), out var pr);
    Console.WriteLine($"| {r.DType} | {r.Tokens} | {r.PrefillTokS:F0} | {r.PrefillGflops:F0} | {r.PrefillGflops / gflops[r.DType] * 100:F0}% | {r.DecodeMs:F2} | {r.DecodeGbs:F1} | {r.DecodeGbs / copyGbs * 100:F0}% | " +
        (has ? $"{pr.Tok:F0} | {r.PrefillTokS / pr.Tok:F2}× | {pr.Ms:F2} | {pr.Ms / r.DecodeMs:F2}× |" : "– | – | – | – |"));
}
Console.WriteLine();
Console.WriteLine($"matmul 1024³ (TorchSharp/libtorch 2.10): " + string.Join(", ", gflops.Select(kv => $"{kv.Key} {kv.Value:F0} GFLOP/s")) +
    (peerGf32 is null ? "" : $"; PyTorch peer's BLAS: fp32 {peerGf32:F0}" + (peerGf16 is > 0 ? $", bf16 {peerGf16:F0}" : "") + " GFLOP/s"));
Console.WriteLine("share of matmul peak = achieved prefill FLOP rate (weights + causal attention + last lm_head row) / measured 1024³ matmul rate of the same dtype.");
Console.WriteLine("decode GB/s = bytes a decode step must read (every weight matrix, one embedding row, the KV cache so far) / step time; decode is bandwidth-bound, so compare it with the copy rate.");
Console.WriteLine("prefill = best of 3 runs; decode = median step of the steps timed after the last prefill.");
Console.WriteLine($"at the end: {LoadAverage()} (a load above the core count means the numbers are noisy)");
if (opts.Out is not null)
{
    File.WriteAllText(opts.Out, JsonSerializer.Serialize(new { rows, gflops, peerLabel, peer = peer.Select(kv => new { dtype = kv.Key.Item1, tokens = kv.Key.Item2, kv.Value.Tok, kv.Value.Ms }) }, new JsonSerializerOptions { WriteIndented = true, IncludeFields = true }));
    Console.WriteLine($"results written to {opts.Out}");
}
return 0;

static (double PrefillSeconds, double DecodeSecondsPerToken) Measure(CausalLM model, int t, int steps)
{
    using var gen = new Generator(); gen.manual_seed(t);
    using var ids = torch.randint(0, model.Config.VocabSize, new long[] { 1, t }, generator: gen);
    using (var warm = model.NewCache(64)) { using var w = model.Forward(ids.narrow(1, 0, Math.Min(t, 48)), warm, lastOnly: true); }
    double pre = double.MaxValue;
    KvCache? cache = null;
    Tensor? logits = null;
    for (int rep = 0; rep < 3; rep++)
    {
        cache?.Dispose(); logits?.Dispose();
        cache = model.NewCache(t + steps + 1);
        var sw0 = Stopwatch.StartNew();
        logits = model.Forward(ids, cache, lastOnly: true);
        pre = Math.Min(pre, sw0.Elapsed.TotalSeconds);
    }
    var tok = logits!.argmax(-1).view(1, 1); logits.Dispose();
    var times = new List<double>();
    for (int i = 0; i < steps; i++)
    {
        var sw = Stopwatch.StartNew();
        using var l = model.Forward(tok, cache!, lastOnly: true);
        var next = l.argmax(-1).view(1, 1);
        times.Add(sw.Elapsed.TotalSeconds);
        tok.Dispose(); tok = next;
    }
    tok.Dispose(); cache!.Dispose();
    times.Sort();
    return (pre, times[times.Count / 2]);
}

static string LoadAverage() =>
    File.Exists("/proc/loadavg") ? "load average " + string.Join(", ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "load average unknown";

static string CpuModel() =>
    (File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name")) : null)?.Split(':', 2)[1].Trim() ?? "unknown";

record Row(string DType, int Tokens, double PrefillTokS, double DecodeMs, double PrefillGflops, double DecodeGbs);
