using System.CommandLine;
using System.Text.Json;
using Hici.Hierarchical;
using Hici.IO;
using Hici.Models;
using Hici.Runtime;

namespace Hici.Cli.Commands;

/// <summary><c>hici score</c>: per-token log-probabilities, total NLL and perplexity of a text or id sequence.</summary>
public static class ScoreCommand
{
    public static readonly Option<string?> Trainable = new("--trainable")
    {
        Description = "The reference's trainable_params.bin (embeddings, norms, HiCI weights; or a .safetensors with its keys) to load over the model",
    };
    public static readonly Option<string?> Adapter = new("--adapter")
    {
        Description = "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors/.bin), applied unmerged after --trainable; covers the HiCI projections too",
    };
    public static readonly Option<bool> Strict = new("--strict") { Description = "Missing or unexpected keys in --trainable or --adapter are errors" };

    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "HF model folder (config.json + safetensors)", Required = true };
        var text = new Option<string?>("--text") { Description = "UTF-8 text file to score, encoded with the model folder's tokenizer (BOS added as the tokenizer says)" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer folder or tokenizer.json for --text (default: the model folder)" };
        var ids = new Option<string?>("--ids") { Description = "JSON file holding an array of token ids" };
        var outFile = new Option<string?>("--out") { Description = "Write {\"logprobs\":[...],\"nll\":...,\"ppl\":...} here" };
        var chunk = new Option<int>("--chunk") { Description = "Tokens per forward pass (bounds memory; with --attention hici only the lm_head is chunked)", DefaultValueFactory = _ => 512 };
        var cmd = new Command("score", "Log-probability of every next token, total NLL and perplexity");
        cmd.Options.Add(model);
        cmd.Options.Add(text);
        cmd.Options.Add(ids);
        cmd.Options.Add(tokenizer);
        cmd.Options.Add(outFile);
        cmd.Options.Add(chunk);
        cmd.Options.Add(Trainable);
        cmd.Options.Add(Adapter);
        cmd.Options.Add(Strict);
        HiciOptions.AddTo(cmd);
        Common.AddComputeOptions(cmd);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            string dir = pr.GetValue(model)!;
            string? textPath = pr.GetValue(text), idsPath = pr.GetValue(ids);
            if ((textPath is null) == (idsPath is null)) throw new HiciException("score: give exactly one of --text FILE or --ids FILE.json");
            if (pr.GetValue(chunk) <= 0) throw new HiciException($"--chunk must be positive (got {pr.GetValue(chunk)})");
            var dtype = Common.ParseDtype(pr.GetValue(Common.Dtype)!);
            var device = Common.ParseDevice(pr.GetValue(Common.Device)!);
            if (!Directory.Exists(dir)) throw new HiciException($"{dir}: no such model folder");
            var cfg = HfConfigReader.Read(dir);
            var kind = HiciOptions.AttentionKind(pr);

            using var tr = pr.GetValue(Trainable) is { } tp ? TrainableParams.Open(tp) : null;
            var hc = HiciOptions.Resolve(pr, dir, always: tr?.HasHici == true);
            hc?.ValidateFor(cfg.HiddenSize, "HiCI flags");

            // Validate the input before loading weights: a typo should not cost a multi-GB load.
            long vocab = tr?.EmbedRows ?? cfg.VocabSize;
            if (idsPath is not null && pr.GetValue(tokenizer) is not null) throw new HiciException("--tokenizer goes with --text, not --ids");
            long[] tokens = idsPath is not null
                ? ReadIds(idsPath, (int)vocab)
                : EncodeText(textPath!, pr.GetValue(tokenizer) ?? dir, vocab);
            string attention = DescribeAttention(kind, hc, tokens.Length, out string? leak);   // also checks the segment rule

            // With --trainable the vocabulary is resized to its embedding rows: estimate with that size.
            MemoryEstimator.Score(cfg with { VocabSize = (int)Math.Min(vocab, int.MaxValue) }, dtype, tokens.Length, pr.GetValue(chunk), kind == AttentionKind.Hici ? hc : null)
                .EnsureFits(force: pr.GetValue(Common.Force), subject: idsPath ?? textPath, advice: kind == AttentionKind.Hici
                    ? "score a shorter input, use smaller segments (--segment-size) or --dtype bf16"
                    : "score a shorter input, lower --chunk, or use --dtype bf16");
            if (pr.GetValue(outFile) is { } outPath) CheckOutPath(outPath);
            string? adapterDir = pr.GetValue(Adapter);
            if (adapterDir is not null && !Directory.Exists(adapterDir)) throw new HiciException($"{adapterDir}: no such adapter folder");
            if (UnrequestedFiles(dir, tr?.Origin, adapterDir) is { Length: > 0 } unused)
                Console.WriteLine($"note        {dir} also holds {unused}; not loaded unless asked (--trainable FILE, --adapter DIR)");
            Common.InitTorch(pr);
            using var loaded = HiciModelLoader.Load(new ModelLoadRequest(dir)
            {
                DType = dtype, Device = device, Attention = kind, Hici = hc, Trainable = tr, AdapterDir = adapterDir, Strict = pr.GetValue(Strict),
            });
            foreach (var line in loaded.ReportLines()) Console.WriteLine(line);
            Console.WriteLine($"attention   {attention}");
            if (leak is not null) Console.WriteLine($"note        {leak}");
            var r = Progress.Run($"scoring {tokens.Length} tokens", report =>
                Scorer.Score(loaded.Model, tokens, pr.GetValue(chunk), wholeSequence: kind == AttentionKind.Hici, progress: report));

            Console.WriteLine($"tokens      {tokens.Length} ({r.Scored} predicted)");
            Console.WriteLine($"NLL         {r.TotalNll:F4} nats total, {r.MeanNll:F4} per token");
            Console.WriteLine($"perplexity  {r.Perplexity:F4}");
            Console.WriteLine($"speed       {r.TokensPerSecond:F0} tokens/s ({dtype.ToString().ToLowerInvariant()}, {r.Elapsed.TotalSeconds:F2} s)");
            if (tokens.Length > cfg.MaxPositionEmbeddings)
                Console.WriteLine($"note        {tokens.Length} tokens exceed max_position_embeddings {cfg.MaxPositionEmbeddings}");
            if (pr.GetValue(outFile) is { } o) WriteResult(o, r, attention);
            return 0;
        }));
        return cmd;
    }

    /// <summary>Checkpoint files in the folder that score only loads when asked ("" when none).</summary>
    internal static string UnrequestedFiles(string dir, string? trainableUsed, string? adapterUsed)
    {
        static bool Same(string? a, string b) => a is not null && Path.GetFullPath(a).TrimEnd('/') == Path.GetFullPath(b).TrimEnd('/');
        var names = new List<string>();
        var tp = Path.Combine(dir, TrainableParams.FileName);
        if (File.Exists(tp) && !Same(trainableUsed, tp)) names.Add(TrainableParams.FileName);
        if (File.Exists(Path.Combine(dir, "adapter_config.json")) && !Same(adapterUsed, dir)) names.Add("adapter_config.json");
        return string.Join(" and ", names);
    }

    /// <summary>
    /// One line on what attention runs (segments, mode), and a warning when the mode lets positions see later
    /// tokens. Checks the training forward's divisibility rule before any weights are loaded.
    /// </summary>
    internal static string DescribeAttention(AttentionKind kind, HiciConfig? hc, int tokens, out string? leak)
    {
        leak = null;
        if (kind == AttentionKind.Full)
            return hc is null ? "full" : "full (HiCI modules loaded, not run: the reference's perplexity setting)";
        var c = hc!;
        var seg = new HiciSegmenter(c);
        string mode = HiciConfig.CausalModeName(c.CausalMode);
        int s = c.Forward == HiciForwardKind.Train ? seg.TrainingSegmentSize(tokens) : seg.InferenceSegmentSize(tokens);
        int n = (tokens + s - 1) / s;
        bool memory = c.Forward == HiciForwardKind.Train || n > 1 || c.InferenceSingleSegment;
        string fwd = c.Forward == HiciForwardKind.Train ? "train" : "inference";
        string pad = n * s != tokens ? $", last segment padded by {n * s - tokens}" : "";
        if (!memory) return $"hici, {fwd} forward, 1 segment of {s}: HiCI off (plain causal attention)";
        if (c.CausalMode is HiciCausalMode.None or HiciCausalMode.CausalGi or HiciCausalMode.CausalGiGOnly)
            leak = $"causal_mode {mode} lets positions see later tokens through the HiCI memory: this perplexity is not a " +
                   "language-model perplexity (see docs/hici.md; check with hici audit-causality)";
        return $"hici, {fwd} forward, causal_mode {mode}, {n} segment{(n == 1 ? "" : "s")} of {s} tokens{pad} " +
               $"(M={c.LocalSlots} K={c.GlobalSlots} h={c.NumHeads} β={c.BottleneckDim} C={c.SharedCompressDim})";
    }

    /// <summary>Input limits: 1 GiB of text, and an id list of up to ~100M ids (a JSON document costs about its size again).</summary>
    public const long MaxTextBytes = 1L << 30, MaxIdsBytes = 1L << 30;

    /// <summary>The text file's ids under the tokenizer; the tokenizer must fit the model's vocabulary.</summary>
    public static long[] EncodeText(string path, string tokenizerPath, long vocab)
    {
        string content = InputFiles.ReadText(path, MaxTextBytes);   // a BOM is file framing, not text: dropped
        if (Directory.Exists(tokenizerPath) && !File.Exists(Path.Combine(tokenizerPath, "tokenizer.json")))
            throw new HiciException($"{tokenizerPath}: no tokenizer.json to encode --text with; pass --tokenizer DIR, or score token ids with --ids FILE.json");
        var tok = Hici.Text.HfTokenizer.Load(tokenizerPath);
        if (tok.VocabSize > vocab)
            throw new HiciException($"{tokenizerPath}: the tokenizer has {tok.VocabSize} ids but the model's vocabulary is {vocab}: they do not belong together");
        var ids = tok.Encode(content, addSpecialTokens: true);
        if (ids.Length < 2) throw new HiciException($"{path}: encodes to {ids.Length} token(s); scoring needs at least 2");
        return ids.Select(i => (long)i).ToArray();
    }

    /// <summary>A JSON array of integers in [0, vocab). Errors name the file, the position and the value.</summary>
    public static long[] ReadIds(string path, int vocab)
    {
        using (var doc = JsonFiles.Read(path, MaxIdsBytes))
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Array)
                throw new HiciException($"{path}: expected a JSON array of token ids, found {root.ValueKind.ToString().ToLowerInvariant()}");
            var ids = new long[root.GetArrayLength()];
            int i = 0;
            foreach (var e in root.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long id))
                    throw new HiciException($"{path}: element {i} is {e.GetRawText()}, not an integer token id");
                if (id < 0 || id >= vocab)
                    throw new HiciException($"{path}: token id {id} at position {i} is outside the vocabulary [0, {vocab})");
                ids[i++] = id;
            }
            if (ids.Length < 2) throw new HiciException($"{path}: needs at least 2 token ids to score (got {ids.Length})");
            return ids;
        }
    }

    /// <summary>--out is checked before the model loads, so a typo in it does not cost a whole scoring run.</summary>
    internal static void CheckOutPath(string path)
    {
        InputFiles.CheckPath(path, "--out");
        if (Directory.Exists(path)) throw new HiciException($"--out {path}: is a folder; give a file name");
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(folder)) throw new HiciException($"--out {path}: folder {folder} does not exist");
    }

    /// <summary>Written to a temp file and renamed: an interrupted run leaves the old file or none, never half a JSON.</summary>
    private static void WriteResult(string path, ScoreResult r, string attention) => AtomicFile.Write(path, stream =>
    {
        using var w = new Utf8JsonWriter(stream);
        w.WriteStartObject();
        w.WriteStartArray("logprobs");
        // JSON has no Infinity: an overflowing perplexity (mean NLL > 709 nats) or a -inf log-prob is written as null.
        foreach (var lp in r.LogProbs) { if (float.IsFinite(lp)) w.WriteNumberValue(lp); else w.WriteNullValue(); }
        w.WriteEndArray();
        Number(w, "nll", r.TotalNll);
        Number(w, "ppl", r.Perplexity);
        w.WriteNumber("tokens", r.Scored);
        w.WriteString("attention", attention);
        w.WriteEndObject();
    });

    private static void Number(Utf8JsonWriter w, string name, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(name, v); else w.WriteNull(name);
    }
}
