using System.Text.Json;
using Hici.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.IO;

/// <summary>Reads real torch.save output from tools/make_pickle_fixtures.py and checks every value.</summary>
public class TorchPickleReaderTests
{
    internal static readonly JsonElement Expected =
        JsonDocument.Parse(File.ReadAllText(IoFixtures.Path("pickle", "expected.json"))).RootElement;

    [Theory]
    [InlineData("state_dict.bin")]
    [InlineData("trainable_params.bin")]
    [InlineData("adapter_model.bin")]
    [InlineData("all_dtypes.bin")]
    [InlineData("protocol4.bin")]
    public void ReadsEveryTensorExactly(string fixture)
    {
        var exp = Expected.GetProperty(fixture);
        using var src = TorchPickleWeightSource.Open(IoFixtures.Path("pickle", fixture));
        Assert.Equal(exp.EnumerateObject().Select(p => p.Name).OrderBy(x => x, StringComparer.Ordinal),
                     src.Keys.OrderBy(x => x, StringComparer.Ordinal));
        foreach (var p in exp.EnumerateObject())
        {
            Assert.True(TensorDTypes.TryParseSafeTensors(p.Value.GetProperty("dtype").GetString()!, out var dt));
            Assert.Equal(dt, src.DType(p.Name));
            Assert.Equal(p.Value.GetProperty("requires_grad").GetBoolean(), src.RequiresGrad(p.Name));
            using var t = src.Load(p.Name);
            Assert.Equal(dt, t.dtype);
            Assert.True(t.is_contiguous());
            IoFixtures.AssertMatches(p.Value, t, $"{fixture}:{p.Name}");
        }
    }

    [Fact]
    public void KeepsStateDictOrderAndLegacyKeys()
    {
        using var src = TorchPickleWeightSource.Open(IoFixtures.Path("pickle", "state_dict.bin"));
        Assert.Equal(new[] { "0.weight", "0.bias", "1.weight", "1.bias", "views.base" }, src.Keys.Take(5));
        using var tp = TorchPickleWeightSource.Open(IoFixtures.Path("pickle", "trainable_params.bin"));
        Assert.Contains("base_model.model.model.layers.0.self_attn.hierarchical_aggregator.weight", tp.Keys);
    }

    [Fact]
    public void ConvertsOnLoadAndDoesNotLeak()
    {
        using var src = TorchPickleWeightSource.Open(IoFixtures.Path("pickle", "state_dict.bin"));
        using var scope = torch.NewDisposeScope();
        using (var warm = src.Load("bf16.view")) { }
        long before = scope.DisposablesCount;
        using (var f = src.Load("bf16.view", ScalarType.Float32))
        {
            Assert.Equal(ScalarType.Float32, f.dtype);
            Assert.Equal(new long[] { 2, 2 }, f.shape);
        }
        foreach (var k in src.Keys) src.Load(k, ScalarType.Float64).Dispose();
        Assert.Equal(before, scope.DisposablesCount);
    }

    [Fact]
    public void TopFolderNameVaries()
    {
        using var src = TorchPickleWeightSource.Open(IoFixtures.Path("pickle", "hostile", "good_handmade.bin"));
        using var t = src.Load("a");
        Assert.Equal(new float[] { 1, 2, 3, 4 }, t.data<float>().ToArray());
    }
}
