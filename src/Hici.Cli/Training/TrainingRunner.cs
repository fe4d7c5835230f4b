using System.Runtime.InteropServices;
using Hici.Training;
using Spectre.Console;

namespace Hici.Cli.Training;

/// <summary>
/// Runs a <see cref="Trainer"/> the way the CLI shows it: a memory estimate first (refusing what cannot fit),
/// a live progress bar on stderr (step, loss, lr, tokens/s, ETA) or a line every few steps when stderr is not a
/// terminal, metrics.jsonl + TensorBoard events, loss.png refreshed at each checkpoint, and SIGINT/SIGTERM turned
/// into "save a checkpoint after this step and exit".
/// </summary>
public static class TrainingRunner
{
    public const int ExitSigint = 130, ExitSigterm = 143;

    public static int Run(TrainOptions o, TrainingModel tm, IBatchSource data, string kind, string? resume, string? initFrom, string title, Action<string>? log = null)
    {
        log ??= Console.Error.WriteLine;
        long total = tm.Model.parameters().Sum(p => p.numel());
        long trainable = tm.Trainable.Sum(t => t.Param.numel());
        long nonFp32 = tm.Trainable.Where(t => t.Param.dtype != TorchSharp.torch.ScalarType.Float32).Sum(t => t.Param.numel());
        var mem = TrainingMemory.Estimate(tm.Model.Config, o.DType, total, trainable, nonFp32, o.BatchSize, o.ModelMaxLength, o.LossChunkRows, o.GradientCheckpointing);
        mem.CheckFits(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, $"{kind} at length {o.ModelMaxLength} × batch {o.BatchSize}");
        log($"{title}: {trainable:N0} of {total:N0} parameters train ({tm.Trainable.Count} tensors){(tm.RopeFactor is { } f ? $", RoPE linear ×{f:R}" : "")}{(tm.HiciInitialised ? ", HiCI modules freshly initialised" : "")}; memory estimate {mem.Describe()}");

        using var trainer = new Trainer(o, tm, data, kind);
        long startStep = resume is null ? 0 : TrainerState.Load(resume).GlobalStep;
        using var metrics = new MetricsLog(o.OutputDir, startStep);
        var lossPng = Path.Combine(o.OutputDir, "loss.png");
        trainer.OnCheckpoint = dir =>
        {
            Plots.Loss(lossPng, title, (kind, MetricsLog.ReadLosses(metrics.Path)));
            if (!Progress.Interactive) log($"checkpoint {dir}");
        };
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; trainer.StopRequested = "SIGINT"; });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; trainer.StopRequested = "SIGTERM"; });

        TrainResult result;
        try
        {
            result = WithProgress(trainer, o, startStep, metrics, title, resume, initFrom, log);
        }
        catch (TrainingDivergedException)
        {
            if (MetricsLog.ReadLosses(metrics.Path) is { Count: > 0 } pts) Plots.Loss(lossPng, title, (kind, pts));
            throw;
        }
        var last = result.Metrics.LastOrDefault();
        if (result.StoppedBy is { } sig)
        {
            log($"stopped by {sig} after step {result.Steps}; checkpoint {result.LastCheckpoint}; continue with --resume {result.LastCheckpoint}");
            return sig == "SIGINT" ? ExitSigint : ExitSigterm;
        }
        Console.WriteLine($"trained {result.Steps} steps; final loss {last?.Loss:0.####}; checkpoint {result.LastCheckpoint}; metrics {metrics.Path}; plot {lossPng}");
        return 0;
    }

    private static TrainResult WithProgress(Trainer trainer, TrainOptions o, long startStep, MetricsLog metrics, string title, string? resume, string? initFrom, Action<string> log)
    {
        if (!Progress.Interactive)
        {
            int every = Math.Max(1, o.MaxSteps / 50);
            trainer.OnStep = m =>
            {
                metrics.Add(m);
                if (m.Step % every == 0 || m.Step == o.MaxSteps)
                    log($"step {m.Step}/{o.MaxSteps}  loss {m.Loss:0.0000}  lr {m.Lr:0.###e+0}  grad-norm {m.GradNorm:0.###}  {m.TokensPerSecond:0} tok/s");
            };
            return trainer.Run(resume, initFrom);
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        TrainResult r = null!;
        console.Progress().AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(title, maxValue: o.MaxSteps);
                task.Value = startStep;
                trainer.OnStep = m =>
                {
                    metrics.Add(m);
                    task.Description = $"{title} step {m.Step}/{o.MaxSteps} loss {m.Loss:0.000} lr {m.Lr:0.##e+0} {m.TokensPerSecond:0} tok/s";
                    task.Value = m.Step;
                };
                r = trainer.Run(resume, initFrom);
                task.StopTask();
            });
        return r;
    }
}
