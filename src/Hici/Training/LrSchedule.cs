namespace Hici.Training;

public enum LrScheduleKind { ConstantWithWarmup, Cosine, Linear }

/// <summary>
/// The learning-rate factor of transformers' schedulers (get_constant_schedule_with_warmup,
/// get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup), applied multiplicatively to every
/// parameter group's base rate as LambdaLR does. A pure function of the optimizer step, so the scheduler's
/// whole state is the step count the checkpoint already holds.
/// </summary>
public sealed record LrSchedule(LrScheduleKind Kind, int WarmupSteps, int TotalSteps)
{
    /// <summary>Factor for the update with 0-based index <paramref name="step"/> (the first update uses step 0).</summary>
    public double Factor(long step)
    {
        if (step < WarmupSteps) return (double)step / Math.Max(1, WarmupSteps);
        return Kind switch
        {
            LrScheduleKind.ConstantWithWarmup => 1.0,
            LrScheduleKind.Linear => Math.Max(0.0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps)),
            LrScheduleKind.Cosine => Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps)))),
            _ => throw new ArgumentOutOfRangeException(nameof(Kind)),
        };
    }

    public static LrScheduleKind Parse(string s) => s.ToLowerInvariant() switch
    {
        "constant_with_warmup" => LrScheduleKind.ConstantWithWarmup,
        "cosine" => LrScheduleKind.Cosine,
        "linear" => LrScheduleKind.Linear,
        _ => throw new HiciException($"--scheduler: '{s}' is not supported (constant_with_warmup, cosine or linear)"),
    };

    public static string Name(LrScheduleKind k) => k switch
    {
        LrScheduleKind.ConstantWithWarmup => "constant_with_warmup",
        LrScheduleKind.Cosine => "cosine",
        _ => "linear",
    };
}
