using System.Text;
using System.Text.Json;
using Hici.IO;
using Hici.Models;

namespace Hici.Evaluation;

/// <param name="ContextSize">training context: RoPE scaling as <see cref="Perplexity.RopeFor"/>; ≤ 0 = seq_len</param>
/// <param name="MaxWindows">evaluate only the first N windows (null = all)</param>
/// <param name="Shard">(i, n): only windows whose index ≡ i (mod n); (0, 1) = all</param>
/// <param name="Chunk">positions per lm_head pass (bounds the [chunk, vocab] logits held at once)</param>
public sealed record PerplexityOptions(int SeqLen, int Stride = 256, int ContextSize = -1, int? MaxWindows = null, (int Index, int Count)? Shard = null, int Chunk = 512);

/// <param name="WindowNll">(window index, summed NLL of its seq_len − 1 predictions) in index order</param>
public sealed record PerplexityResult(PerplexityOptions Options, int TotalWindows, IReadOnlyList<(int Window, double Nll)> WindowNll)
{
    /// <summary>Total NLL, summed over windows in index order (so shards merged give the same double).</summary>
    public double Nll => WindowNll.OrderBy(w => w.Window).Aggregate(0.0, (s, w) => s + w.Nll);
    public long Tokens => (long)WindowNll.Count * (Options.SeqLen - 1);
    public int Windows => WindowNll.Count;
    public double MeanNll => Nll / Tokens;
    public double Ppl => Math.Exp(MeanNll);
}

/// <summary>
/// Perplexity with the reference protocol (<c>eval_distributed_hici.py → Pg19Dataset, EvalMetricImpl</c>):
/// start offsets <c>range(0, len − seq_len, stride)</c> (stride 256; the last offset kept), every position of
/// every window scored, log-softmax in float32, perplexity = exp(total NLL / total tokens). Windows are
/// independent, so a run can be split into shards and merged (<see cref="Merge"/>) into exactly the
/// unsharded numbers.
/// </summary>
public static class Perplexity
{
    public static List<int> WindowStarts(long tokens, int seqLen, int stride)
    {
        var starts = new List<int>();
        for (long s = 0; s < tokens - seqLen; s += stride) starts.Add(checked((int)s));
        return starts;
    }

    /// <summary><c>run_eval</c>'s RoPE rule: context &gt; max_position_embeddings → linear scaling with factor
    /// ceil(context/max_pos) (Llama) or context/max_pos (Qwen3), replacing a stored factor; else the config's.</summary>
    public static RopeScaling? RopeScalingFor(ModelConfig cfg, int contextSize)
    {
        if (contextSize <= cfg.MaxPositionEmbeddings) return null;
        double f = contextSize / (double)cfg.MaxPositionEmbeddings;
        if (cfg.ModelType == "llama") f = Math.Ceiling(f);
        return new RopeScaling("linear", f);
    }

    /// <summary>Checks a token file can be evaluated; returns the window starts this run (shard, max) covers.</summary>
    public static (List<int> All, List<int> Mine) Plan(string path, long tokens, PerplexityOptions o)
    {
        if (o.SeqLen < 2) throw new HiciException($"--seq-len must be at least 2 (got {o.SeqLen})");
        if (o.Stride <= 0) throw new HiciException($"--stride must be positive (got {o.Stride})");
        var all = WindowStarts(tokens, o.SeqLen, o.Stride);
        if (all.Count == 0) throw new HiciException($"{path}: {tokens} tokens give no window of {o.SeqLen} (the protocol needs more than seq_len tokens)");
        if (o.MaxWindows is { } m) { if (m <= 0) throw new HiciException($"--max-windows must be positive (got {m})"); all = all.Take(m).ToList(); }
        var (i, n) = o.Shard ?? (0, 1);
        var mine = all.Where((_, w) => w % n == i).ToList();
        return (all, mine);
    }

    /// <param name="tokens">the whole token file (ids already checked against the vocabulary)</param>
    /// <param name="log">partial results keyed by window index (resume); null = none</param>
    /// <param name="progress">(windows done, windows in this run)</param>
    public static PerplexityResult Run(ICausalLM lm, string path, int[] tokens, PerplexityOptions o, bool wholeSequence,
        ResumeLog<double>? log = null, Action<int, int>? progress = null) =>
        Run(ids => Scorer.Score(lm, ids, o.Chunk, wholeSequence).TotalNll, path, tokens, o, log, progress);

    /// <summary>As above with any window scorer (ids → total NLL of its next-token predictions), e.g. streaming HiCI.</summary>
    public static PerplexityResult Run(Func<long[], double> windowNll, string path, int[] tokens, PerplexityOptions o,
        ResumeLog<double>? log = null, Action<int, int>? progress = null)
    {
        var (all, _) = Plan(path, tokens.Length, o);
        var (si, sn) = o.Shard ?? (0, 1);
        var results = new List<(int, double)>();
        int mine = (all.Count - si + sn - 1) / sn, done = 0;
        for (int w = si; w < all.Count; w += sn)
        {
            string key = w.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (log is null || !log.TryGet(key, out double nll))
            {
                var ids = new long[o.SeqLen];
                for (int k = 0; k < o.SeqLen; k++) ids[k] = tokens[all[w] + k];
                nll = windowNll(ids);
                log?.Add(key, nll);
            }
            results.Add((w, nll));
            progress?.Invoke(++done, mine);
        }
        log?.Flush();
        return new PerplexityResult(o, all.Count, results);
    }

