using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>
/// Root-mean-square layer norm, op for op as HF's LlamaRMSNorm / Qwen3RMSNorm: the statistics are taken in
/// float32 (bf16 sums of squares lose too much), the normalised value is cast back to the input dtype
/// <em>before</em> the weight multiply. Changing that order changes bf16 results.
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")] private Parameter _weight;
    private readonly double _eps;

    public RmsNorm(long dim, double eps, Device? device = null, ScalarType? dtype = null) : base(nameof(RmsNorm))
    {
        _eps = eps;
        _weight = new Parameter(torch.ones(dim, dtype: dtype, device: device), requires_grad: false);
        _weight.DetachFromDisposeScope();
        RegisterComponents();
    }

    /// <summary>Settable so the loader can swap a meta placeholder for loaded data.</summary>
    public Parameter weight
    {
        get => _weight;
        set { if (!ReferenceEquals(value, _weight)) { _weight.Dispose(); _weight = value; value.DetachFromDisposeScope(); ConditionallyRegisterParameter("weight", value); } }
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var h = x.to(ScalarType.Float32);
        var variance = h.pow(2).mean(new long[] { -1 }, keepdim: true);
        h = h * torch.rsqrt(variance + _eps);
        return (_weight * h.to(x.dtype)).MoveToOuterDisposeScope();
    }
}
