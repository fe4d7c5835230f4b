using System.CommandLine;
using Hici.Hierarchical;
using Hici.Lora;
using Hici.Models;
using Hici.Training;

namespace Hici.Cli.Training;

/// <summary>The flags `hici train` and `hici sft` share, named after the reference's (fine-tune_hici.py).</summary>
public sealed class TrainingOptions
{
    public readonly Option<string> Model = new("--model") { Description = "Base HF model folder", Required = true };
    public readonly Option<string> Output = new("--output") { Description = "Run folder: checkpoint-<step>/, metrics.jsonl, runs/ (TensorBoard), loss.png", Required = true };
    public readonly Option<int> MaxLength = new("--model-max-length") { Description = "Training sequence length (RoPE is scaled for it as the reference does)", DefaultValueFactory = _ => 8192 };
    public readonly Option<int> LoraRank = new("--lora-rank") { Description = "LoRA r on every q/k/v/o projection, HiCI's included (0 = no LoRA)", DefaultValueFactory = _ => 8 };
    public readonly Option<double> LoraAlpha = new("--lora-alpha") { Description = "LoRA alpha (scale alpha/r)", DefaultValueFactory = _ => 16 };
    public readonly Option<double> LoraDropout = new("--lora-dropout") { Description = "LoRA dropout", DefaultValueFactory = _ => 0 };
    public readonly Option<string> Trainable = new("--trainable") { Description = "Comma-separated substrings of parameter names that train besides LoRA; 'all' = every parameter", DefaultValueFactory = _ => "embed,norm,local_constructor,global_integrator" };
    public readonly Option<double> Lr = new("--lr") { Description = "Learning rate", DefaultValueFactory = _ => 2e-5 };
    public readonly Option<double?> HiciLr = new("--hici-lr") { Description = "Learning rate of the HiCI modules (incl. their LoRA); default 2e-4 with HiCI modules" };
    public readonly Option<double> WeightDecay = new("--weight-decay") { Description = "AdamW weight decay", DefaultValueFactory = _ => 0 };
    public readonly Option<int> Warmup = new("--warmup-steps") { Description = "Linear warm-up steps", DefaultValueFactory = _ => 20 };
    public readonly Option<string> Scheduler = new("--scheduler") { Description = "constant_with_warmup | cosine | linear", DefaultValueFactory = _ => "constant_with_warmup" };
    public readonly Option<int> MaxSteps = new("--max-steps") { Description = "Optimizer steps", DefaultValueFactory = _ => 1000 };
    public readonly Option<int> Batch = new("--batch-size") { Description = "Sequences per micro-batch", DefaultValueFactory = _ => 1 };
    public readonly Option<int> Accum = new("--grad-accum") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => 1 };
    public readonly Option<double> MaxGradNorm = new("--max-grad-norm") { Description = "Clip of the global gradient norm (0 = none)", DefaultValueFactory = _ => 1.0 };
    public readonly Option<double?> HiciClip = new("--hici-grad-clip") { Description = "A separate clip of the HiCI parameters' gradient norm, applied before the global clip (e.g. 0.3)" };
    public readonly Option<bool> Mixed = new("--mixed-segments") { Description = "Draw the HiCI segment ratio per forward from 1/2, 1/4, 1/8 (reference MIXED_GROUP_TRAINING)" };
    public readonly Option<bool> Checkpointing = new("--gradient-checkpointing") { Description = "Recompute each decoder layer in the backward pass: keeps only the layers' inputs (less memory, about one more forward per step)" };
    public readonly Option<int> SaveSteps = new("--save-steps") { Description = "Checkpoint every N steps (and at the end)", DefaultValueFactory = _ => 500 };
    public readonly Option<int?> SaveLimit = new("--save-total-limit") { Description = "Keep only the newest N checkpoints" };
    public readonly Option<long> Seed = new("--seed") { Description = "Seed (LoRA/HiCI init, data order, dropout)", DefaultValueFactory = _ => 42 };
    public readonly Option<string?> Resume = new("--resume") { Description = "Continue a run exactly from OUTPUT/checkpoint-<step>" };

    public void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { Model, Output, MaxLength, LoraRank, LoraAlpha, LoraDropout, Trainable, Lr, HiciLr, WeightDecay, Warmup, Scheduler,
                     MaxSteps, Batch, Accum, MaxGradNorm, HiciClip, Mixed, Checkpointing, SaveSteps, SaveLimit, Seed, Resume })
            cmd.Options.Add(o);
        cmd.Options.Add(Common.Dtype);
        cmd.Options.Add(Common.Threads);
        cmd.Options.Add(ModelOptions.Attention);
        HiciFlags.AddTo(cmd);
    }

    public TrainOptions Build(ParseResult pr)
    {
        var model = pr.GetValue(Model)!;
        // full attention with a HiCI config at hand holds (and trains) the HiCI modules without running them
        var attention = ModelOptions.AttentionSetting(pr, model, null);
        var hici = attention.Options as HiciAttentionOptions;
        if (pr.GetValue(Mixed))
        {
            if (hici is null) throw new HiciException("--mixed-segments needs HiCI (--attention hici)");
            attention = attention with { Options = hici = hici with { Config = hici.Config with { MixedSegmentRatios = HiciConfig.DefaultMixedRatios } } };
        }
        int r = pr.GetValue(LoraRank);
        if (r < 0) throw new HiciException($"--lora-rank must not be negative (got {r})");
        return new TrainOptions
        {
            ModelDir = model,
            OutputDir = pr.GetValue(Output)!,
            ModelMaxLength = pr.GetValue(MaxLength),
            Lora = r == 0 ? null : new LoraConfig { R = r, Alpha = pr.GetValue(LoraAlpha), Dropout = pr.GetValue(LoraDropout) },
            Trainable = pr.GetValue(Trainable)!.Split(',', StringSplitOptions.RemoveEmptyEntries),
            LearningRate = pr.GetValue(Lr),
            HiciLearningRate = pr.GetValue(HiciLr) ?? (hici is null ? null : 2e-4),
            WeightDecay = pr.GetValue(WeightDecay),
            WarmupSteps = pr.GetValue(Warmup),
            Scheduler = LrSchedule.Parse(pr.GetValue(Scheduler)!),
            MaxSteps = pr.GetValue(MaxSteps),
            BatchSize = pr.GetValue(Batch),
            GradAccum = pr.GetValue(Accum),
            MaxGradNorm = pr.GetValue(MaxGradNorm),
            HiciGradClip = pr.GetValue(HiciClip),
            GradientCheckpointing = pr.GetValue(Checkpointing),
            SaveSteps = pr.GetValue(SaveSteps),
            SaveTotalLimit = pr.GetValue(SaveLimit),
            Seed = pr.GetValue(Seed),
            DType = Common.ParseDtype(pr.GetValue(Common.Dtype)!),
            Attention = attention,
        }.Validate();
    }
}
