using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hici.I3;
using Hici.IO;
using Hici.Text;
using ScottPlot;

namespace Hici.Cli.Commands;

public static class I3TrainCommand
{
    public const string CheckpointDir = "checkpoint";
    public const string MetricsFile = "metrics.jsonl";

    public static Command Build()
    {
        var preset = I3Command.Preset(required: true);
        var data = new Option<string[]>("--data") { Description = "Training text files/folders, or one flat token file FILE.bin (uint32 with FILE.bin.json {\"dtype\": \"uint32\"}, else uint16 when the vocabulary fits — as hici eval ppl reads it)", Required = true, AllowMultipleArgumentsPerToken = true };
        var output = new Option<string>("--output") { Description = "Output folder: an i3 model folder (config.json, model.safetensors, tokenizer), checkpoint/, metrics.jsonl, loss.png", Required = true };
        var format = I3Command.Format();
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer folder (default: train one with the preset's vocabulary on --data first)" };
        var vocab = new Option<int?>("--vocab") { Description = "Vocabulary size (default: the preset's)" };
        var maxSteps = new Option<int>("--max-steps") { Description = "Optimizer steps to train to", DefaultValueFactory = _ => 5000 };
        var scheduleSteps = new Option<int?>("--schedule-steps") { Description = "Steps of the cosine schedule (default: --max-steps)" };
        var warmup = new Option<int>("--warmup") { Description = "Linear learning-rate warmup steps", DefaultValueFactory = _ => 100 };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate (AdamW)", DefaultValueFactory = _ => 4e-4 };
        var batch = new Option<int>("--batch") { Description = "Lanes per micro-step", DefaultValueFactory = _ => 4 };
        var accum = new Option<int>("--grad-accum") { Description = "Micro-steps (consecutive chunks) per optimizer step", DefaultValueFactory = _ => 8 };
        var clip = new Option<double>("--clip") { Description = "Global gradient-norm clip", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<long>("--seed") { Description = "Seed for the initial weights and the data order", DefaultValueFactory = _ => 1234 };
        var compStart = new Option<int?>("--compression-start") { Description = "Optimizer step at which the memory gate starts to open (default 100)" };
        var compRamp = new Option<int?>("--compression-ramp") { Description = "Steps over which the gate ramps to 1 (default 50)" };
        var every = new Option<int>("--checkpoint-every") { Description = "Write a checkpoint every N steps (and at the end)", DefaultValueFactory = _ => 50 };
        var resume = new Option<bool>("--resume") { Description = "Continue from OUTPUT/checkpoint exactly (same data, options and threads)" };
        var cmd = new Command("train", "Train an i3 model: contiguous streams of chunks so history carries across chunks, AdamW, cosine schedule with warmup, atomic safetensors checkpoints, exact resume");
        foreach (var o in new Option[] { preset, data, output, format, tokenizer, vocab, maxSteps, scheduleSteps, warmup, lr, batch, accum, clip, seed, compStart, compRamp, every, resume })
            cmd.Options.Add(o);
        cmd.Options.Add(Common.Threads);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            Common.InitTorch(pr);
            var outDir = pr.GetValue(output)!;
            var ckpt = Path.Combine(outDir, CheckpointDir);
            bool isResume = pr.GetValue(resume);
            if (isResume && !Directory.Exists(ckpt)) throw new HiciException($"{ckpt}: no checkpoint to resume from");
            if (!isResume && Directory.Exists(ckpt)) throw new HiciException($"{ckpt}: a run exists here; pass --resume to continue it or choose another --output");
            var cfg = I3Config.Preset(pr.GetValue(preset)!);
            if (pr.GetValue(vocab) is int v) cfg = cfg with { VocabSize = v };
            if (pr.GetValue(compStart) is int cs) cfg = cfg with { CompressionStart = cs };
            if (pr.GetValue(compRamp) is int cr) cfg = cfg with { CompressionRamp = cr };
            if (isResume) cfg = I3Config.Load(ckpt);
            cfg.Validate();
            int steps = pr.GetValue(maxSteps);
            var opts = new I3TrainOptions
            {
                Batch = pr.GetValue(batch), GradAccum = pr.GetValue(accum), LearningRate = pr.GetValue(lr), WarmupSteps = pr.GetValue(warmup),
                MaxSteps = steps, ScheduleSteps = pr.GetValue(scheduleSteps) ?? steps, Clip = pr.GetValue(clip), Seed = pr.GetValue(seed),
            };
            opts.Validate();
            var err = Console.Error;
            Directory.CreateDirectory(outDir);
            var tok = PrepareTokenizer(pr.GetValue(tokenizer), outDir, pr.GetValue(data)!, I3Corpus.ParseFormat(pr.GetValue(format)!), cfg.VocabSize, err);
            if (tok.VocabSize > cfg.VocabSize) throw new HiciException($"the tokenizer has {tok.VocabSize} tokens, more than the model's vocabulary {cfg.VocabSize} (pass --vocab)");
            var (train, held) = PrepareData(outDir, pr.GetValue(data)!, I3Corpus.ParseFormat(pr.GetValue(format)!), tok, cfg.VocabSize, err);
            err.WriteLine($"i3 train: {cfg.CountParameters():N0} parameters; {train.Length:N0} training tokens, {held.Length:N0} held out; batch {opts.Batch} × chunk {cfg.KernelWindow} × accum {opts.GradAccum} = {opts.Batch * cfg.KernelWindow * opts.GradAccum:N0} tokens/step");

            using var model = new I3Model(cfg);
            model.Initialize(opts.Seed);
            using var trainer = new I3Trainer(model, train, opts);
            if (isResume) { trainer.LoadCheckpoint(ckpt); err.WriteLine($"resumed at step {trainer.Step}"); }
            var metricsPath = Path.Combine(outDir, MetricsFile);
            var losses = TrimMetrics(metricsPath, trainer.Step);
            void Save()
            {
                trainer.SaveCheckpoint(ckpt, dir => CopyTokenizer(outDir, dir));
                model.Save(outDir);
                PlotLoss(Path.Combine(outDir, "loss.png"), losses);
            }
            using (var log = new StreamWriter(metricsPath, append: true, new UTF8Encoding(false)))
            {
                Progress.Run($"training i3 ({pr.GetValue(preset)})", report =>
                {
                    long start = trainer.Step;
                    while (trainer.Step < steps)
                    {
                        var m = trainer.TrainStep();
                        if (!double.IsFinite(m.Loss)) throw new HiciException($"step {m.Step}: loss is {m.Loss}; the last good checkpoint is {ckpt}");
                        losses.Add((m.Step, m.Loss));
                        log.WriteLine(JsonSerializer.Serialize(new { step = m.Step, loss = m.Loss, lr = m.Lr, grad_norm = m.GradNorm, alpha = m.Alpha, history = m.History, tokens_per_s = m.TokensPerSecond }));
                        log.Flush();
                        if (report is null && (m.Step % 10 == 0 || m.Step == steps))
                            err.WriteLine($"step {m.Step}/{steps} loss {m.Loss:F4} lr {m.Lr:E2} |g| {m.GradNorm:F2} α {m.Alpha:F2} history {m.History:F1} {m.TokensPerSecond:F0} tok/s");
                        report?.Invoke((int)(m.Step - start), (int)(steps - start));
                        if (m.Step % pr.GetValue(every) == 0 || m.Step == steps) Save();
                    }
                    return 0;
                });
            }
            if (trainer.Step == steps && !Directory.Exists(ckpt)) Save();
            var last = losses.Count > 0 ? losses[^1].Loss : double.NaN;
            pr.InvocationConfiguration.Output.WriteLine($"trained to step {trainer.Step}: loss {last:F4}; model in {outDir} (hici i3 eval-history --model {outDir} --data {Path.Combine(outDir, "data", "heldout.bin")})");
            return 0;
        }));
        return cmd;
    }

    private static HfTokenizer PrepareTokenizer(string? given, string outDir, string[] data, CorpusFormat format, int vocab, TextWriter err)
    {
        if (given is not null)
        {
            var t = HfTokenizer.Load(given);
            foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
            {
                var src = Directory.Exists(given) ? Path.Combine(given, f) : (f == "tokenizer.json" ? given : Path.Combine(Path.GetDirectoryName(given)!, f));
                if (File.Exists(src)) InputFiles.Copy(src, Path.Combine(outDir, f));
            }
            return t;
        }
        if (File.Exists(Path.Combine(outDir, "tokenizer.json"))) return HfTokenizer.Load(outDir);
        if (data.Length == 1 && data[0].EndsWith(".bin", StringComparison.OrdinalIgnoreCase))
            throw new HiciException($"{data[0]}: a packed .bin stream needs --tokenizer");
        err.WriteLine($"training a {vocab}-token BPE tokenizer on the data first");
        var r = I3TokenizerCommand.Train(I3Corpus.Files(data, format), format, vocab, 2);
        BpeTrainer.Save(r, outDir);
        return HfTokenizer.Load(outDir);
    }

    /// <summary>Packs the documents once into OUTPUT/data/{train,heldout}.bin (every 20th document held out; reused on resume).</summary>
    private static (int[] Train, int[] Held) PrepareData(string outDir, string[] data, CorpusFormat format, HfTokenizer tok, int vocab, TextWriter err)
    {
        var dir = Path.Combine(outDir, "data");
        string trainBin = Path.Combine(dir, "train.bin"), heldBin = Path.Combine(dir, "heldout.bin");
        if (data.Length == 1 && data[0].EndsWith(".bin", StringComparison.OrdinalIgnoreCase))
            return (I3Corpus.ReadBin(data[0], vocab), File.Exists(heldBin) ? I3Corpus.ReadBin(heldBin, vocab) : []);
        if (File.Exists(trainBin) && File.Exists(heldBin)) return (I3Corpus.ReadBin(trainBin, vocab), I3Corpus.ReadBin(heldBin, vocab));
        var files = I3Corpus.Files(data, format);
        var trainFiles = files.Where((_, i) => files.Count < 20 || i % 20 != 19).ToList();
        var heldFiles = files.Count < 20 ? [] : files.Where((_, i) => i % 20 == 19).ToList();
        var (train, held) = Progress.Run("tokenizing", report =>
        {
            int n = 0;
            var a = I3Corpus.Pack(trainFiles.Select(f => I3Corpus.ReadDocument(f, format)), tok, _ => report?.Invoke(++n, files.Count));
            var b = I3Corpus.Pack(heldFiles.Select(f => I3Corpus.ReadDocument(f, format)), tok, _ => report?.Invoke(++n, files.Count));
            return (a, b);
        });
        Directory.CreateDirectory(dir);
        I3Corpus.WriteBin(trainBin, train);
        I3Corpus.WriteBin(heldBin, held);
        err.WriteLine($"tokenized {files.Count} documents → {dir}");
        return (train, held);
    }

    private static void CopyTokenizer(string from, string to)
    {
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
        {
            var src = Path.Combine(from, f);
            if (File.Exists(src)) InputFiles.Copy(src, Path.Combine(to, f));
        }
    }

    /// <summary>Keeps the metrics lines up to <paramref name="step"/> (a resumed run rewrites what came after) and returns their losses.</summary>
    private static List<(long Step, double Loss)> TrimMetrics(string path, long step)
    {
        var keep = new List<string>();
        var losses = new List<(long, double)>();
        if (File.Exists(path))
            foreach (var (_, line) in InputFiles.ReadLines(path, Hici.Training.MetricsLog.MaxLineBytes))
            {
                try
                {
                    var n = JsonNode.Parse(line);
                    long s = n!["step"]!.GetValue<long>();
                    if (s > step) continue;
                    keep.Add(line); losses.Add((s, n["loss"]!.GetValue<double>()));
                }
                catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or FormatException) { }
            }
        AtomicFile.Write(path, s => s.Write(Encoding.UTF8.GetBytes(string.Concat(keep.Select(l => l + "\n")))));
        return losses;
    }

    private static void PlotLoss(string path, IReadOnlyList<(long Step, double Loss)> pts)
    {
        if (pts.Count == 0) return;
        var plt = new Plot();
        var s = plt.Add.Scatter(pts.Select(p => (double)p.Step).ToArray(), pts.Select(p => p.Loss).ToArray());
        s.MarkerSize = 0;
        plt.Title("i3 training loss");
        plt.XLabel("optimizer step");
        plt.YLabel("loss (mean token NLL)");
        var bytes = plt.GetImageBytes(800, 500, ImageFormat.Png);
        AtomicFile.Write(path, st => st.Write(bytes));
    }
}
