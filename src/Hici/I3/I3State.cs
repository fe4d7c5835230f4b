using TorchSharp;
using Hici.Models;
using static TorchSharp.torch;

namespace Hici.I3;

/// <summary>
/// Everything an i3 stream carries between calls, all bounded whatever the length: position in the current chunk,
/// the RWKV layer states, the chunk's stream rows for the compressor (preallocated [B, W, d]), the attention layers'
/// chunk KV caches and memory keys/values, and the compressed history. Rows of a batch advance in lock-step.
/// </summary>
public sealed class I3State : IModelState
{
    public long Batch { get; }
    public int ChunkPos { get; internal set; }
    /// <summary>Tokens consumed since the state was created or reset.</summary>
    public long Length { get; private set; }
    /// <summary>Unbounded: everything an i3 stream keeps has a fixed size.</summary>
    public long MaxLength => long.MaxValue;
    /// <summary>Ignored: positions are per chunk.</summary>
    public long? RopeLength { get; set; }
    /// <summary>The RWKV layer states, then the attention layers' chunk caches, then the compressed history.</summary>
    public IReadOnlyList<ILayerState> Layers => [.. Rwkv, .. Kv, History];
    public void EnsureRoom(long newTokens) { }
    public void Advance(long newTokens) => Length += newTokens;
    public RwkvLayerState[] Rwkv { get; }
    public Tensor ChunkBuffer { get; }
    public ChunkKvCache[] Kv { get; }
    public CompressedHistory History { get; }
    /// <summary>Memory keys/values per attention layer for the current chunk (null until first needed; cleared at boundaries).</summary>
    internal MemoryKv[]? MemKv { get; set; }

    private readonly I3Config _cfg;
    private readonly ScalarType _dtype;
    private readonly Device _device;

    internal I3State(I3Config cfg, long batch, ScalarType dtype, Device device, int? historyCapacity = null)
    {
        if (historyCapacity is < 0 || historyCapacity > cfg.MaxCompressedChunks)
            throw new HiciException($"history capacity {historyCapacity} is outside [0, {cfg.MaxCompressedChunks}] (the age embedding has {cfg.MaxCompressedChunks} rows)");
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch));
        _cfg = cfg; _dtype = dtype; _device = device;
        Batch = batch;
        Rwkv = new RwkvLayerState[cfg.NRwkvLayers];
        ResetRwkv();
        ChunkBuffer = torch.zeros([batch, cfg.KernelWindow, cfg.DModel], dtype: dtype, device: device);
        Kv = Enumerable.Range(0, cfg.NAttnLayers).Select(_ => new ChunkKvCache(batch, cfg.Heads, cfg.KernelWindow, cfg.DModel / cfg.Heads, dtype, device)).ToArray();
        History = new CompressedHistory(historyCapacity ?? cfg.MaxCompressedChunks);
    }

    internal void ResetRwkv()
    {
        for (int l = 0; l < Rwkv.Length; l++)
        {
            Rwkv[l]?.Dispose();
            var fresh = RwkvLayerState.Fresh(Batch, _cfg.DModel, _dtype, _device);
            foreach (var t in fresh.Tensors) t.DetachFromDisposeScope();   // may run inside a step's scope; the state owns them
            Rwkv[l] = fresh;
        }
    }

    internal void SetRwkv(int layer, RwkvLayerState s)
    {
        var keep = s.Detached();
        Rwkv[layer].Dispose();
        Rwkv[layer] = keep;
    }

    internal void ClearMemKv()
    {
        if (MemKv is null) return;
        foreach (var m in MemKv) m.Dispose();
        MemKv = null;
    }

    /// <summary>Back to an empty stream (no history, fresh RWKV states, chunk position 0).</summary>
    public void Reset()
    {
        ChunkPos = 0; Length = 0;
        ResetRwkv();
        foreach (var c in Kv) c.Reset();
        ClearMemKv();
        History.Clear();
    }

    public void Dispose()
    {
        foreach (var r in Rwkv) r.Dispose();
        ChunkBuffer.Dispose();
        foreach (var c in Kv) c.Dispose();
        ClearMemKv();
        History.Dispose();
    }
}
