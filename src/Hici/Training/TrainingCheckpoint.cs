using System.Text.Json;
using System.Text.Json.Nodes;
using Hici.Hierarchical;
using Hici.IO;
using Hici.Lora;
using Hici.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Training;

/// <summary>
/// OUTPUT/checkpoint-&lt;step&gt;/: the LoRA adapter in PEFT's layout (adapter_config.json +
/// adapter_model.safetensors, keys as get_trainable_weights.py writes them), trainable.safetensors (every other
/// trained tensor — embeddings, norms, HiCI — fp32, under the keys of the reference's trainable_params.bin),
/// hici_config.json, the optimizer state (optimizer.bin, TorchSharp's format), the schedule (scheduler.json)
/// and trainer_state.json (step, data position, random states). Written into a temporary folder and renamed,
/// so a crash never leaves half a checkpoint; older checkpoints beyond --save-total-limit are removed after.
/// </summary>
public static class TrainingCheckpoint
{
    public const string Prefix = "checkpoint-";
    public const string TrainableName = "trainable.safetensors";
    public const string OptimizerName = "optimizer.bin";
    public const string SchedulerName = "scheduler.json";
    public const string ArgsName = "training_args.json";

    public static string Save(string outputDir, TrainOptions o, TrainingModel tm, MasterWeights masters, OptimizerHelper opt,
        LrSchedule schedule, TrainerState state)
    {
        Directory.CreateDirectory(outputDir);
        var final = AtomicDirectory.Write(Path.Combine(outputDir, Prefix + state.GlobalStep), tmp =>
        {
            if (o.Lora is { } lc)
                PeftAdapter.Save(tm.Model, tmp, new PeftAdapterConfig { Lora = lc, BaseModelNameOrPath = Path.GetFullPath(o.ModelDir) });
            using (var scope = NewDisposeScope())
            {
                var tensors = masters.Items.Where(i => !IsLora(i.Name))
                    .Select(i => (WeightMap.ToHf(i.Name) ?? i.Name, i.Master.detach().to(ScalarType.Float32).contiguous())).ToList();
                if (tensors.Count > 0) SafeTensorsWriter.Save(Path.Combine(tmp, TrainableName), tensors);
            }
            o.Hici?.Save(Path.Combine(tmp, HiciConfig.FileName));
            opt.save_state_dict(Path.Combine(tmp, OptimizerName));
            AtomicDirectory.WriteJson(Path.Combine(tmp, SchedulerName), new JsonObject
            {
                ["type"] = LrSchedule.Name(schedule.Kind), ["warmup_steps"] = schedule.WarmupSteps,
                ["total_steps"] = schedule.TotalSteps, ["last_step"] = state.GlobalStep,
            });
            AtomicDirectory.WriteJson(Path.Combine(tmp, ArgsName), Args(o, tm));
            AtomicDirectory.WriteJson(Path.Combine(tmp, TrainerState.FileName), state.ToJson());
        }, replace: true);
        Prune(outputDir, o.SaveTotalLimit);
        return final;
    }

    /// <summary>Restores weights (adapter, trainable tensors into masters and model) and the optimizer state.</summary>
    public static TrainerState Load(string dir, TrainingModel tm, MasterWeights masters, OptimizerHelper opt, bool loadOptimizer = true)
    {
        if (!Directory.Exists(dir)) throw new HiciException($"{dir}: no such checkpoint folder");
        var state = TrainerState.Load(dir);
        LoadWeights(dir, tm, masters);
        if (loadOptimizer)
        {
            var optPath = Path.Combine(dir, OptimizerName);
            if (!File.Exists(optPath)) throw new HiciException($"{dir}: no {OptimizerName}");
            LoadOptimizerState(opt, optPath);
        }
        return state;
    }

    /// <summary>
    /// TorchSharp's optimizer-state reader loads into the optimizer's existing tensors (shapes and types are checked
    /// against them, so a damaged file cannot make it allocate), but reports a damaged or foreign file with whatever
    /// exception its reader hits: those become one line naming the file.
    /// </summary>
    public static void LoadOptimizerState(OptimizerHelper opt, string path)
    {
        InputFiles.CheckRegularFile(path);
        try { opt.load_state_dict(path); }
        catch (Exception e) when (e is ArgumentException or EndOfStreamException or IOException or InvalidDataException or OverflowException
                                      or FormatException or InvalidCastException or IndexOutOfRangeException or NotImplementedException
                                      or System.Runtime.InteropServices.ExternalException)
        {
            throw new HiciException($"{path}: not the optimizer state of this run ({e.Message.Split('\n')[0].Trim()})", e);
        }
    }

