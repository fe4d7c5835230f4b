using static TorchSharp.torch;

namespace Hici.Hierarchical;

/// <summary>
/// What one HiCI layer carries from segment g to segment g+1 when a stream is scored segment by segment
/// (causal_shift / causal_shift_g): the local slots L_g [B, M, H] (causal_shift only), the global slots G_g
/// [B, K, H] and the running statistics that G_{g+1} is computed from. Its size does not grow with the stream.
/// </summary>
public sealed class HiciStreamState : IDisposable
{
    public CausalStatsState Stats { get; } = new();
    public Tensor? Local { get; private set; }
    public Tensor? Global { get; private set; }
    /// <summary>Segments seen so far.</summary>
    public long Segments { get; private set; }

    internal void Advance(Tensor? local, Tensor? global)
    {
        Local?.Dispose();
        Global?.Dispose();
        Local = local?.detach().DetachFromDisposeScope();
        Global = global?.detach().DetachFromDisposeScope();
        Segments++;
    }

    public void Dispose()
    {
        Stats.Dispose();
        Local?.Dispose();
        Global?.Dispose();
    }
}
