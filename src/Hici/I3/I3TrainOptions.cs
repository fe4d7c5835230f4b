namespace Hici.I3;

/// <summary>
/// i3 training hyper-parameters: micro-batch of B lanes × one W-token chunk, G accumulation micro-steps per
/// optimizer step (G consecutive chunks of each lane), AdamW, linear warmup then cosine to 10 % of the peak at
/// <see cref="ScheduleSteps"/>, global-norm clipping. Lanes are re-seeded together every <see cref="LaneLength"/> chunks.
/// </summary>
public sealed record I3TrainOptions
{
    public int Batch { get; init; } = 4;
    public int GradAccum { get; init; } = 8;
    public double LearningRate { get; init; } = 4e-4;
    public double MinLrRatio { get; init; } = 0.1;
    public int WarmupSteps { get; init; } = 100;
    public int ScheduleSteps { get; init; } = 5000;
    public int MaxSteps { get; init; } = 5000;
    public double WeightDecay { get; init; } = 0.01;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Eps { get; init; } = 1e-8;
    public double Clip { get; init; } = 1.0;
    public int LaneLength { get; init; } = 16;
    public long Seed { get; init; } = 1234;

    /// <summary>Learning rate at optimizer step <paramref name="step"/> (0-based): (i+1)/warmup ramp, then cosine to MinLrRatio·peak, flat after.</summary>
    public double LrAt(long step)
    {
        if (step < WarmupSteps) return LearningRate * (step + 1) / WarmupSteps;
        double span = Math.Max(1, ScheduleSteps - WarmupSteps);
        double progress = Math.Clamp((step - WarmupSteps) / span, 0, 1);
        double min = LearningRate * MinLrRatio;
        return min + 0.5 * (LearningRate - min) * (1 + Math.Cos(Math.PI * progress));
    }

    public void Validate()
    {
        var bad = new List<string>();
        if (Batch <= 0 || GradAccum <= 0) bad.Add("batch and grad-accum must be positive");
        if (!(LearningRate > 0) || MinLrRatio < 0 || MinLrRatio > 1) bad.Add("lr must be positive and the minimum ratio in [0, 1]");
        if (WarmupSteps < 0 || ScheduleSteps <= 0 || MaxSteps <= 0) bad.Add("warmup ≥ 0, schedule and max steps > 0");
        if (WeightDecay < 0 || !(Clip > 0) || LaneLength <= 0) bad.Add("weight decay ≥ 0, clip > 0, lane length > 0");
        if (bad.Count > 0) throw new HiciException("invalid training options: " + string.Join("; ", bad));
    }
}
