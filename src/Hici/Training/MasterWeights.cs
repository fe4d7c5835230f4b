using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Training;

/// <summary>
/// The optimizer's view of the trainable parameters: float32 always. A parameter already in float32 (LoRA A/B
/// are) is its own master; a bf16 one gets a float32 master copy that the optimizer updates and that is
/// rounded into the bf16 parameter after each step — as DeepSpeed's bf16 runs of the reference keep fp32
/// master weights and optimizer state while the model computes in bf16.
/// </summary>
public sealed class MasterWeights : IDisposable
{
    private readonly List<(string Name, Parameter Model, Parameter Master)> _items = new();

    public MasterWeights(IEnumerable<(string Name, Parameter Param)> trainable)
    {
        foreach (var (name, p) in trainable)
        {
            if (p.dtype == ScalarType.Float32) { _items.Add((name, p, p)); continue; }
            using var noGrad = no_grad();
            var m = new Parameter(p.detach().to(ScalarType.Float32).clone(), requires_grad: true);
            m.DetachFromDisposeScope();
            _items.Add((name, p, m));
        }
    }

    public IReadOnlyList<(string Name, Parameter Model, Parameter Master)> Items => _items;
    public IEnumerable<Parameter> Masters => _items.Select(i => i.Master);

    /// <summary>Moves the accumulated gradients of bf16 parameters onto their masters (float32).</summary>
    public void GradientsToMasters()
    {
        using var noGrad = no_grad();
        foreach (var (_, p, m) in _items)
        {
            if (ReferenceEquals(p, m)) continue;
            var g = p.grad;
            if (g is null) { m.grad = null; continue; }
            m.grad = g.to(ScalarType.Float32);
            p.grad = null;
        }
    }

    /// <summary>Rounds the updated masters into the model's bf16 parameters.</summary>
    public void MastersToModel()
    {
        using var noGrad = no_grad();
        foreach (var (_, p, m) in _items)
            if (!ReferenceEquals(p, m)) p.copy_(m);
    }

    public void ZeroGrad()
    {
        foreach (var (_, p, m) in _items) { p.grad = null; m.grad = null; }
    }

    public void Dispose()
    {
        foreach (var (_, p, m) in _items) if (!ReferenceEquals(p, m)) m.Dispose();
    }
}
