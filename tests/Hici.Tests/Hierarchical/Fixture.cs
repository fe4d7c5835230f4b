using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Hici.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Hierarchical;

/// <summary>
/// A tiny test-only safetensors reader for the HiCI fixtures (F32, I64, I32, U8, BOOL), until the io
/// branch's SafeTensorsWeightSource is merged. Implements IWeightSource so the library loaders run on it.
/// </summary>
public sealed class Fixture : IWeightSource
{
    private readonly byte[] _bytes;
    private readonly long _dataStart;
    private readonly Dictionary<string, (string Dtype, long[] Shape, long Begin, long End)> _entries = new();

    public Dictionary<string, string> Metadata { get; } = new();
    public string Origin { get; }

    public Fixture(string path)
    {
        Origin = path;
        _bytes = File.ReadAllBytes(path);
        long n = BinaryPrimitives.ReadInt64LittleEndian(_bytes.AsSpan(0, 8));
        _dataStart = 8 + n;
        using var doc = JsonDocument.Parse(_bytes.AsMemory(8, (int)n));
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__")
            {
                foreach (var m in p.Value.EnumerateObject()) Metadata[m.Name] = m.Value.GetString()!;
                continue;
            }
            var shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var off = p.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            _entries[p.Name] = (p.Value.GetProperty("dtype").GetString()!, shape, off[0], off[1]);
        }
    }

    public static string PathOf(string name, [CallerFilePath] string here = "")
    {
        // tests/Hici.Tests/Hierarchical/Fixture.cs → tests/fixtures/hici/name
        var dir = Path.GetDirectoryName(here)!;
        var p = Path.GetFullPath(Path.Combine(dir, "..", "..", "fixtures", "hici", name));
        if (File.Exists(p)) return p;
        // fall back to walking up from the test binary (CI runs from a fresh clone: same layout)
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "tests", "fixtures", "hici", name))) d = d.Parent;
        return d is null ? p : Path.Combine(d.FullName, "tests", "fixtures", "hici", name);
    }

    public static Fixture Open(string name) => new(PathOf(name));

    public int Meta(string key) => int.Parse(Metadata[key]);

    public IReadOnlyCollection<string> Keys => _entries.Keys;
    public bool Contains(string key) => _entries.ContainsKey(key);
    public long[] Shape(string key) => _entries[key].Shape;

    public ScalarType DType(string key) => _entries[key].Dtype switch
    {
        "F32" => ScalarType.Float32,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "U8" => ScalarType.Byte,
        "BOOL" => ScalarType.Bool,
        var x => throw new NotSupportedException(x),
    };

    public Tensor Load(string key, ScalarType? dtype = null, Device? device = null)
    {
        if (!_entries.TryGetValue(key, out var e)) throw new KeyNotFoundException($"{Origin}: no tensor '{key}'");
        var span = _bytes.AsSpan((int)(_dataStart + e.Begin), (int)(e.End - e.Begin));
        Tensor t = e.Dtype switch
        {
            "F32" => tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(span).ToArray(), e.Shape),
            "I64" => tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(span).ToArray(), e.Shape),
            "I32" => tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(span).ToArray(), e.Shape),
            "U8" => tensor(span.ToArray(), e.Shape),
            "BOOL" => tensor(span.ToArray().Select(b => b != 0).ToArray(), e.Shape),
            var x => throw new NotSupportedException(x),
        };
        if (dtype is { } dt && t.dtype != dt) t = t.to(dt);
        if (device is not null) t = t.to(device);
        return t;
    }

    public Tensor this[string key] => Load(key);

    public void Dispose() { }

    /// <summary>Copies every parameter of <paramref name="m"/> from "{prefix}{name}" (all must exist, same shape).</summary>
    public void LoadInto(nn.Module m, string prefix)
    {
        using var g = no_grad();
        foreach (var (name, p) in m.named_parameters())
        {
            var key = prefix + name;
            Assert.True(Contains(key), $"fixture has no '{key}'");
            Assert.Equal(p.shape, Shape(key));
            using var t = Load(key);
            p.copy_(t);
        }
    }
}

internal static class Close
{
    /// <summary>Max |a − b| (both converted to fp32), and asserts it is ≤ tol.</summary>
    public static double Check(Tensor expected, Tensor actual, double tol, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var d = (expected.to(ScalarType.Float32) - actual.to(ScalarType.Float32)).abs().max();
        double m = d.item<float>();
        Assert.False(double.IsNaN(m), $"{what}: NaN");
        Assert.True(m <= tol, $"{what}: max |Δ| = {m:G4} > {tol:G4}");
        Console.WriteLine($"[hici-golden] {what}: max |Δ| = {m:G3}");
        return m;
    }
}
