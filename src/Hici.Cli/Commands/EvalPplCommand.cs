using System.CommandLine;
using Hici.Evaluation;
using Hici.Hierarchical;
using Hici.IO;
using Hici.Loading;
using Hici.Models;

namespace Hici.Cli.Commands;

/// <summary><c>hici eval ppl</c> and <c>hici eval merge-shards</c>: perplexity with the reference's sliding windows.</summary>
public static class EvalPplCommand
{
    public static Command Build()
    {
        var data = new Option<string>("--data") { Description = "Flat token file (FILE.bin; dtype from FILE.bin.json, else uint16 if the vocabulary fits, else uint32)", Required = true };
        var seqLen = new Option<int>("--seq-len") { Description = "Window length in tokens", Required = true };
        var contextSize = new Option<int>("--context-size") { Description = "Training context: > max_position_embeddings sets linear RoPE ceil(ctx/max) (Llama) or ctx/max (Qwen3); default seq-len (with --attention chunk: no RoPE edit, as the DCA harness)", DefaultValueFactory = _ => -1 };
        var stride = new Option<int>("--stride") { Description = "Window start step (the reference: 256)", DefaultValueFactory = _ => 256 };
        var maxWindows = new Option<int?>("--max-windows") { Description = "Evaluate only the first N windows" };
        var shard = new Option<string?>("--shard") { Description = "i/n: evaluate windows i, i+n, i+2n, … (merge the n outputs with hici eval merge-shards)" };
        var chunk = new Option<int>("--chunk") { Description = "Positions per lm_head pass (memory bound)", DefaultValueFactory = _ => 512 };
        var stream = new Option<bool>("--stream") { Description = "Score each window segment by segment, carrying only what the next segment needs (HiCI causal_shift/causal_shift_g; memory grows with the segment, not the window)" };
        var cmd = new Command("ppl", "Perplexity, reference protocol: windows at range(0, len − seq_len, 256), every position scored, fp32 log-softmax");
        foreach (var o in new Option[] { data, seqLen, contextSize, stride, maxWindows, shard, chunk, stream, EvalCommon.Out }) cmd.Options.Add(o);
        EvalCommon.AddModelOptions(cmd, tokenizer: false);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            string dir = pr.GetValue(EvalCommon.Model) ?? throw new HiciException("--model DIR is required");
            if (!Directory.Exists(dir)) throw new HiciException($"{dir}: no such model folder");
            var cfg = ModelLoader.Plan(EvalCommon.Request(pr)).Config;   // null for models without RoPE (e.g. i3)
            // the reference's DCA harness (ChunkLlama/ppl/test_ppl*.py) loads the model without any RoPE edit
            bool dca = pr.GetValue(ModelOptions.Attention)?.ToLowerInvariant() == DualChunk.DualChunkImplementation.Id;
            int ctx = pr.GetValue(contextSize) > 0 ? pr.GetValue(contextSize) : dca && cfg is not null ? cfg.MaxPositionEmbeddings : pr.GetValue(seqLen);
            var o = new PerplexityOptions(pr.GetValue(seqLen), pr.GetValue(stride), ctx, pr.GetValue(maxWindows), ParseShard(pr.GetValue(shard)), pr.GetValue(chunk));
            if (o.Chunk <= 0) throw new HiciException($"--chunk must be positive (got {o.Chunk})");
            string path = pr.GetValue(data)!;
            string outPath = EvalCommon.CheckOut(pr.GetValue(EvalCommon.Out), o.Shard is { } s ? $"ppl.shard{s.Index}of{s.Count}.json" : "ppl.json");
            var rope = cfg is null ? null : Perplexity.RopeScalingFor(cfg, o.ContextSize);
            var plan = ModelLoader.Plan(EvalCommon.Request(pr, rope));
            var tokens = Perplexity.ReadTokens(path, plan.VocabSize);      // bad data fails before the model loads
            bool streamed = pr.GetValue(stream);
            string attention = streamed ? HiciStreamScorer.Describe(plan.Config, o.SeqLen)      // needs a causal HiCI mode
                                        : plan.DescribeAttention(o.SeqLen).Text;                // a window the attention cannot run fails here
            var (all, mine) = Perplexity.Plan(path, tokens.Length, o);
            var log = new ResumeLog<double>(EvalCommon.PartialPath(outPath),
                $"ppl model={Path.GetFullPath(dir)} data={Path.GetFullPath(path)} tokens={tokens.Length} seq={o.SeqLen} stride={o.Stride} ctx={o.ContextSize} max={o.MaxWindows} shard={pr.GetValue(shard)} args={string.Join(' ', pr.Tokens.Select(t => t.Value))}");
            if (log.Resumed > 0) Console.Error.WriteLine($"resuming    {log.Resumed} windows from {log.Path}");
            using var loaded = EvalCommon.Load(pr, rope);
            Console.Error.WriteLine($"windows     {mine.Count} of {all.Count} × {o.SeqLen} tokens (stride {o.Stride}); rope {(cfg is null ? "none" : Describe(rope ?? cfg.RopeScaling))}; attention {attention}");
            var r = Progress.Run($"ppl {mine.Count} windows", report =>
                streamed ? Perplexity.Run(ids => HiciStreamScorer.Score(loaded.Transformer, ids, lmHeadChunk: o.Chunk).TotalNll, path, tokens, o, log, report)
                         : Perplexity.Run(loaded.Model, path, tokens, o, plan.ScoresWholeSequence, log, report));
            Perplexity.Write(outPath, r);
            log.Complete();
            Console.WriteLine($"perplexity  {r.Ppl:F4}  (NLL {r.MeanNll:F6}/token over {r.Tokens} tokens, {r.Windows} windows{(o.Shard is { } sh ? $", shard {sh.Index}/{sh.Count}" : "")}) → {outPath}");
            return 0;
        }));
        return cmd;
    }

    private static string Describe(RopeScaling? s) => s is null ? "unscaled" : $"{s.Type} ×{s.Factor}";

    private static (int, int)? ParseShard(string? s)
    {
        if (s is null) return null;
        var p = s.Split('/');
        if (p.Length != 2 || !int.TryParse(p[0], out int i) || !int.TryParse(p[1], out int n) || n < 1 || i < 0 || i >= n)
            throw new HiciException($"--shard '{s}': expected i/n with 0 ≤ i < n");
        return (i, n);
    }

    public static Command BuildMerge()
    {
        var files = new Argument<string[]>("shards") { Description = "The n shard outputs of hici eval ppl --shard i/n", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("merge-shards", "Combine `hici eval ppl --shard i/n` outputs into the unsharded result (bit-identical)");
        cmd.Arguments.Add(files);
        cmd.Options.Add(EvalCommon.Out);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            var paths = pr.GetValue(files)!;
            string outPath = EvalCommon.CheckOut(pr.GetValue(EvalCommon.Out), "ppl.json");
            var merged = Perplexity.Merge(paths.Select(p => (p, Perplexity.Read(p))).ToList());
            Perplexity.Write(outPath, merged);
            Console.WriteLine($"perplexity  {merged.Ppl:F4}  ({merged.Windows} windows from {paths.Length} shards) → {outPath}");
            return 0;
        }));
        return cmd;
    }
}
