using System.CommandLine;
using System.Text.Json;
using Hici.Hierarchical;
using Hici.IO;
using Hici.Loading;
using Hici.Models;
using Hici.Runtime;
using Hici.Text;

namespace Hici.Cli.Commands;

/// <summary><c>hici score</c>: per-token log-probabilities, total NLL and perplexity of a text or id sequence.</summary>
public static class ScoreCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "HF model folder (config.json + safetensors)", Required = true };
        var text = new Option<string?>("--text") { Description = "UTF-8 text file to score, encoded with the model folder's tokenizer (BOS added as the tokenizer says)" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer folder or tokenizer.json for --text (default: the model folder)" };
        var ids = new Option<string?>("--ids") { Description = "JSON file holding an array of token ids" };
        var outFile = new Option<string?>("--out") { Description = "Write {\"logprobs\":[...],\"nll\":...,\"ppl\":...} here" };
        var chunk = new Option<int>("--chunk") { Description = "Tokens per forward pass (bounds memory; with --attention hici only the lm_head is chunked)", DefaultValueFactory = _ => 512 };
        var stream = new Option<bool>("--stream")
        {
            Description = "HiCI in causal_shift/causal_shift_g only: score segment by segment, carrying only each layer's HiCI memory " +
                          "state, so memory grows with the segment (--segment-size), not the text; equals the one-shot forward",
        };
        var cmd = new Command("score", "Log-probability of every next token, total NLL and perplexity");
        foreach (var o in new Option[] { model, text, ids, tokenizer, outFile, chunk, stream }) cmd.Options.Add(o);
        ModelOptions.AddTo(cmd);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            string dir = pr.GetValue(model)!;
            string? textPath = pr.GetValue(text), idsPath = pr.GetValue(ids);
            if ((textPath is null) == (idsPath is null)) throw new HiciException("score: give exactly one of --text FILE or --ids FILE.json");
            if (pr.GetValue(chunk) <= 0) throw new HiciException($"--chunk must be positive (got {pr.GetValue(chunk)})");
            var request = ModelOptions.Request(pr, dir);
            var plan = ModelLoader.Plan(request);

            // Validate the input before loading weights: a typo should not cost a multi-GB load.
            if (idsPath is not null && pr.GetValue(tokenizer) is not null) throw new HiciException("--tokenizer goes with --text, not --ids");
            long[] tokens = idsPath is not null
                ? TokenInput.ReadIds(idsPath, plan.VocabSize, minCount: 2, purpose: "to score")
                : EncodeText(textPath!, pr.GetValue(tokenizer) ?? dir, plan.VocabSize);
            bool streamed = pr.GetValue(stream);
            var (attention, leak) = streamed ? (HiciStreamScorer.Describe(plan.Config, tokens.Length), null)
                : plan.DescribeAttention(tokens.Length);   // also checks the segment rule

            if (plan.Config is { } mc)   // the vocabulary is already the one --trainable resizes to
                MemoryEstimator.Score(mc, request.DType, tokens.Length, pr.GetValue(chunk), plan.ScoresWholeSequence)
                    .EnsureFits(force: pr.GetValue(Common.Force), subject: idsPath ?? textPath, advice: plan.ScoresWholeSequence
                        ? "score a shorter input, use smaller segments (--segment-size) or --dtype bf16"
                        : "score a shorter input, lower --chunk, or use --dtype bf16");
            if (pr.GetValue(outFile) is { } outPath) AtomicFile.CheckTarget(outPath, "--out");
            if (UnrequestedFiles(dir, request.TrainableFile, request.AdapterDir) is { Length: > 0 } unused)
                Console.WriteLine($"note        {dir} also holds {unused}; not loaded unless asked (--trainable FILE, --adapter DIR)");
            Common.InitTorch(pr);
            using var loaded = ModelLoader.Load(request);
            foreach (var line in loaded.ReportLines()) Console.WriteLine(line);
            Console.WriteLine($"attention   {attention}");
            if (leak is not null) Console.WriteLine($"note        {leak}");
            var r = Progress.Run($"scoring {tokens.Length} tokens", report =>
                streamed ? HiciStreamScorer.Score(loaded.Transformer, tokens, progress: report)
                         : Scorer.Score(loaded.Model, tokens, pr.GetValue(chunk), wholeSequence: plan.ScoresWholeSequence, progress: report));

            Console.WriteLine($"tokens      {tokens.Length} ({r.Scored} predicted)");
            Console.WriteLine($"NLL         {r.TotalNll:F4} nats total, {r.MeanNll:F4} per token");
            Console.WriteLine($"perplexity  {r.Perplexity:F4}");
            Console.WriteLine($"speed       {r.TokensPerSecond:F0} tokens/s ({request.DType.ToString().ToLowerInvariant()}, {r.Elapsed.TotalSeconds:F2} s)");
            if (tokens.Length > plan.MaxPositionEmbeddings)
                Console.WriteLine($"note        {tokens.Length} tokens exceed max_position_embeddings {plan.MaxPositionEmbeddings}");
            if (pr.GetValue(outFile) is { } o) WriteResult(o, r, attention);
            return 0;
        }));
        return cmd;
    }

    /// <summary>Checkpoint files in the folder that score only loads when asked ("" when none).</summary>
    private static string UnrequestedFiles(string dir, string? trainableUsed, string? adapterUsed)
    {
        static bool Same(string? a, string b) => a is not null && Path.GetFullPath(a).TrimEnd('/') == Path.GetFullPath(b).TrimEnd('/');
        var names = new List<string>();
        var tp = Path.Combine(dir, TrainableParams.FileName);
        if (File.Exists(tp) && !Same(trainableUsed, tp)) names.Add(TrainableParams.FileName);
        if (File.Exists(Path.Combine(dir, "adapter_config.json")) && !Same(adapterUsed, dir)) names.Add("adapter_config.json");
        return string.Join(" and ", names);
    }

    /// <summary>The text file's ids under the tokenizer; the tokenizer must fit the model's vocabulary.</summary>
    private static long[] EncodeText(string path, string tokenizerPath, long vocab)
    {
        if (!File.Exists(path)) throw new HiciException($"{path}: no such file");
        var tok = TokenInput.LoadTokenizer(tokenizerPath, vocab, instead: "to encode --text with; pass --tokenizer DIR, or score token ids with --ids FILE.json");
        var ids = TokenInput.EncodeTextFile(path, tok);
        if (ids.Length < 2) throw new HiciException($"{path}: encodes to {ids.Length} token(s); scoring needs at least 2");
        return ids;
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
