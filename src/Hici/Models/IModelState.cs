namespace Hici.Models;

/// <summary>
/// One layer's part of an <see cref="IModelState"/>: what the layer keeps between forward calls. A
/// preallocated K/V cache (<see cref="LayerKvCache"/>) is one kind; a recurrent layer's state or a
/// compressed history is another. The layer that reads it knows its concrete type.
/// </summary>
public interface ILayerState : IDisposable { }

/// <summary>
/// Everything a model carries from one forward call to the next (prefill, then decode steps): one
/// <see cref="ILayerState"/> per layer plus the number of positions already processed. The model checks
/// room before a forward (<see cref="EnsureRoom"/>) and advances <see cref="Length"/> after it.
/// </summary>
public interface IModelState : IDisposable
{
    /// <summary>Positions already processed; a forward's new tokens sit at [Length, Length + L).</summary>
    long Length { get; }
    long Batch { get; }
    /// <summary>Positions the state can hold (long.MaxValue for a state of fixed size, e.g. recurrent).</summary>
    long MaxLength { get; }
    /// <summary>
    /// The sequence length position encodings scale for (dynamic-NTK RoPE), or null = positions seen so far
    /// (as HF does while decoding). Scoring a known sequence in chunks sets the full length. Models without
    /// length-dependent positions ignore it.
    /// </summary>
    long? RopeLength { get; set; }
    IReadOnlyList<ILayerState> Layers { get; }

    /// <summary>Throws a HiciException when <paramref name="newTokens"/> more positions do not fit.</summary>
    void EnsureRoom(long newTokens);
    /// <summary>Called by the model after a forward of <paramref name="newTokens"/> positions.</summary>
    void Advance(long newTokens);
    /// <summary>Forgets the contents (keeping the memory) so the state can serve a new sequence.</summary>
    void Reset();
}
