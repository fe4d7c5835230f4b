using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>
/// One layer's keys and values, preallocated as [B, n_kv, MaxLength, head_dim] (post-RoPE keys). Decoding
/// writes into slices in place, so a step costs no allocation proportional to the history and memory
/// stays flat however long the loop runs.
/// </summary>
public sealed class LayerKvCache : ILayerState
{
    public Tensor Keys { get; }
    public Tensor Values { get; }

    public LayerKvCache(long batch, long kvHeads, long maxLength, long headDim, ScalarType dtype, Device device)
    {
        Keys = torch.zeros(new[] { batch, kvHeads, maxLength, headDim }, dtype: dtype, device: device).DetachFromDisposeScope();
        Values = torch.zeros(new[] { batch, kvHeads, maxLength, headDim }, dtype: dtype, device: device).DetachFromDisposeScope();
    }

    /// <summary>
    /// Stores k, v ([B, n_kv, L, d]) at positions [start, start+L) and returns views of the filled prefix
    /// [0, start+L). The views are registered in the caller's dispose scope.
    /// </summary>
    public (Tensor K, Tensor V) Append(Tensor k, Tensor v, long start)
    {
        long len = k.shape[2];
        using (var dk = Keys.narrow(2, start, len)) dk.copy_(k);
        using (var dv = Values.narrow(2, start, len)) dv.copy_(v);
        return (Keys.narrow(2, 0, start + len), Values.narrow(2, 0, start + len));
    }

    public void Dispose() { Keys.Dispose(); Values.Dispose(); }
}

/// <summary>
/// The whole model's cache, the <see cref="IModelState"/> of softmax attention. <see cref="Length"/> is the
/// number of positions already processed; the model advances it after each forward, so a forward's new
/// tokens sit at positions [Length, Length+L).
/// </summary>
public sealed class KvCache : IModelState
{
    public IReadOnlyList<LayerKvCache> Layers { get; }
    IReadOnlyList<ILayerState> IModelState.Layers => Layers;
    public long MaxLength { get; }
    public long Batch { get; }
    public long Length { get; private set; }

    /// <summary>
    /// For dynamic-NTK RoPE only: the sequence length to scale for. Null (generation) means "positions
    /// seen so far", as HF does while decoding. Scoring a known sequence in chunks sets it to the full
    /// length so every chunk uses the base a single full-length forward would use.
    /// </summary>
    public long? RopeLength { get; set; }

    public KvCache(ModelConfig cfg, long batch, long maxLength, ScalarType dtype, Device device)
    {
        if (maxLength <= 0) throw new HiciException($"KV cache length must be positive (got {maxLength})");
        Batch = batch;
        MaxLength = maxLength;
        // A typo'd length should be an error, not a native allocation failure or an OOM kill mid-run.
        double need = RequiredBytes(cfg, batch, maxLength, dtype);
        long available = Hici.Runtime.MemoryEstimate.Available;
        if (device.type == DeviceType.CPU && need > available)
            throw new HiciException($"a KV cache for {maxLength} positions (batch {batch}) needs {need / (1L << 30):F1} GiB, more than the {available / (double)(1L << 30):F1} GiB this process can use");
        Layers = Enumerable.Range(0, cfg.NumHiddenLayers)
            .Select(_ => new LayerKvCache(batch, cfg.NumKeyValueHeads, maxLength, cfg.HeadDim, dtype, device))
            .ToArray();
    }

    /// <summary>Bytes a cache of this shape takes: 2 (K and V) × layers × B × n_kv × len × head_dim × element size.</summary>
    public static long Bytes(ModelConfig cfg, long batch, long maxLength, ScalarType dtype) =>
        2L * cfg.NumHiddenLayers * batch * cfg.NumKeyValueHeads * maxLength * cfg.HeadDim * ElementSize(dtype);

    /// <summary><see cref="Bytes"/> in floating point, so absurd lengths are measured rather than overflowing.</summary>
    public static double RequiredBytes(ModelConfig cfg, long batch, long maxLength, ScalarType dtype) =>
        2.0 * cfg.NumHiddenLayers * batch * cfg.NumKeyValueHeads * (double)maxLength * cfg.HeadDim * ElementSize(dtype);

    internal static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    public void EnsureRoom(long newTokens)
    {
        if (Length + newTokens > MaxLength)
            throw new HiciException($"KV cache is full: {Length} cached + {newTokens} new tokens > capacity {MaxLength}");
    }

    public void Advance(long newTokens) => Length += newTokens;

    /// <summary>Forgets the contents (the memory is kept) so the cache can serve a new sequence.</summary>
    public void Reset() => Length = 0;

    public void Dispose() { foreach (var l in Layers) l.Dispose(); }
}