    /// <summary>The trained weights only (SFT's --init-from): adapter A/B and trainable tensors.</summary>
    public static void LoadWeights(string dir, TrainingModel tm, MasterWeights masters)
    {
        if (File.Exists(Path.Combine(dir, PeftAdapterConfig.FileName)))
        {
            using var ad = PeftAdapter.Open(dir);
            ad.LoadInto(tm.Model, new PeftLoadOptions(Strict: true));
        }
        else if (LoraApplier.Layers(tm.Model).Count > 0)
            throw new HiciException($"{dir}: no {PeftAdapterConfig.FileName}, but the run has LoRA layers");
        var path = Path.Combine(dir, TrainableName);
        var want = masters.Items.Where(i => !IsLora(i.Name)).ToList();
        if (want.Count == 0) return;
        if (!File.Exists(path)) throw new HiciException($"{dir}: no {TrainableName}");
        using var src = SafeTensorsWeightSource.Open(path);
        using var noGrad = no_grad();
        var missing = new List<string>();
        foreach (var (name, p, m) in want)
        {
            var key = WeightMap.ToHf(name) ?? name;
            if (!src.Contains(key)) { missing.Add(key); continue; }
            if (!src.Shape(key).SequenceEqual(m.shape))
                throw new HiciException($"{path}: {key} is [{string.Join(", ", src.Shape(key))}], the model has [{string.Join(", ", m.shape)}]");
        }
        if (missing.Count > 0) throw new HiciException($"{path}: lacks {missing.Count} trained tensor(s), e.g. {missing[0]} (was the run trained with other --trainable?)");
        foreach (var (name, p, m) in want)
        {
            using var t = src.Load(WeightMap.ToHf(name) ?? name, ScalarType.Float32, m.device);
            m.copy_(t);
            if (!ReferenceEquals(p, m)) p.copy_(t);
        }
    }

    /// <summary>Checkpoint folders under <paramref name="outputDir"/>, oldest step first.</summary>
    public static IReadOnlyList<(long Step, string Dir)> List(string outputDir)
    {
        if (!Directory.Exists(outputDir)) return Array.Empty<(long, string)>();
        return Directory.GetDirectories(outputDir, Prefix + "*")
            .Select(d => (Ok: long.TryParse(Path.GetFileName(d)[Prefix.Length..], out var s), Step: s, Dir: d))
            .Where(x => x.Ok).OrderBy(x => x.Step).Select(x => (x.Step, x.Dir)).ToList();
    }

    private static void Prune(string outputDir, int? limit)
    {
        if (limit is not { } n) return;
        var all = List(outputDir);
        foreach (var (_, d) in all.Take(Math.Max(0, all.Count - n))) Directory.Delete(d, recursive: true);
    }

    public static bool IsLora(string name) => name.Contains(".lora_A.", StringComparison.Ordinal) || name.Contains(".lora_B.", StringComparison.Ordinal);

    private static JsonObject Args(TrainOptions o, TrainingModel tm) => new()
    {
        ["model"] = Path.GetFullPath(o.ModelDir), ["model_max_length"] = o.ModelMaxLength,
        ["rope_scaling_factor"] = tm.RopeFactor, ["attention"] = o.Attention.Name, ["hici_runs"] = (o.Attention.Options as HiciAttentionOptions)?.Run,
        ["lora_r"] = o.Lora?.R, ["lora_alpha"] = o.Lora?.Alpha, ["lora_dropout"] = o.Lora?.Dropout,
        ["trainable"] = string.Join(",", o.Trainable), ["lr"] = o.LearningRate, ["hici_lr"] = o.HiciLearningRate,
        ["weight_decay"] = o.WeightDecay, ["warmup_steps"] = o.WarmupSteps, ["scheduler"] = LrSchedule.Name(o.Scheduler),
        ["max_steps"] = o.MaxSteps, ["batch_size"] = o.BatchSize, ["grad_accum"] = o.GradAccum,
        ["max_grad_norm"] = o.MaxGradNorm, ["hici_grad_clip"] = o.HiciGradClip, ["seed"] = o.Seed,
        ["dtype"] = o.DType == ScalarType.BFloat16 ? "bf16" : "fp32",
    };
}
