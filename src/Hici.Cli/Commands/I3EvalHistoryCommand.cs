using System.CommandLine;
using Hici.I3;
using Hici.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Cli.Commands;

public static class I3EvalHistoryCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "i3 model folder", Required = true };
        var data = new Option<string[]>("--data") { Description = "A flat token file (FILE.bin, e.g. OUTPUT/data/heldout.bin) or text files/folders (encoded with the model's tokenizer, <EOS> after each)", Required = true, AllowMultipleArgumentsPerToken = true };
        var format = I3Command.Format();
        var histories = new Option<string>("--histories") { Description = "History capacities to compare (compressed chunks; capped at the model's)", DefaultValueFactory = _ => "0,1,2,4,8" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Score at most this many tokens", DefaultValueFactory = _ => 32768 };
        var cmd = new Command("eval-history", "Score one long text streamed chunk by chunk with 0, 1, 2, 4, 8 compressed history chunks: what the memory buys");
        foreach (var o in new Option[] { model, data, format, histories, maxTokens }) cmd.Options.Add(o);
        cmd.Options.Add(Common.Threads);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            Common.InitTorch(pr);
            var dir = pr.GetValue(model)!;
            using var m = I3Model.FromPretrained(dir);
            var paths = pr.GetValue(data)!;
            int[] ids = paths.Length == 1 && paths[0].EndsWith(".bin", StringComparison.OrdinalIgnoreCase)
                ? I3Corpus.ReadBin(paths[0], m.Config.VocabSize)
                : I3Corpus.Pack(I3Corpus.Files(paths, I3Corpus.ParseFormat(pr.GetValue(format)!)).Select(f => I3Corpus.ReadDocument(f, I3Corpus.ParseFormat(pr.GetValue(format)!))), HfTokenizer.Load(dir));
            if (ids.Length > pr.GetValue(maxTokens)) ids = ids[..pr.GetValue(maxTokens)];
            if (ids.Length < 2) throw new HiciException($"{string.Join(", ", paths)}: fewer than 2 tokens to score");
            var caps = ParseCaps(pr.GetValue(histories)!, m.Config.MaxCompressedChunks);
            var o = pr.InvocationConfiguration.Output;
            int W = m.Config.KernelWindow, M = m.Config.MaxCompressedChunks;
            long steadyFrom = (long)M * W;
            o.WriteLine($"{ids.Length:N0} tokens, chunk {W}; steady state = positions ≥ {steadyFrom:N0} (after {M} chunks)");
            o.WriteLine($"{"history",8} {"NLL",8} {"ppl",9} {"NLL steady",11} {"ppl steady",11}");
            foreach (int k in caps)
            {
                var lp = Progress.Run($"history {k}", report => Score(m, ids, k, report));
                double all = -lp.Average();
                var steady = lp.Skip((int)Math.Min(steadyFrom, lp.Length)).ToArray();
                string s = steady.Length == 0 ? "—" : $"{-steady.Average():F4}";
                string sp = steady.Length == 0 ? "—" : $"{Math.Exp(-steady.Average()):F2}";
                o.WriteLine($"{k,8} {all,8:F4} {Math.Exp(all),9:F2} {s,11} {sp,11}");
            }
            return 0;
        }));
        return cmd;
    }

    private static int[] ParseCaps(string s, int max)
    {
        var caps = new List<int>();
        foreach (var part in s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, out int k) || k < 0) throw new HiciException($"--histories '{s}': expected comma-separated non-negative integers");
            if (k <= max && !caps.Contains(k)) caps.Add(k);
        }
        if (caps.Count == 0) throw new HiciException($"--histories '{s}': no capacity ≤ the model's {max}");
        return caps.ToArray();
    }

    /// <summary>log p of every next token, the stream run in chunk-sized pieces with a history of at most <paramref name="capacity"/> chunks.</summary>
    public static float[] Score(I3Model m, int[] ids, int capacity, Action<int, int>? report)
    {
        using var noGrad = torch.no_grad();
        using var state = m.NewStream(1, capacity);
        var lp = new float[ids.Length - 1];
        int W = m.Config.KernelWindow;
        for (int start = 0; start < ids.Length - 1; start += W)
        {
            using var scope = torch.NewDisposeScope();
            int n = Math.Min(W, ids.Length - 1 - start);
            var x = torch.tensor(ids.AsSpan(start, n).ToArray().Select(i => (long)i).ToArray());
            var logits = m.Forward(x, state)[0];
            var next = torch.tensor(ids.AsSpan(start + 1, n).ToArray().Select(i => (long)i).ToArray()).unsqueeze(1);
            nn.functional.log_softmax(logits, -1).gather(1, next).squeeze(1).data<float>().CopyTo(lp, start);
            report?.Invoke(start + n, ids.Length - 1);
        }
        return lp;
    }
}
