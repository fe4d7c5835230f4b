using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Hici.Cli;
using Hici.Hierarchical;
using Hici.IO;
using Hici.Lora;
using Hici.Runtime;
using Hici.Text;
using TorchSharp;

namespace Hici.Fuzz;

public enum Verdict { Clean, Success, Fault, Hang, Memory }

public sealed record Outcome(int Case, string Kind, string Target, Verdict Verdict, string Detail)
{
    /// <summary>Wall time of the whole case, CPU time of the worker in it, and the part spent writing its inputs.</summary>
    public double Milliseconds { get; init; }
    public double CpuMilliseconds { get; init; }
    public double SetupMilliseconds { get; init; }
}

/// <summary>
/// One fuzz case: an input kind, a mutated input written to a scratch folder, and a target that reads it — a
/// library loader in this process, the CLI's command tree in this process, or (sometimes) the real hici process.
/// The verdict follows the CLI's promise: success, or one line "hici: error: …" with exit 1 (a HiciException with
/// a one-line message in the library); anything else is a fault. Hangs and memory runaways are judged by the
/// supervisor, which watches this process from outside.
/// </summary>
public sealed class Cases
{
    public static readonly string[] AllKinds =
        ["safetensors", "config", "tokenizer", "pickle", "adapter", "ids", "text", "flags", "tokens", "resume", "hiciconfig", "jsonl"];

    /// <summary>The kinds this run draws from (--kinds); a case number names the same input only with the same list and build.</summary>
    public string[] Kinds { get; }

    readonly Seeds _seeds;
    readonly string _scratch;
    readonly string _baseModel;       // qwen3-gqa with the byte-level tokenizer beside it
    readonly string _fifo;
    readonly double _processShare;
    readonly string? _hiciDll;

    public Cases(Seeds seeds, string scratch, double processShare, string[]? kinds = null)
    {
        Kinds = kinds ?? AllKinds;
        _seeds = seeds;
        _scratch = scratch;
        _processShare = processShare;
        Directory.CreateDirectory(scratch);
        _baseModel = Path.Combine(scratch, "base-model");
        CopyDir(seeds.ModelDir, _baseModel);
        File.Delete(Path.Combine(_baseModel, "expected.safetensors"));   // the fixture's golden outputs: not part of the model, copied per case otherwise
        File.WriteAllBytes(Path.Combine(_baseModel, "tokenizer.json"), seeds.ByteLevelTokenizer);
        _fifo = Path.Combine(scratch, "fifo");
        if (!File.Exists(_fifo) && OperatingSystem.IsLinux()) _ = MkFifo(_fifo, 0x180);
        // The hici copied beside this harness (a build of the same sources), else the CLI project's own output.
        var dll = Path.Combine(AppContext.BaseDirectory, "hici.dll");
        if (!File.Exists(dll)) dll = Path.Combine(seeds.Root, "src", "Hici.Cli", "bin", Configuration(), "net10.0", "hici.dll");
        _hiciDll = File.Exists(dll) ? dll : null;
        AppDomain.CurrentDomain.FirstChanceException += (_, e) => RememberThrow(e.Exception);
    }

    string? _lastThrow;

    /// <summary>
    /// Where the last exception that is not a user error was thrown (our frames only): an internal fault's one line
    /// says what went wrong, this says where — for faults that do not come back on replay (a race, a process state).
    /// </summary>
    void RememberThrow(Exception e)
    {
        if (e is HiciException or System.Text.Json.JsonException or FileNotFoundException or DirectoryNotFoundException) return;
        var frames = new StackTrace(2, false).GetFrames()
            .Select(f => f.GetMethod())
            .Where(m => m?.DeclaringType?.Namespace is { } ns && ns.StartsWith("Hici", StringComparison.Ordinal) && !ns.StartsWith("Hici.Fuzz", StringComparison.Ordinal))
            .Take(5).Select(m => $"{m!.DeclaringType!.Name}.{m.Name}");
        _lastThrow = $"{e.GetType().Name} thrown at {string.Join(" < ", frames)}";
    }

    static string Configuration() => AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release";

    public static string KindOf(int seed, int index, string[] kinds) => kinds[new Random(unchecked(seed * 1_000_003 + index)).Next(kinds.Length)];

