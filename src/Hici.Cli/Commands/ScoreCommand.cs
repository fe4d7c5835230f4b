using System.CommandLine;
using System.Text.Json;
using Hici.IO;
using Hici.Models;

namespace Hici.Cli.Commands;

/// <summary><c>hici score</c>: per-token log-probabilities, total NLL and perplexity of a text or id sequence.</summary>
public static class ScoreCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "HF model folder (config.json + safetensors)", Required = true };
        var text = new Option<string?>("--text") { Description = "UTF-8 text file to score (needs the model's tokenizer)" };
        var ids = new Option<string?>("--ids") { Description = "JSON file holding an array of token ids" };
        var outFile = new Option<string?>("--out") { Description = "Write {\"logprobs\":[...],\"nll\":...,\"ppl\":...} here" };
        var chunk = new Option<int>("--chunk") { Description = "Tokens per forward pass (bounds memory)", DefaultValueFactory = _ => 512 };
        var cmd = new Command("score", "Log-probability of every next token, total NLL and perplexity");
        cmd.Options.Add(model);
        cmd.Options.Add(text);
        cmd.Options.Add(ids);
        cmd.Options.Add(outFile);
        cmd.Options.Add(chunk);
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

            // Validate the input before loading weights: a typo should not cost a multi-GB load.
            long[] tokens = idsPath is not null
                ? ReadIds(idsPath, cfg.VocabSize)
                : throw new HiciException($"--text needs a tokenizer, which this build does not include yet (the 'text' branch adds it); tokenize elsewhere and pass --ids FILE.json");

            Common.InitTorch(pr);
            CausalLM loaded;
            using (var weights = SafeTensorsWeightSource.Open(dir)) loaded = CausalLM.Load(cfg, weights, dtype, device);
            using var lm = loaded;
            var r = Scorer.Score(lm, tokens, pr.GetValue(chunk));

            Console.WriteLine($"tokens      {tokens.Length} ({r.Scored} predicted)");
            Console.WriteLine($"NLL         {r.TotalNll:F4} nats total, {r.MeanNll:F4} per token");
            Console.WriteLine($"perplexity  {r.Perplexity:F4}");
            Console.WriteLine($"speed       {r.TokensPerSecond:F0} tokens/s ({dtype.ToString().ToLowerInvariant()}, {r.Elapsed.TotalSeconds:F2} s)");
            if (tokens.Length > cfg.MaxPositionEmbeddings)
                Console.WriteLine($"note        {tokens.Length} tokens exceed max_position_embeddings {cfg.MaxPositionEmbeddings}");
            if (pr.GetValue(outFile) is { } o) WriteResult(o, r);
            return 0;
        }));
        return cmd;
    }

    /// <summary>A JSON array of integers in [0, vocab). Errors name the file, the position and the value.</summary>
    public static long[] ReadIds(string path, int vocab)
    {
        if (!File.Exists(path)) throw new HiciException($"{path}: no such file");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new HiciException($"{path}: not valid JSON ({e.Message})"); }
        using (doc)
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

    private static void WriteResult(string path, ScoreResult r)
    {
        using var stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream);
        w.WriteStartObject();
        w.WriteStartArray("logprobs");
        foreach (var lp in r.LogProbs) w.WriteNumberValue(lp);
        w.WriteEndArray();
        w.WriteNumber("nll", r.TotalNll);
        w.WriteNumber("ppl", r.Perplexity);
        w.WriteNumber("tokens", r.Scored);
        w.WriteEndObject();
    }
}
