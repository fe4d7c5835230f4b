using static TorchSharp.torch;

namespace Hici.IO;

/// <summary>
/// Several weight sources read as one; a key comes from the last source that has it. For a base checkpoint
/// with a trainable_params.bin over it (embed/norm overrides, HiCI weights), or a merged folder's
/// model.safetensors with its hici.safetensors. Does not own the sources.
/// </summary>
public sealed class OverlayWeightSource : IWeightSource
{
    private readonly Dictionary<string, IWeightSource> _owner = new(StringComparer.Ordinal);
    private readonly List<string> _keys = new();

    public OverlayWeightSource(params IWeightSource[] layers)
    {
        if (layers.Length == 0) throw new ArgumentException("at least one source", nameof(layers));
        foreach (var src in layers)
            foreach (var k in src.Keys)
            {
                if (!_owner.ContainsKey(k)) _keys.Add(k);
                _owner[k] = src;
            }
        Origin = string.Join(" + ", layers.Select(l => l.Origin));
    }

    public string Origin { get; }
    public IReadOnlyCollection<string> Keys => _keys;
    public bool Contains(string key) => _owner.ContainsKey(key);
    public long[] Shape(string key) => Owner(key).Shape(key);
    public ScalarType DType(string key) => Owner(key).DType(key);
    public Tensor Load(string key, ScalarType? dtype = null, Device? device = null) => Owner(key).Load(key, dtype, device);
    public void Dispose() { }

    private IWeightSource Owner(string key) =>
        _owner.TryGetValue(key, out var s) ? s : throw new HiciException($"{Origin}: no tensor '{key}'");
}
