using System.Text.Json;
using Hici.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.IO;

/// <summary>Reads files written by tools/make_io_fixtures.py (hand-rolled python writer) and checks every value.</summary>
public class SafeTensorsReaderTests
{
    private static readonly JsonElement Expected =
        JsonDocument.Parse(File.ReadAllText(IoFixtures.Path("safetensors", "expected.json"))).RootElement;

    [Theory]
    [InlineData("all_dtypes.safetensors")]
    [InlineData("unaligned.safetensors")]
    [InlineData("sharded")]
    [InlineData("sharded/model.safetensors.index.json")]
    [InlineData("multi")]
    public void ReadsEveryTensorExactly(string fixture)
    {
        var exp = Expected.GetProperty(fixture.Split('/')[0]);
        using var src = SafeTensorsWeightSource.Open(IoFixtures.Path("safetensors", fixture));
        Assert.Equal(exp.EnumerateObject().Select(p => p.Name).OrderBy(x => x, StringComparer.Ordinal),
                     src.Keys.OrderBy(x => x, StringComparer.Ordinal));
        foreach (var p in exp.EnumerateObject())
        {
            Assert.True(TensorDTypes.TryParseSafeTensors(p.Value.GetProperty("dtype").GetString()!, out var dt));
            Assert.Equal(dt, src.DType(p.Name));
            using var t = src.Load(p.Name);
            Assert.Equal(dt, t.dtype);
            Assert.Equal(src.Shape(p.Name), t.shape);
            IoFixtures.AssertMatches(p.Value, t, $"{fixture}:{p.Name}");
        }
    }

    [Fact]
    public void ReadsMetadata()
    {
        using var src = SafeTensorsWeightSource.Open(IoFixtures.Path("safetensors", "all_dtypes.safetensors"));
        Assert.Equal("pt", src.Metadata["format"]);
        Assert.Equal("caf\u00e9", src.Metadata["note"]);
    }

    [Fact]
    public void ConvertsOnLoad()
    {
        using var src = SafeTensorsWeightSource.Open(IoFixtures.Path("safetensors", "all_dtypes.safetensors"));
        using var bf = src.Load("layers.0.bf16");
        using var f = src.Load("layers.0.bf16", ScalarType.Float32);
        Assert.Equal(ScalarType.Float32, f.dtype);
        using var back = bf.to(ScalarType.Float32);
        Assert.True(back.allclose(f, 0, 0));
        using var b = src.Load("bool", ScalarType.Float32);
        Assert.Equal(new float[] { 1, 0, 1, 1 }, b.data<float>().ToArray());
    }

    [Fact]
    public void LoadedTensorsOutliveTheSourceAndAreWritable()
    {
        Tensor t;
        using (var src = SafeTensorsWeightSource.Open(IoFixtures.Path("safetensors", "all_dtypes.safetensors")))
            t = src.Load("model.embed_tokens.weight");
        using (t)
        {
            t.add_(1);
            using var src2 = SafeTensorsWeightSource.Open(IoFixtures.Path("safetensors", "all_dtypes.safetensors"));
            using var fresh = src2.Load("model.embed_tokens.weight");
            using var diff = (t - fresh - 1).abs().max();
            Assert.True(diff.item<float>() < 1e-6f);
        }
    }

    [Fact]
    public void ShardedSourceListsItsFiles()
    {
        using var src = SafeTensorsWeightSource.Open(IoFixtures.Path("safetensors", "sharded"));
        Assert.Equal(2, src.Files.Count);
        Assert.True(src.Contains("lm_head.weight"));
        Assert.False(src.Contains("nope"));
        var e = Assert.Throws<HiciException>(() => src.Load("nope"));
        Assert.Contains("no tensor 'nope'", e.Message);
    }

    [Fact]
    public void LoadDoesNotLeakTensors()
    {
        using var src = SafeTensorsWeightSource.Open(IoFixtures.Path("safetensors", "unaligned.safetensors"));
        using var scope = torch.NewDisposeScope();
        using (var warm = src.Load("f32")) { }
        long before = scope.DisposablesCount;
        foreach (var k in src.Keys) src.Load(k, ScalarType.Float64).Dispose();
        Assert.Equal(before, scope.DisposablesCount);
    }
}
