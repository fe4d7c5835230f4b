namespace Hici.Training;

/// <summary>One micro-batch: ids and labels [Rows, Length] row-major (labels −100 where nothing is scored).</summary>
public sealed record Batch(long[] Ids, long[] Labels, int Rows, int Length);

/// <summary>Where training sequences come from, with a position a checkpoint can hold.</summary>
public interface IBatchSource
{
    Batch Next(int rows);
    SamplerState State { get; }
    void Restore(SamplerState state);
}

/// <summary>Pre-training batches from a token file: labels are the ids, with the pad id (reference packing) masked.</summary>
public sealed class PretrainBatches(TokenSampler sampler, int? padId) : IBatchSource
{
    public Batch Next(int rows)
    {
        var ids = sampler.Next(rows);
        var labels = (long[])ids.Clone();
        if (padId is { } p) for (int i = 0; i < labels.Length; i++) if (labels[i] == p) labels[i] = CausalLoss.IgnoreIndex;
        return new Batch(ids, labels, rows, sampler.SequenceLength);
    }

    public SamplerState State => sampler.State;
    public void Restore(SamplerState state) => sampler.Restore(state);
}
