using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Hici.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.IO;

public class SafeTensorsWriterTests
{
    private static readonly ScalarType[] AllTypes =
    {
        ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float16, ScalarType.Float64, ScalarType.Int64,
        ScalarType.Int32, ScalarType.Int16, ScalarType.Int8, ScalarType.Byte, ScalarType.Bool,
    };

    private static Tensor Sample(ScalarType dt, long[] shape, int seed)
    {
        using var g = new torch.Generator((ulong)seed);
        using var f = torch.randn(shape, generator: g) * 50;
        return dt switch
        {
            ScalarType.Bool => f.gt(0),
            ScalarType.Byte => f.abs().to(dt),
            _ => f.to(dt),
        };
    }

    [Fact]
    public void RoundTripsEveryDType()
    {
        var path = Path.Combine(IoFixtures.TempDir(), "rt.safetensors");
        var tensors = new Dictionary<string, Tensor>();
        int i = 0;
        foreach (var dt in AllTypes)
        {
            tensors[$"t.{dt}"] = Sample(dt, new long[] { 3, 5 }, i++);
            tensors[$"scalar.{dt}"] = Sample(dt, Array.Empty<long>(), i++);
            tensors[$"empty.{dt}"] = torch.empty(new long[] { 0, 2 }, dt);
        }
        using (var big = Sample(ScalarType.Float32, new long[] { 6, 4 }, 99))
            tensors["noncontiguous"] = big.t().narrow(0, 1, 2); // a strided view must be written as its logical values
        SafeTensorsWriter.Save(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });

