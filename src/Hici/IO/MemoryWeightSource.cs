using TorchSharp;
using static TorchSharp.torch;

namespace Hici.IO;

/// <summary>Named tensors held in memory (random initialisation, merged weights, tests). Owns its tensors.</summary>
public sealed class MemoryWeightSource : IWeightSource
{
    private readonly Dictionary<string, Tensor> _t;

    public MemoryWeightSource(Dictionary<string, Tensor> tensors, string origin = "memory")
    {
        _t = tensors;
        foreach (var t in _t.Values) t.DetachFromDisposeScope();
        Origin = origin;
    }

    public IReadOnlyDictionary<string, Tensor> Tensors => _t;
    public IReadOnlyCollection<string> Keys => _t.Keys;
    public bool Contains(string key) => _t.ContainsKey(key);
    public long[] Shape(string key) => Get(key).shape;
    public ScalarType DType(string key) => Get(key).dtype;
    public Tensor Load(string key, ScalarType? dtype = null, Device? device = null)
    {
        var t = Get(key);
        return t.to(dtype ?? t.dtype, device ?? t.device, copy: true);
    }
    public string Origin { get; }
    public void Dispose() { foreach (var t in _t.Values) t.Dispose(); _t.Clear(); }

    private Tensor Get(string key) =>
        _t.TryGetValue(key, out var t) ? t : throw new HiciException($"{Origin}: no tensor named '{key}'");
}
