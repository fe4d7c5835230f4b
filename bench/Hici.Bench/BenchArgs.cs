namespace Hici.Bench;

public sealed record BenchArgs(int[] Lengths, string[] DTypes, int Threads, int DecodeSteps, bool NoPeer, string? Out)
{
    public static BenchArgs Parse(string[] a)
    {
        int[] lengths = { 512, 2048, 8192 };
        string[] dtypes = { "fp32", "bf16" };
        int threads = 2, steps = 16; bool noPeer = false; string? outp = null;
        for (int i = 0; i < a.Length; i++)
        {
            string Next() => i + 1 < a.Length ? a[++i] : throw new ArgumentException($"{a[i]} needs a value");
            switch (a[i])
            {
                case "--lengths": lengths = Next().Split(',').Select(int.Parse).ToArray(); break;
                case "--dtypes": dtypes = Next().Split(','); break;
                case "--threads": threads = int.Parse(Next()); break;
                case "--decode-steps": steps = int.Parse(Next()); break;
                case "--no-peer": noPeer = true; break;
                case "--out": outp = Next(); break;
                default: throw new ArgumentException($"unknown argument {a[i]}");
            }
        }
        if (dtypes.Any(d => d is not ("fp32" or "bf16"))) throw new ArgumentException("--dtypes takes fp32,bf16");
        return new(lengths, dtypes, threads, steps, noPeer, outp);
    }
}