        using var src = SafeTensorsWeightSource.Open(path);
        Assert.Equal(tensors.Count, src.Keys.Count);
        Assert.Equal("pt", src.Metadata["format"]);
        foreach (var (name, t) in tensors)
        {
            using var back = src.Load(name);
            Assert.Equal(t.dtype, back.dtype);
            Assert.Equal(t.shape, back.shape);
            Assert.True(IoFixtures.Same(t, back), name);
        }
        foreach (var t in tensors.Values) t.Dispose();
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, "*.tmp-*"));
    }

    [Fact]
    public void HeaderIsPaddedAndEveryTensorAligned()
    {
        var path = Path.Combine(IoFixtures.TempDir(), "a.safetensors");
        using var a = torch.ones(3, ScalarType.Int8);
        using var b = torch.ones(3, ScalarType.Float64);
        using var c = torch.ones(5, ScalarType.BFloat16);
        SafeTensorsWriter.Save(path, new[] { ("a", a), ("b", b), ("c", c) });
        var bytes = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, (8 + n) % 8);
        var json = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.StartsWith("{\"b\":", json); // largest elements first, like the HF writer
        using var doc = JsonDocument.Parse(json);
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            long begin = p.Value.GetProperty("data_offsets")[0].GetInt64();
            int es = TensorDTypes.ElementSize(TensorDTypes.TryParseSafeTensors(p.Value.GetProperty("dtype").GetString()!, out var dt) ? dt : default);
            Assert.Equal(0, (8 + n + begin) % es);
        }
        Assert.Equal(8 + n + 3 + 24 + 10, bytes.Length);
    }

    /// <summary>
    /// Golden test against the independent producer: writing the python fixture's values must reproduce the file
    /// python wrote byte for byte (same layout, header and padding as the HF writer).
    /// </summary>
    [Fact]
    public void MatchesPythonWrittenFileByteForByte()
    {
        var fixture = IoFixtures.Path("safetensors", "all_dtypes.safetensors");
        var tensors = new List<(string, Tensor)>();
        using (var src = SafeTensorsWeightSource.Open(fixture))
            foreach (var k in src.Keys) tensors.Add((k, src.Load(k)));
        var path = Path.Combine(IoFixtures.TempDir(), "all_dtypes.safetensors");
        SafeTensorsWriter.Save(path, tensors, new Dictionary<string, string> { ["note"] = "caf\u00e9", ["format"] = "pt" });
        Assert.Equal(File.ReadAllBytes(fixture), File.ReadAllBytes(path));
        foreach (var (_, t) in tensors) t.Dispose();
    }

    [Fact]
    public void FailedSaveKeepsTheOldFile()
    {
        var path = Path.Combine(IoFixtures.TempDir(), "keep.safetensors");
        using var ok = torch.ones(2);
        SafeTensorsWriter.Save(path, new[] { ("ok", ok) });
        var before = File.ReadAllBytes(path);
        using var bad = torch.ones(2, ScalarType.ComplexFloat32);
        var e = Assert.Throws<HiciException>(() => SafeTensorsWriter.Save(path, new[] { ("ok", ok), ("bad", bad) }));
        Assert.Contains("tensor 'bad'", e.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!));
    }

    [Fact]
    public void RefusesDuplicateAndReservedNames()
    {
        var path = Path.Combine(IoFixtures.TempDir(), "x.safetensors");
        using var t = torch.ones(1);
        Assert.Contains("given twice", Assert.Throws<HiciException>(() => SafeTensorsWriter.Save(path, new[] { ("a", t), ("a", t) })).Message);
        Assert.Contains("__metadata__", Assert.Throws<HiciException>(() => SafeTensorsWriter.Save(path, new[] { ("__metadata__", t) })).Message);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void ShardsAndIndexRoundTrip()
    {
        var dir = IoFixtures.TempDir();
        var tensors = Enumerable.Range(0, 5).Select(i => ($"layer.{i}.w", Sample(ScalarType.Float32, new long[] { 4, 4 }, i))).ToList();
        var written = SafeTensorsShardedWriter.Save(dir, tensors, maxShardBytes: 150); // 64 B each → 2 per shard
        Assert.Equal(new[] { "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                             "model-00003-of-00003.safetensors", "model.safetensors.index.json" },
                     written.Select(Path.GetFileName));
        var index = SafeTensorsIndex.Read(Path.Combine(dir, SafeTensorsIndex.FileName));
        Assert.Equal(5 * 64, index.Metadata["total_size"].GetInt64());
        using var src = SafeTensorsWeightSource.Open(dir);
        Assert.Equal(3, src.Files.Count);
        foreach (var (name, t) in tensors)
        {
            using var back = src.Load(name);
            Assert.True(IoFixtures.Same(t, back), name);
        }

        // A smaller sharded save replaces the shards of the larger one.
        var two = SafeTensorsShardedWriter.Save(dir, tensors.Take(3), maxShardBytes: 150);
        Assert.Equal(2, Directory.GetFiles(dir, "model-*.safetensors").Length);
        Assert.Equal(3, two.Count);

        // Everything in one shard: a lone model.safetensors, and the stale index must go.
        var single = SafeTensorsShardedWriter.Save(dir, tensors.Take(2), maxShardBytes: 1 << 20);
        Assert.Equal("model.safetensors", Path.GetFileName(Assert.Single(single)));
        Assert.False(File.Exists(Path.Combine(dir, SafeTensorsIndex.FileName)));
        Assert.Empty(Directory.GetFiles(dir, "model-*.safetensors"));
        using var src2 = SafeTensorsWeightSource.Open(dir);
        Assert.Equal(2, src2.Keys.Count);
        foreach (var (_, t) in tensors) t.Dispose();
    }

    [Fact]
    public void OversizedTensorGetsItsOwnShard()
    {
        var dir = IoFixtures.TempDir();
        using var small = torch.ones(2);
        using var big = torch.ones(100);
        var written = SafeTensorsShardedWriter.Save(dir, new[] { ("s", small), ("big", big), ("s2", small) }, maxShardBytes: 16);
        Assert.Equal(4, written.Count);
        using var src = SafeTensorsWeightSource.Open(dir);
        Assert.Equal(3, src.Keys.Count);
    }
}
