using TorchSharp;
using static TorchSharp.torch;

namespace Hici.IO;

/// <summary>
/// A view of a weight source whose keys read under other names (legacy prefixes, PEFT wrappers). Two keys
/// that map to one name are refused: which one wins would otherwise depend on file order.
/// </summary>
public abstract class RenamedKeySource : IWeightSource
{
    private readonly IWeightSource _inner;
    private readonly bool _ownsInner;
    private readonly Dictionary<string, string> _toInner = new(StringComparer.Ordinal);
    private readonly List<string> _keys = new();

    /// <summary>(key in the source, key read as) for every key that was renamed.</summary>
    public IReadOnlyList<(string Legacy, string Current)> Renamed { get; }

    protected RenamedKeySource(IWeightSource inner, Func<string, string> rename, bool ownsInner)
    {
        _inner = inner;
        _ownsInner = ownsInner;
        var renamed = new List<(string, string)>();
        foreach (var k in inner.Keys)
        {
            string cur = rename(k);
            if (_toInner.TryGetValue(cur, out var prev)) throw new HiciException(DuplicateMessage(prev, k, cur));
            _toInner[cur] = k;
            _keys.Add(cur);
            if (cur != k) renamed.Add((k, cur));
        }
        Renamed = renamed;
    }

    /// <summary>The error for two source keys that read as one name.</summary>
    protected virtual string DuplicateMessage(string first, string second, string current) =>
        $"{Origin}: holds both '{first}' and '{second}', two spellings of '{current}'; keep one";

    public IReadOnlyCollection<string> Keys => _keys;
    public bool Contains(string key) => _toInner.ContainsKey(key);
    public long[] Shape(string key) => _inner.Shape(Inner(key));
    public ScalarType DType(string key) => _inner.DType(Inner(key));
    public Tensor Load(string key, ScalarType? dtype = null, Device? device = null) => _inner.Load(Inner(key), dtype, device);
    public string Origin => _inner.Origin;
    public void Dispose() { if (_ownsInner) _inner.Dispose(); }

    private string Inner(string key) =>
        _toInner.TryGetValue(key, out var k) ? k : throw new HiciException($"{Origin}: no tensor '{key}'");
}
