namespace Hici.Bench;

public sealed record BenchArgs(int[] Lengths, string[] DTypes, int Threads, int DecodeSteps, bool NoPeer, string? Out, bool Hici = false, bool LengthsGiven = false, bool Stream = false, int Segment = 4096, bool Train = false, bool AttentionOnly = false, bool DecodeOnly = false, bool Dca = false, int PretrainingLength = 2048)
{
    public const string Usage = """
        Hici.Bench: speed numbers for HiCI.NET (a benchmark, not a test).
          (default)   prefill tokens/s and decode ms/token of a 58M Qwen3-shaped random model, the measured
                      matmul GFLOP/s and the share of it achieved, and PyTorch eager on the same shapes as a ratio
          --hici      prefill full vs HiCI attention (4 segments) beside the expected FLOP ratio
          --stream    streaming HiCI scoring (causal_shift): seconds and peak RSS per length (default 32K,64K,128K)
          --segment N segment length for --stream (default 4096)
          --train     one training step (LoRA r 8 on q/k/v/o, AdamW) at 2K tokens (or the first --lengths): tokens/s,
                      forward/backward/optimizer split, share of the matmul rate, full vs hici, and PyTorch as a ratio
          --decode    decode ms/token at 1K/4K/16K context: column vs row weight layout, packed vs separate projections
          --attention causal prefill attention of one layer: SDPA (flash) vs blocked GEMMs, ms, GFLOP/s, error
          --dca       prefill full vs dual chunk attention (default 2K,4K,8K,16K; --pretraining-length N, default 2048)
        Options:
          --lengths 512,2048,8192   prompt lengths (--hici default: 2048,8192,16384)
          --dtypes fp32,bf16        dtypes (default both)
          --threads N               intra-op threads for both sides (default 2)
          --decode-steps N          decode steps timed after each prefill (default 16)
          --no-peer                 skip the PyTorch peer (/usr/bin/python3 with torch: apt-get install python3-torch libopenblas0-pthread)
          --out FILE.json           also write the results as JSON
        """;

    public static BenchArgs Parse(string[] a)
    {
        int[] lengths = { 512, 2048, 8192 };
        string[] dtypes = { "fp32", "bf16" };
        int threads = 2, steps = 16, segment = 4096, pretraining = 2048; bool noPeer = false, attention = false, decode = false, hici = false, stream = false, train = false, dca = false, lengthsGiven = false; string? outp = null;
        for (int i = 0; i < a.Length; i++)
        {
            string Next() => i + 1 < a.Length ? a[++i] : throw new ArgumentException($"{a[i]} needs a value");
            switch (a[i])
            {
                case "--lengths": lengths = Next().Split(',').Select(int.Parse).ToArray(); lengthsGiven = true; break;
                case "--hici": hici = true; break;
                case "--stream": stream = true; break;
                case "--train": train = true; break;
                case "--attention": attention = true; break;
                case "--decode": decode = true; break;
                case "--segment": segment = int.Parse(Next()); break;
                case "--dca": dca = true; break;
                case "--pretraining-length": pretraining = int.Parse(Next()); break;
                case "--dtypes": dtypes = Next().Split(','); break;
                case "--threads": threads = int.Parse(Next()); break;
                case "--decode-steps": steps = int.Parse(Next()); break;
                case "--no-peer": noPeer = true; break;
                case "--out": outp = Next(); break;
                case "-h" or "--help": Console.WriteLine(Usage); Environment.Exit(0); break;
                default: throw new ArgumentException($"unknown argument {a[i]}");
            }
        }
        if (dtypes.Any(d => d is not ("fp32" or "bf16"))) throw new ArgumentException("--dtypes takes fp32,bf16");
        if (segment <= 0) throw new ArgumentException("--segment must be positive");
        return new(lengths, dtypes, threads, steps, noPeer, outp, hici, lengthsGiven, stream, segment, train, attention, decode, dca, pretraining);
    }
}
