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
    // Held for the module's life: a number passed to a tensor op becomes a temporary Scalar that TorchSharp 0.107
    // frees in its finalizer, which can run while libtorch still reads it (the handle is all the native call keeps).
    // Three fuzz cases died in this method that way ("Scalar.h:279", "Expected false to be true", "Unknown scalar
    // type"), never on replay; see docs/reliability.md.
    private readonly Scalar _epsScalar;
    private static readonly Scalar One = 1.ToScalar();   // add's alpha: TorchSharp's `+` would make a temporary one

    public RmsNorm(long dim, double eps, Device? device = null, ScalarType? dtype = null) : base(nameof(RmsNorm))
    {
        _epsScalar = eps.ToScalar();
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
        var variance = h.square().mean(new long[] { -1 }, keepdim: true);   // = pow(2) in ATen, with no Scalar
        h = h * torch.rsqrt(variance.add(_epsScalar, One));
        return (_weight * h.to(x.dtype)).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _epsScalar.Dispose();
        base.Dispose(disposing);
    }
}
