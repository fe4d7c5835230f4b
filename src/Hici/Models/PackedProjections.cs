using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>
/// Bias-free <see cref="Linear"/> layers that read the same input (q/k/v_proj; gate/up_proj) run as one GEMM.
/// <see cref="Pack"/> copies their weights once, back to back, into one buffer (in <see cref="WeightLayout"/>'s layout)
/// and makes each layer's weight a view of its part: same values, same parameters and checkpoint keys, no extra memory. <see cref="Apply"/>
/// then multiplies by the whole buffer: one linear instead of several, which matters in decoding, where each
/// op costs microseconds of call overhead and a small gemv cannot use both cores.
/// The fused path is only taken while it is provably the same computation: every layer is still the plain
/// Linear it was, in its owner's field, holding the very weight object made at packing time (a reload, a LoRA
/// wrapper or a new parameter all disable it), and no gradient is wanted (a GEMM on the buffer would bypass the parameters).
/// </summary>
public sealed class PackedProjections : IDisposable
{
    private readonly Linear[] _layers;
    private readonly Parameter[] _weights;
    private readonly Tensor _packed;
    private readonly long[] _rows;

    private PackedProjections(Linear[] layers, Parameter[] weights, Tensor packed, long[] rows)
    { _layers = layers; _weights = weights; _packed = packed; _rows = rows; }

    /// <summary>Output widths of the packed layers, in order.</summary>
    public IReadOnlyList<long> Rows => _rows;

    /// <summary>
    /// Packs the layers, or returns null (nothing changed) when any is not a loaded, bias-free Linear of one
    /// dtype and device with the same input width.
    /// </summary>
    public static PackedProjections? Pack(WeightLayout.Kind layout, params nn.Module<Tensor, Tensor>[] modules)
    {
        if (modules.Length < 2 || modules.Any(m => m is not Linear { bias: null })) return null;
        var layers = modules.Cast<Linear>().ToArray();
        var ws = layers.Select(l => l.weight).ToArray();
        if (ws.Any(w => w is null || w.is_meta || w.dim() != 2)) return null;
        var first = ws[0]!;
        if (ws.Any(w => w!.dtype != first.dtype || w.device_type != first.device_type || w.device_index != first.device_index || w.shape[1] != first.shape[1])) return null;
        bool grad = ws.Any(w => w!.requires_grad);
        var (packed, parts) = WeightLayout.Pack(ws.Select(w => (Tensor)w!).ToArray(), layout);
        packed.DetachFromDisposeScope();
        var rows = ws.Select(w => w!.shape[0]).ToArray();
        var views = new Parameter[layers.Length];
        for (int i = 0; i < layers.Length; i++)
        {
            views[i] = new Parameter(parts[i], requires_grad: grad);             // takes the view's handle
            views[i].DetachFromDisposeScope();
            layers[i].weight = views[i];                                        // disposes the old weight
        }
        return new PackedProjections(layers, views, packed, rows);
    }

    /// <summary>
    /// The layers' outputs for <paramref name="x"/> [.., in] from one GEMM, each [.., rows_i] (views of one
    /// result), or null when the fused path does not apply any more (see the class remarks); the caller then
    /// calls the layers one by one.
    /// </summary>
    /// <param name="current">the modules the owner holds now, in packing order (a LoRA wrapper in their
    /// place turns the fused path off)</param>
    public Tensor[]? Apply(Tensor x, params nn.Module<Tensor, Tensor>[] current)
    {
        if (current.Length != _layers.Length) throw new ArgumentException($"{current.Length} modules for {_layers.Length} packed layers");
        for (int i = 0; i < _layers.Length; i++)
            if (!ReferenceEquals(current[i], _layers[i]) || !ReferenceEquals(_layers[i].weight, _weights[i])) return null;
        if (torch.is_grad_enabled() && _weights.Any(w => w.requires_grad)) return null;
        var y = nn.functional.linear(x, _packed);
        var outs = new Tensor[_rows.Length];
        long at = 0;
        for (int i = 0; i < _rows.Length; i++) { outs[i] = y.narrow(-1, at, _rows[i]); at += _rows[i]; }
        return outs;
    }

    public void Dispose() => _packed.Dispose();
}
