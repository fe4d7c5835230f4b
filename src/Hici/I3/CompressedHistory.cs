using Hici.Models;
using static TorchSharp.torch;

namespace Hici.I3;

/// <summary>
/// FIFO of at most <see cref="Capacity"/> compressed chunks ([B, L, d] each, oldest first), stored detached in
/// their own storage: no gradient ever flows back into an earlier chunk. Pushing past capacity drops the oldest.
/// </summary>
public sealed class CompressedHistory : ILayerState
{
    private readonly List<Tensor> _entries = [];

    public CompressedHistory(int capacity)
    {
        if (capacity < 0) throw new ArgumentOutOfRangeException(nameof(capacity));
        Capacity = capacity;
    }

    public int Capacity { get; }
    public int Count => _entries.Count;
    public IReadOnlyList<Tensor> Entries => _entries;

    public void Push(Tensor block)
    {
        if (Capacity == 0) return;
        _entries.Add(block.detach().clone().DetachFromDisposeScope());
        while (_entries.Count > Capacity)
        {
            _entries[0].Dispose();
            _entries.RemoveAt(0);
        }
    }

    /// <summary>Keeps only the newest <paramref name="n"/> entries (the training lanes hold M−1 beside the fresh one).</summary>
    public void KeepNewest(int n)
    {
        while (_entries.Count > Math.Max(n, 0)) { _entries[0].Dispose(); _entries.RemoveAt(0); }
    }

    public void Clear()
    {
        foreach (var e in _entries) e.Dispose();
        _entries.Clear();
    }

    public void Dispose() => Clear();
}