    public Outcome Run(int seed, int index)
    {
        var r = new Random(unchecked(seed * 1_000_003 + index));
        var kind = Kinds[r.Next(Kinds.Length)];
        _caseWatch.Restart();
        SetupMilliseconds = 0;
        _lastThrow = null;
        var dir = Path.Combine(_scratch, "case");
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(dir);
        try
        {
            var (target, verdict, detail) = kind switch
            {
                "safetensors" => SafeTensorsCase(r, dir),
                "config" => ConfigCase(r, dir),
                "tokenizer" => TokenizerCase(r, dir),
                "pickle" => PickleCase(r, dir),
                "adapter" => AdapterCase(r, dir),
                "ids" => IdsCase(r, dir),
                "text" => TextCase(r, dir),
                "tokens" => TokensCase(r, dir),
                "resume" => ResumeCase(r, dir),
                "hiciconfig" => HiciConfigCase(r, dir),
                "jsonl" => JsonlCase(r, dir),
                _ => FlagsCase(r, dir),
            };
            if (verdict == Verdict.Fault && _lastThrow is not null) detail += $" [{_lastThrow}]";
            return new Outcome(index, kind, target, verdict, detail);
        }
        finally
        {
            torch.set_num_threads(1);   // --threads is process-global; the next case starts from 1 again
        }
    }

    // ---- kinds ----

    /// <summary>A copy of the base model with one file mutated, and the path to read it by (sometimes a special file).</summary>
    (string Model, string File, string Path) MutatedModel(Random r, string dir, string name, Func<Random, byte[], byte[]> mutate)
    {
        var model = Path.Combine(dir, "model");
        CopyDir(_baseModel, model);
        var file = Path.Combine(model, name);
        File.WriteAllBytes(file, mutate(r, File.ReadAllBytes(file)));
        return (model, file, MaybeSpecial(r, file, dir));
    }

    /// <summary>For the CLI, a special file takes the real one's place in the model folder.</summary>
    static void PutInPlace(string path, string file)
    {
        if (path == file) return;
        File.Delete(file);
        if (path.Length > 0) TryLink(path, file);
    }

    (string, Verdict, string) SafeTensorsCase(Random r, string dir)
    {
        var (model, file, path) = MutatedModel(r, dir, "model.safetensors", Mutators.SafeTensors);
        if (r.Next(2) == 0)
            return Library(() =>
            {
                using var src = SafeTensorsWeightSource.Open(path);
                foreach (var k in src.Keys) { using var t = src.Load(k); }
            });
        PutInPlace(path, file);
        return Cli(r, "score", "--model", model, "--ids", WriteIds(dir), "--threads", "1");
    }

    (string, Verdict, string) ConfigCase(Random r, string dir)
    {
        var (model, file, path) = MutatedModel(r, dir, "config.json", Mutators.Json);
        if (r.Next(3) == 0)
            return Library(() =>
            {
                var cfg = HfConfigReader.Read(path);
                _ = MemoryEstimator.Score(cfg, torch.ScalarType.Float32, 64, 512, wholeSequence: false).Describe();
            });
        PutInPlace(path, file);
        return r.Next(2) == 0
            ? Cli(r, "info", "--model", model)
            : Cli(r, "score", "--model", model, "--ids", WriteIds(dir), "--threads", "1");
    }

