using Hici.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Tests.Models;

/// <summary>
/// <see cref="PackedProjections"/>: one GEMM over weights packed back to back gives each layer's own output,
/// leaves the weights' values untouched, and steps aside whenever it would no longer be that computation.
/// (Whole models run packed in every golden test, since the loader packs.)
/// </summary>
public class PackedProjectionsTests
{
    private static Linear[] Layers(ScalarType dtype, bool bias = false)
    {
        using var gen = new Generator(); gen.manual_seed(3);
        var layers = new[] { nn.Linear(48, 32, bias, dtype: dtype), nn.Linear(48, 16, bias, dtype: dtype), nn.Linear(48, 16, bias, dtype: dtype) };
        using (torch.no_grad())
            foreach (var l in layers) l.weight.copy_(torch.randn(l.weight.shape, generator: gen));
        return layers;
    }

    [Theory]
    [InlineData(ScalarType.Float32, WeightLayout.Kind.Row)]
    [InlineData(ScalarType.BFloat16, WeightLayout.Kind.Row)]
    [InlineData(ScalarType.Float32, WeightLayout.Kind.Column)]
    [InlineData(ScalarType.BFloat16, WeightLayout.Kind.Column)]
    public void PackedOutputsEqualEachLayerAndWeightsKeepTheirValues(ScalarType dtype, WeightLayout.Kind layout)
    {
        using var scope = torch.NewDisposeScope();
        var layers = Layers(dtype);
        var before = layers.Select(l => l.weight.clone()).ToArray();
        var x = torch.randn(new long[] { 2, 5, 48 }).to(dtype);
        var separate = layers.Select(l => l.call(x)).ToArray();
        using var packed = PackedProjections.Pack(layout, layers)!;
        Assert.NotNull(packed);
        for (int i = 0; i < layers.Length; i++)
        {
            Assert.True(layers[i].weight.equal(before[i]).all().item<bool>(), $"weight {i} changed by packing");
            Assert.Equal(layout == WeightLayout.Kind.Column, WeightLayout.IsColumnMajor(layers[i].weight));
        }
        using var _ = torch.no_grad();
        var fused = packed.Apply(x, layers)!;
        Assert.NotNull(fused);
        for (int i = 0; i < layers.Length; i++)
        {
            Assert.Equal(separate[i].shape, fused[i].shape);
            double diff = (fused[i].to(ScalarType.Float32) - separate[i].to(ScalarType.Float32)).abs().max().item<float>();
            Assert.True(diff <= (dtype == ScalarType.Float32 ? 1e-5 : 0.0625), $"output {i} differs by {diff:E3}");
        }
    }

    [Fact]
    public void ReplacedWeightOrGradientTurnsTheFusedPathOff()
    {
        using var scope = torch.NewDisposeScope();
        var layers = Layers(ScalarType.Float32);
        using var packed = PackedProjections.Pack(WeightLayout.Kind.Column, layers)!;
        var x = torch.randn(3, 48);
        using (torch.no_grad()) Assert.NotNull(packed.Apply(x, layers));

        layers[0].weight.requires_grad = true;                       // fine-tuning: the GEMM must go through the parameters
        using (torch.enable_grad()) Assert.Null(packed.Apply(x, layers));
        using (torch.no_grad()) Assert.NotNull(packed.Apply(x, layers));
        layers[0].weight.requires_grad = false;

        var wrapped = layers.ToArray();
        wrapped[2] = nn.Linear(48, 16, hasBias: false);                  // the owner now holds another module (e.g. LoRA)
        using (torch.no_grad()) Assert.Null(packed.Apply(x, wrapped));

        layers[1].weight = new Parameter(torch.zeros(16, 48), requires_grad: false);   // a reload / swap
        using (torch.no_grad()) Assert.Null(packed.Apply(x, layers));
    }

    [Fact]
    public void LayersWithBiasAreNotPacked()
    {
        using var scope = torch.NewDisposeScope();
        Assert.Null(PackedProjections.Pack(WeightLayout.Kind.Row, Layers(ScalarType.Float32, bias: true)));
    }

    /// <summary>
    /// The column layout keeps every value, name and shape, computes each projection within fp32 rounding of the
    /// row layout, and goes back to row (contiguous) storage on request, as training's optimizer state needs.
    /// </summary>
    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void ColumnLayoutKeepsValuesAndGoesBackToRows(ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var layer = Layers(dtype)[0];
        var before = layer.weight!.clone();
        var x = torch.randn(new long[] { 1, 1, 48 }).to(dtype);
        using var _ = torch.no_grad();
        var rowOut = layer.call(x);
        WeightLayout.Apply(layer, WeightLayout.Kind.Column);
        Assert.True(WeightLayout.IsColumnMajor(layer.weight!));
        Assert.Equal(before.shape, layer.weight!.shape);
        Assert.True(layer.weight!.equal(before).all().item<bool>());
        double diff = (layer.call(x).to(ScalarType.Float32) - rowOut.to(ScalarType.Float32)).abs().max().item<float>();
        Assert.True(diff <= (dtype == ScalarType.Float32 ? 1e-5 : 0.0625), $"column layout output differs by {diff:E3}");
        WeightLayout.Apply(layer, WeightLayout.Kind.Row);
        Assert.True(layer.weight!.is_contiguous());
        Assert.True(layer.weight!.equal(before).all().item<bool>());
    }
}