    /// <summary>Reads a flat token file: element type from FILE.bin.json ("dtype": uint16|uint32) or, without
    /// it, uint16 when the vocabulary fits (≤ 65,536 ids) else uint32; every id checked against the vocabulary.</summary>
    public static int[] ReadTokens(string path, long vocab)
    {
        if (!File.Exists(path)) throw new HiciException($"{path}: no such token file");
        string dtype = Training.TokenFileInfo.Load(path)?.DType ?? (vocab <= 65536 ? "uint16" : "uint32");
        // One array holds the file: at most Array.MaxLength bytes (regular file and limit checked by the shared reader).
        var raw = InputFiles.ReadBytes(path, Array.MaxLength);
        long bytes = raw.Length;
        int width = dtype == "uint16" ? 2 : 4;
        if (bytes % width != 0) throw new HiciException($"{path}: {bytes} bytes is not a whole number of {dtype} tokens (truncated?)");
        var ids = new int[bytes / width];
        for (int i = 0; i < ids.Length; i++)
        {
            long id = width == 2 ? BitConverter.ToUInt16(raw, 2 * i) : BitConverter.ToUInt32(raw, 4 * i);
            if (id >= vocab) throw new HiciException($"{path}: token {i} is id {id}, outside the model's vocabulary [0, {vocab}) (wrong tokenizer or dtype?)");
            ids[i] = (int)id;
        }
        return ids;
    }

    // ------------------------------------------------------------------ result files and shards

    public static string ToJson(PerplexityResult r)
    {
        var o = r.Options;
        var root = new PyJson.Obj
        {
            { "ppl", r.Ppl }, { "nll", r.Nll }, { "tokens", r.Tokens }, { "windows", r.Windows },
            { "mean_nll", r.MeanNll },
            { "seq_len", o.SeqLen }, { "stride", o.Stride }, { "context_size", o.ContextSize },
            { "max_windows", o.MaxWindows }, { "total_windows", r.TotalWindows },
            { "shard", o.Shard is { } s ? $"{s.Index}/{s.Count}" : null },
            { "window_nll", r.WindowNll.Select(w => new object[] { w.Window, w.Nll }).ToList() },
        };
        return PyJson.Dumps(root, indent: 1) + "\n";
    }

    public static void Write(string path, PerplexityResult r) => AtomicFile.Write(path, s => s.Write(Encoding.UTF8.GetBytes(ToJson(r))));

    /// <summary>A result lists one NLL per window: 64 MiB is millions of windows.</summary>
    public const long ResultMaxBytes = 64L << 20;

    public static PerplexityResult Read(string path)
    {
        if (!File.Exists(path)) throw new HiciException($"{path}: no such file");
        using var doc = JsonFiles.Read(path, ResultMaxBytes);
        try
        {
            var e = doc.RootElement;
            (int, int)? shard = null;
            if (e.GetProperty("shard").GetString() is { } s)
            {
                var p = s.Split('/');
                shard = (int.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture));
            }
            var o = new PerplexityOptions(e.GetProperty("seq_len").GetInt32(), e.GetProperty("stride").GetInt32(), e.GetProperty("context_size").GetInt32(),
                e.GetProperty("max_windows").ValueKind == JsonValueKind.Null ? null : e.GetProperty("max_windows").GetInt32(), shard);
            var w = e.GetProperty("window_nll").EnumerateArray().Select(x => (x[0].GetInt32(), x[1].GetDouble())).ToList();
            return new PerplexityResult(o, e.GetProperty("total_windows").GetInt32(), w);
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or IndexOutOfRangeException)
        {
            throw new HiciException($"{path}: not a `hici eval ppl` result ({ex.Message})");
        }
    }

    /// <summary>Shard results → the unsharded result: same settings, shards 0..n−1 each once, every window once.</summary>
    public static PerplexityResult Merge(IReadOnlyList<(string Path, PerplexityResult Result)> shards)
    {
        if (shards.Count == 0) throw new HiciException("merge-shards: no shard files");
        var first = shards[0].Result;
        int n = first.Options.Shard?.Count ?? throw new HiciException($"{shards[0].Path}: not a shard (written without --shard)");
        var seen = new HashSet<int>();
        var windows = new List<(int, double)>();
        foreach (var (path, r) in shards)
        {
            if (r.Options.Shard is not { } s) throw new HiciException($"{path}: not a shard (written without --shard)");
            if (r.Options with { Shard = null } != first.Options with { Shard = null } || r.TotalWindows != first.TotalWindows || s.Count != n)
                throw new HiciException($"{path}: settings differ from {shards[0].Path} (seq_len, stride, context, max-windows or shard count)");
            if (!seen.Add(s.Index)) throw new HiciException($"{path}: shard {s.Index}/{n} given twice");
            windows.AddRange(r.WindowNll);
        }
        var missing = Enumerable.Range(0, n).Where(i => !seen.Contains(i)).ToList();
        if (missing.Count > 0) throw new HiciException($"merge-shards: shard{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Select(i => $"{i}/{n}"))} missing");
        if (windows.Count != first.TotalWindows || windows.Select(w => w.Item1).Distinct().Count() != windows.Count)
            throw new HiciException($"merge-shards: the shards hold {windows.Count} windows, the run has {first.TotalWindows}");
        return new PerplexityResult(first.Options with { Shard = null }, first.TotalWindows, windows.OrderBy(w => w.Item1).ToList());
    }
}