    (string, Verdict, string) TokenizerCase(Random r, string dir)
    {
        var tokDir = Path.Combine(dir, "tok");
        Directory.CreateDirectory(tokDir);
        var seed = r.Next(2) == 0 ? _seeds.ByteLevelTokenizer : _seeds.ByteFallbackTokenizer;
        byte[] json;
        if (r.Next(6) == 0)
        {   // a hostile Split pattern in an otherwise valid file
            var p = Seeds.HostilePatterns[r.Next(Seeds.HostilePatterns.Length)].Replace("\\", "\\\\");
            json = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(_seeds.ByteLevelTokenizer)
                .Replace("\"pattern\":{\"Regex\":\"", $"\"pattern\":{{\"Regex\":\"{p}|"));
        }
        else json = Mutators.Json(r, seed);
        var file = Path.Combine(tokDir, "tokenizer.json");
        File.WriteAllBytes(file, json);
        if (r.Next(5) == 0) File.WriteAllBytes(Path.Combine(tokDir, "tokenizer_config.json"), Mutators.Json(r, "{\"add_bos_token\": true, \"tokenizer_class\": \"LlamaTokenizerFast\", \"bos_token\": \"<0x01>\"}"u8.ToArray()));
        var text = r.Next(3) == 0 ? new string('a', 1 + r.Next(300_000)) + "!" : Encoding.UTF8.GetString(Mutators.Text(r, _seeds.Text));
        var path = MaybeSpecial(r, file, dir);
        if (r.Next(2) == 0)
            return Library(() =>
            {
                var tok = HfTokenizer.Load(path);
                var ids = tok.Encode(text);
                _ = tok.Decode(ids);
            });
        var textFile = Path.Combine(dir, "t.jsonl");
        File.WriteAllText(textFile, System.Text.Json.JsonSerializer.Serialize(new { text }) + "\n");
        return r.Next(2) == 0
            ? Cli(r, "tokenize", "--tokenizer", path, "--text", text.Length > 10_000 ? text[..10_000] : text)
            : Cli(r, "tokenize", "--tokenizer", path, "--input-jsonl", textFile);
    }

    (string, Verdict, string) PickleCase(Random r, string dir)
    {
        var file = Path.Combine(dir, "trainable_params.bin");
        File.WriteAllBytes(file, Mutators.TorchZip(r, File.ReadAllBytes(_seeds.TrainableFile)));
        var path = MaybeSpecial(r, file, dir);
        if (r.Next(2) == 0)
            return Library(() =>
            {
                using var src = TrainableParams.Open(path);
                foreach (var k in src.Keys) { using var t = src.Load(k); }
            });
        return r.Next(3) == 0
            ? Cli(r, "score", "--model", _baseModel, "--ids", WriteIds(dir), "--trainable", path, "--threads", "1")
            : Cli(r, "convert-trainable", "--input", path, "--output", Path.Combine(dir, r.Next(2) == 0 ? "out.safetensors" : "out.bin"));
    }

    (string, Verdict, string) AdapterCase(Random r, string dir)
    {
        var adapter = Path.Combine(dir, "adapter");
        Directory.CreateDirectory(adapter);
        var cfg = File.ReadAllBytes(Path.Combine(_seeds.AdapterDir, "adapter_config.json"));
        bool useBin = r.Next(3) == 0;
        var weightsName = useBin ? "adapter_model.bin" : "adapter_model.safetensors";
        var weights = File.ReadAllBytes(Path.Combine(_seeds.AdapterDir, weightsName));
        switch (r.Next(3))
        {
            case 0: cfg = Mutators.Json(r, cfg); break;
            default: weights = useBin ? Mutators.TorchZip(r, weights) : Mutators.SafeTensors(r, weights); break;
        }
        File.WriteAllBytes(Path.Combine(adapter, "adapter_config.json"), cfg);
        File.WriteAllBytes(Path.Combine(adapter, weightsName), weights);
        if (r.Next(2) == 0)
            return Library(() =>
            {
                using var a = PeftAdapter.Open(adapter);
                foreach (var k in a.Weights.Keys) { using var t = a.Weights.Load(k); }
            });
        return Cli(r, "score", "--model", _baseModel, "--ids", WriteIds(dir), "--adapter", adapter, "--threads", "1");
    }

    (string, Verdict, string) IdsCase(Random r, string dir)
    {
        var file = Path.Combine(dir, "ids.json");
        // A long list with one typo or one id out of range (the error must not quote the file); valid long lists stay
        // short enough to score in a second — scoring 100k tokens is legitimate work, not a hang.
        byte[] ids = r.Next(8) == 0
            ? Encoding.UTF8.GetBytes("[" + string.Join(",", Enumerable.Range(0, 1 + r.Next(200_000)).Select(_ => r.Next(256))) + (r.Next(2) == 0 ? "x]" : ",256]"))
            : r.Next(10) == 0 ? Encoding.UTF8.GetBytes("[" + string.Join(",", Enumerable.Range(0, 2 + r.Next(2000)).Select(_ => r.Next(256))) + "]")
            : Mutators.Json(r, _seeds.Ids);
        File.WriteAllBytes(file, ids);
        var path = MaybeSpecial(r, file, dir);
        return r.Next(4) == 0
            ? Cli(r, "audit-causality", "--model", _baseModel, "--ids", path, "--threads", "1")
            : Cli(r, "score", "--model", _baseModel, "--ids", path, "--threads", "1", "--chunk", (1 + r.Next(600)).ToString());
    }

    (string, Verdict, string) TextCase(Random r, string dir)
    {
        var file = Path.Combine(dir, "text.txt");
        File.WriteAllBytes(file, Mutators.Text(r, _seeds.Text));
        var path = MaybeSpecial(r, file, dir);
        // Scoring a 100k-token text is legitimate work (minutes of quadratic attention), not a hang: keep it short.
        if (path == file && new FileInfo(file).Length > 2000) File.WriteAllBytes(file, File.ReadAllBytes(file)[..2000]);
        if (r.Next(2) == 0) return Cli(r, "score", "--model", _baseModel, "--text", path, "--threads", "1");
        var jsonl = Path.Combine(dir, "t.jsonl");
        var lines = File.ReadAllBytes(file);
        File.WriteAllBytes(jsonl, r.Next(2) == 0 ? lines : Mutators.Json(r, "{\"text\": \"hello world\"}"u8.ToArray()).Concat("\n"u8.ToArray()).Concat(lines).ToArray());
        return Cli(r, "tokenize", "--tokenizer", _baseModel, "--input-jsonl", r.Next(8) == 0 ? path : jsonl);
    }

    /// <summary>A flat token file (.bin) and its .bin.json metadata, either or both damaged.</summary>
    (string, Verdict, string) TokensCase(Random r, string dir)
    {
        var bin = Path.Combine(dir, "tokens.bin");
        var meta = r.Next(4) == 0 ? _seeds.TokenMeta("uint32", _seeds.TokenIds.Length) : _seeds.TokenMeta("uint16", _seeds.TokenIds.Length);
        var data = meta.Contains("uint32") ? _seeds.TokenBytes32 : _seeds.TokenBytes16;
        switch (r.Next(4))
        {
            case 0: data = Mutators.Bytes(r, data); break;                                  // odd lengths, ids past the vocabulary
            case 1: File.WriteAllBytes(bin + ".json", Mutators.Json(r, Encoding.UTF8.GetBytes(meta))); break;
            case 2: data = Mutators.Bytes(r, data); File.WriteAllBytes(bin + ".json", Mutators.Json(r, Encoding.UTF8.GetBytes(meta))); break;
            default: break;                                                                 // no metadata: the dtype follows the vocabulary
        }
        File.WriteAllBytes(bin, data);
        if (!File.Exists(bin + ".json") && r.Next(3) > 0) File.WriteAllText(bin + ".json", meta);
        if (r.Next(20) == 0) PutInPlace(SpecialPath(r, dir), bin + ".json");               // the metadata is a device, a folder, …
        var path = MaybeSpecial(r, bin, dir);
        switch (r.Next(4))
        {
            case 0:
                return Library(() =>
                {
                    using var f = Training.TokenFile.Open(path, 256);
                    for (long at = 0; at < f.Length; at += 4096) _ = f.Read(at, (int)Math.Min(4096, f.Length - at));
                });
            case 1: return Library(() => _ = Evaluation.Perplexity.ReadTokens(path, 256));
            default:
                return Cli(r, "eval", "ppl", "--model", _baseModel, "--data", path, "--seq-len", (2 + r.Next(64)).ToString(), "--stride", (1 + r.Next(256)).ToString(),
                    "--max-windows", "2", "--threads", "1", "--out", Path.Combine(dir, "ppl.json"));
        }
    }

    /// <summary>A training run's checkpoint folder with one file damaged or missing, resumed (library: its trainer state only).</summary>
    (string, Verdict, string) ResumeCase(Random r, string dir)
    {
        var seedRun = SeedRun();
        var run = Path.Combine(dir, "run");
        CopyTree(seedRun, run);
        var ckpt = Path.Combine(run, "checkpoint-1");
        var files = Directory.GetFiles(ckpt).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        string name = r.Next(2) == 0 ? Training.TrainerState.FileName : files[r.Next(files.Length)]!;
        var file = Path.Combine(ckpt, name);
        if (r.Next(20) == 0) File.Delete(file);
        else
        {
            var bytes = File.ReadAllBytes(file);
            File.WriteAllBytes(file, name.EndsWith(".json", StringComparison.Ordinal) ? Mutators.Json(r, bytes)
                : name.EndsWith(".safetensors", StringComparison.Ordinal) ? Mutators.SafeTensors(r, bytes) : Mutators.Bytes(r, bytes));
            if (r.Next(20) == 0) PutInPlace(SpecialPath(r, dir), file);
        }
        if (r.Next(3) == 0) return Library(() => _ = Training.TrainerState.Load(ckpt));
        return Cli(r, "train", "--data", TokenData(), "--model", _baseModel, "--output", run, "--resume", ckpt, "--model-max-length", "32",
            "--max-steps", "2", "--save-steps", "1", "--lora-rank", "2", "--warmup-steps", "0", "--threads", "1");
    }

    /// <summary>hici_config.json: read by the library, by info and by a HiCI forward.</summary>
    (string, Verdict, string) HiciConfigCase(Random r, string dir)
    {
        var file = Path.Combine(dir, "hici_config.json");
        _hiciConfigSeed ??= _seeds.HiciConfigJson;
        File.WriteAllBytes(file, Mutators.Json(r, _hiciConfigSeed));
        var path = MaybeSpecial(r, file, dir);
        return r.Next(3) switch
        {
            0 => Library(() => _ = HiciConfig.Load(path)),
            1 => Cli(r, "info", "--model", HiciModel(), "--attention", "hici", "--hici-config", path),
            _ => Cli(r, "score", "--model", HiciModel(), "--ids", WriteIds(dir), "--attention", "hici", "--hici-config", path, "--threads", "1",
                "--segment-size", (1 + r.Next(12)).ToString()),
        };
    }

    /// <summary>JSONL the evaluations read: LongBench samples and predictions, LongEval cases, partial-result logs, response files.</summary>
    (string, Verdict, string) JsonlCase(Random r, string dir)
    {
        var which = r.Next(7);
        var (seedLines, name) = which switch
        {
            0 => (_seeds.LongBenchSamples, "samples.jsonl"),
            1 => (_seeds.LongBenchPredictions, "pred.jsonl"),
            2 or 3 => (_seeds.TopicCases, "1_topics.jsonl"),
            4 => (_seeds.LineCases, "1_lines.jsonl"),
            5 => (_seeds.ResumeLogLines, "o.json.partial.jsonl"),
            _ => (_seeds.TopicResponses, "1_response.txt"),
        };
        var cases = Path.Combine(dir, "cases");
        Directory.CreateDirectory(cases);
        var file = Path.Combine(cases, name);
        File.WriteAllBytes(file, MutateLines(r, seedLines));
        var path = MaybeSpecial(r, file, dir);
        return which switch
        {
            0 => Library(() => _ = Evaluation.LongBench.ReadSamples(path)),
            1 => Library(() => _ = Evaluation.LongBench.ReadPredictions(path)),
            2 when r.Next(2) == 0 => Library(() => _ = Evaluation.LongEval.ReadCases(path, "topics")),
            2 or 3 => Cli(r, "eval", "topics", "--cases", path == file ? cases : path, "--num-topics", "1", "--out", Path.Combine(dir, "out"),
                "--model", _baseModel, "--threads", "1"),
            4 => Library(() => _ = Evaluation.LongEval.ReadCases(path, "lines")),
            5 => Library(() => { _ = new Evaluation.ResumeLog<double>(path, "fuzz"); _ = new Evaluation.ResumeLog<Evaluation.LongEvalAnswer>(path, "fuzz"); }),
            _ => Library(() => _ = Evaluation.LongEval.ScoreTopicFile(path)),
        };
    }

    /// <summary>Damages one to three lines of a JSONL file (structure-aware per line), sometimes the file's bytes as a whole.</summary>
    static byte[] MutateLines(Random r, string text)
    {
        var lines = text.Split('\n').ToList();
        if (r.Next(6) == 0) return Mutators.Bytes(r, Encoding.UTF8.GetBytes(text));
        for (int k = 1 + r.Next(3); k > 0; k--)
        {
            int i = r.Next(lines.Count);
            switch (r.Next(5))
            {
                case 0: lines.Insert(i, lines[i]); break;                                     // a repeated line
                case 1: lines.RemoveAt(i); if (lines.Count == 0) lines.Add(""); break;
                case 2: lines.Insert(i, r.Next(2) == 0 ? "" : Mutators.RandomUnicode(r, 1 + r.Next(50))); break;
                default: lines[i] = Encoding.UTF8.GetString(Mutators.Json(r, Encoding.UTF8.GetBytes(lines[i]))).Replace("\n", " "); break;
            }
        }
        return Encoding.UTF8.GetBytes(string.Join('\n', lines));
    }

    string? _seedRun, _tokenData, _hiciModel;
    byte[]? _hiciConfigSeed;

    /// <summary>The HiCI fixture model (config and weights; its hici_config.json left out: --hici-config is the config).</summary>
    string HiciModel()
    {
        if (_hiciModel is not null) return _hiciModel;
        var dir = Path.Combine(_scratch, "hici-model");
        Directory.CreateDirectory(dir);
        foreach (var f in new[] { "config.json", "model.safetensors" }) File.Copy(Path.Combine(_seeds.HiciModelDir, f), Path.Combine(dir, f), overwrite: true);
        return _hiciModel = dir;
    }

    /// <summary>The valid token file training reads (written once per worker).</summary>
    string TokenData()
    {
        if (_tokenData is not null) return _tokenData;
        var dir = Path.Combine(_scratch, "seed-tokens");
        Directory.CreateDirectory(dir);
        var bin = Path.Combine(dir, "tokens.bin");
        File.WriteAllBytes(bin, _seeds.TokenBytes16);
        File.WriteAllText(bin + ".json", _seeds.TokenMeta("uint16", _seeds.TokenIds.Length));
        return _tokenData = bin;
    }

    /// <summary>A one-step training run with its checkpoint-1 (made once per worker by the command under test, in process).</summary>
    string SeedRun()
    {
        if (_seedRun is not null) return _seedRun;
        var run = Path.Combine(_scratch, "seed-run");
        if (Directory.Exists(run)) Directory.Delete(run, recursive: true);
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        Console.SetOut(TextWriter.Null);
        Console.SetError(TextWriter.Null);
        int code;
        try
        {
            code = CliApp.Run(["train", "--data", TokenData(), "--model", _baseModel, "--output", run, "--model-max-length", "32", "--max-steps", "1",
                "--save-steps", "1", "--lora-rank", "2", "--warmup-steps", "0", "--threads", "1"]);
        }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
        if (code != 0 || !Directory.Exists(Path.Combine(run, "checkpoint-1"))) throw new InvalidOperationException($"the seed training run failed (exit {code})");
        return _seedRun = run;
    }

    static void CopyTree(string from, string to)
    {
        CopyDir(from, to);
        foreach (var d in Directory.GetDirectories(from)) CopyTree(d, Path.Combine(to, Path.GetFileName(d)));
    }

    static readonly string[] HostileValues =
    [
        "", "-1", "0", "1", "2147483647", "2147483648", "-2147483648", "9999999999999", "1e309", "NaN", "abc", "0x10", "  ", "\u0000",
        "--verbose", "-", "🙂", "..", "/",
    ];

    static readonly (string Command, string[] Options)[] CommandOptions =
    [
        ("score", ["--model", "--ids", "--text", "--tokenizer", "--out", "--chunk", "--trainable", "--adapter", "--attention", "--segment-size", "--segment-ratio", "--causal-mode", "--hici-config", "--local-slots", "--global-slots", "--dtype", "--threads", "--device"]),
        ("info", ["--model", "--json", "--attention", "--hici-config", "--segment-size"]),
        ("tokenize", ["--tokenizer", "--text", "--input-jsonl", "--add-special-tokens"]),
        ("generate", ["--model", "--prompt", "--tokenizer", "--max-new-tokens", "--temperature", "--top-k", "--top-p", "--seed", "--stop", "--chat", "--chat-template", "--threads"]),
        ("audit-causality", ["--model", "--ids", "--length", "--position", "--seed", "--attention", "--segment-size", "--causal-mode"]),
        ("convert-trainable", ["--input", "--output", "--format"]),
        ("merge", ["--model", "--adapter", "--output", "--context-size", "--dtype", "--max-shard-size", "--trainable"]),
    ];

    (string, Verdict, string) FlagsCase(Random r, string dir)
    {
        var (command, options) = CommandOptions[r.Next(CommandOptions.Length)];
        var valid = new Dictionary<string, string>
        {
            ["--model"] = _baseModel, ["--ids"] = WriteIds(dir), ["--tokenizer"] = _baseModel, ["--prompt"] = "hello",
            ["--text"] = command == "tokenize" ? "hello" : WriteText(dir), ["--input"] = _seeds.TrainableFile,
            ["--output"] = Path.Combine(dir, command == "merge" ? "merged" : "out.safetensors"), ["--adapter"] = _seeds.AdapterDir,
            ["--max-new-tokens"] = "4", ["--length"] = "16", ["--out"] = Path.Combine(dir, "o.json"),
        };
        var args = new List<string> { command };
        foreach (var req in command switch
                 {
                     "score" => new[] { "--model", "--ids" }, "info" => ["--model"], "tokenize" => ["--tokenizer", "--text"],
                     "generate" => ["--model", "--prompt", "--max-new-tokens"], "audit-causality" => ["--model", "--length"],
                     "convert-trainable" => ["--input", "--output"], _ => ["--model", "--adapter", "--output"],
                 })
            args.AddRange([req, valid[req]]);
        int changes = 1 + r.Next(4);
        for (int k = 0; k < changes; k++)
        {
            var opt = r.Next(10) == 0 ? "--fuzz-" + r.Next(100) : options[r.Next(options.Length)];
            var value = r.Next(3) switch
            {
                0 => HostileValues[r.Next(HostileValues.Length)],
                1 => SpecialPath(r, dir),
                // A prompt is run, not only read: 100,000 random characters are ~270,000 tokens of legitimate full
                // attention (minutes), which the time limit would call a hang (case 43311, seed 7). 10,000 stay in seconds.
                _ => Mutators.RandomUnicode(r, 1 + r.Next(r.Next(2) == 0 ? 10 : opt == "--prompt" ? 10_000 : 100_000)),
            };
            int at = args.IndexOf(opt);
            if (at >= 0 && at + 1 < args.Count && r.Next(3) > 0) args[at + 1] = value;
            else if (r.Next(8) == 0) args.Add(opt);               // a flag without its value
            else args.AddRange([opt, value]);
        }
        if (!args.Contains("--threads")) args.AddRange(["--threads", "1"]);
        return Cli(r, args.ToArray());
    }

    // ---- targets ----

    static Verdict LibraryVerdict(Exception? e, out string detail)
    {
        detail = "";
        if (e is null) return Verdict.Success;
        var msg = e.Message;
        if (e is HiciException && !msg.Contains('\n') && msg.Length > 0 && !msg.StartsWith("out of memory", StringComparison.Ordinal))
            return Verdict.Clean;
        detail = $"{e.GetType().Name}: {Short(msg)}";
        return msg.Contains("out of memory", StringComparison.OrdinalIgnoreCase) || e is OutOfMemoryException ? Verdict.Memory : Verdict.Fault;
    }

    static (Verdict, string) LibraryRun(Action body)
    {
        Exception? err = null;
        try { body(); }
        catch (Exception e) { err = e; }
        var v = LibraryVerdict(err, out var detail);
        return (v, detail);
    }

    (string, Verdict, string) Library(Action body) { TargetStarts(); var (v, d) = LibraryRun(body); return ("library", v, d); }

    readonly Stopwatch _caseWatch = new();

    /// <summary>Time from the case's start to its target's start (writing inputs), for the profile columns.</summary>
    public double SetupMilliseconds { get; private set; }

    void TargetStarts() => SetupMilliseconds = _caseWatch.Elapsed.TotalMilliseconds;

    /// <summary>The last command line run (printed by --replay).</summary>
    public string[] LastArgs { get; private set; } = [];

    (string, Verdict, string) Cli(Random r, params string[] args)
    {
        LastArgs = args;
        TargetStarts();
        // exec refuses an argument over 128 KiB (E2BIG): such command lines run in process only.
        if (_hiciDll is not null && r.NextDouble() < _processShare && args.All(a => Encoding.UTF8.GetByteCount(a) < 100_000))
            return CliProcess(args);
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        int code;
        try { code = CliApp.Run(args); }
        catch (Exception x) { code = -1; e.WriteLine($"escaped Common.Run: {x.GetType().Name}: {Short(x.Message)}"); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
        var (v, d) = CliVerdict(code, Verbose(args) ? FirstLine(e.ToString()) : e.ToString());
        return ("cli", v, d);
    }

    (string, Verdict, string) CliProcess(string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(_hiciDll!);
        foreach (var a in args) psi.ArgumentList.Add(a.Replace("\0", ""));   // a NUL cannot cross exec
        psi.Environment["DOTNET_GCHeapHardLimit"] = Environment.GetEnvironmentVariable("DOTNET_GCHeapHardLimit") ?? "0x80000000";
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var outp = p.StandardOutput.ReadToEndAsync();
        long peak = 0;
        var sw = Stopwatch.StartNew();
        while (!p.WaitForExit(50))
        {
            peak = Math.Max(peak, Supervisor.Rss(p.Id));
            double cpu = Supervisor.CpuSeconds(p.Id);
            if (cpu > 15 || sw.Elapsed > TimeSpan.FromSeconds(150))
            {
                p.Kill(true);
                return ("process", Verdict.Hang, $"hici {Describe(args)} ran {cpu:F0} s of CPU, {sw.Elapsed.TotalSeconds:F0} s of wall time");
            }
            if (peak > 3L << 30) { p.Kill(true); return ("process", Verdict.Memory, $"hici {Describe(args)} passed 3 GiB RSS"); }
        }
        var (v, d) = CliVerdict(p.ExitCode, Verbose(args) ? FirstLine(err.Result) : err.Result);
        return ("process", v, d);
    }

    static Verdict CliVerdictOnly(int code, string err, out string detail)
    {
        detail = "";
        var lines = err.TrimEnd('\n', '\r').Split('\n');
        if (code == 0) return Verdict.Success;
        // The error is the one last line; lines before it may only be the command's own progress notes (training prints
        // its parameter count and memory estimate before it reads the checkpoint), never a second error or a stack trace.
        if (code == 1 && lines[^1].StartsWith("hici: error: ", StringComparison.Ordinal) && lines[..^1].All(IsProgressNote))
        {
            if (lines[^1].StartsWith("hici: error: out of memory", StringComparison.Ordinal)) { detail = Short(lines[^1]); return Verdict.Memory; }
            return Verdict.Clean;
        }
        detail = $"exit {code}: {Short(string.Join(" | ", lines.Take(3)))}{(lines.Length > 3 ? $" (+{lines.Length - 3} lines)" : "")}";
        return Verdict.Fault;
    }

    static bool IsProgressNote(string line) =>
        !line.StartsWith("hici:", StringComparison.Ordinal) && !line.StartsWith("   at ", StringComparison.Ordinal) && !line.Contains("frame #", StringComparison.Ordinal)
        && !line.Contains("Exception", StringComparison.Ordinal) && !line.StartsWith("(run with", StringComparison.Ordinal);

    static (Verdict, string) CliVerdict(int code, string err) { var v = CliVerdictOnly(code, err, out var d); return (v, d); }

    // ---- helpers ----

    /// <summary>--verbose asks for the stack trace after the one line: then only the first line is judged.</summary>
    static bool Verbose(string[] args) => args.Contains("--verbose") || args.Contains("-v");

    static string FirstLine(string s) => s.Split('\n')[0];

    /// <summary>Sometimes the input is not a regular file at all.</summary>
    string MaybeSpecial(Random r, string path, string dir) => r.Next(20) == 0 ? SpecialPath(r, dir) : path;

    string SpecialPath(Random r, string dir) => r.Next(8) switch
    {
        0 => "/dev/zero",
        1 => "/dev/urandom",
        2 => File.Exists(_fifo) ? _fifo : "/dev/zero",
        3 => dir,
        4 => "",
        5 => Path.Combine(dir, "does-not-exist", "x"),
        6 => Link(dir),
        _ => "/proc/self/status",
    };

    static string Link(string dir)
    {
        var l = Path.Combine(dir, "link-to-zero");
        if (!File.Exists(l)) TryLink("/dev/zero", l);
        return l;
    }

    static void TryLink(string target, string link)
    {
        try { File.CreateSymbolicLink(link, target); } catch (IOException) { }
    }

    string WriteIds(string dir)
    {
        var p = Path.Combine(dir, "valid-ids.json");
        if (!File.Exists(p)) File.WriteAllBytes(p, _seeds.Ids);
        return p;
    }

    string WriteText(string dir)
    {
        var p = Path.Combine(dir, "valid-text.txt");
        if (!File.Exists(p)) File.WriteAllBytes(p, _seeds.Text);
        return p;
    }

    static void CopyDir(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)), overwrite: true);
    }

    public static string Short(string s)
    {
        s = s.Replace('\n', ' ').Replace('\r', ' ');
        return s.Length > 200 ? s[..197] + "..." : s;
    }

    static string Describe(string[] args) => Short(string.Join(' ', args.Select(a => a.Length > 40 ? a[..37] + "..." : a)));

    [DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
    static extern int MkFifo([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint mode);
}
