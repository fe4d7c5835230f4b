using Hici.Models;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Hici.Lora;

/// <summary>
/// A Linear with a low-rank update, laid out as PEFT 0.5's <c>lora.Linear</c> so the state-dict keys read
/// <c>q_proj.weight</c>, <c>q_proj.bias</c>, <c>q_proj.lora_A.weight</c> [r, in], <c>q_proj.lora_B.weight</c> [out, r]
/// (newer PEFT moves the base weight to <c>base_layer.weight</c>; the published adapters and
/// <c>trainable_params.bin</c> use the 0.5 names).
/// y = x Wᵀ + b + scale · B(A(dropout(x))). <see cref="Merge"/> folds scale·B·A into W so the forward is one matmul.
/// </summary>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>, IAdapterModule
{
#pragma warning disable IDE1006 // field names are state-dict keys
    [ComponentName(Name = "weight")] private Parameter _weight;
    [ComponentName(Name = "bias")] private Parameter? _bias;
    public Linear lora_A;
    public Linear lora_B;
#pragma warning restore IDE1006

    public int R { get; }
    public double Scale { get; }
    public double DropoutP { get; }
    public long InFeatures { get; }
    public long OutFeatures { get; }
    /// <summary>True while W holds W + scale·B·A (then B and A are not applied again).</summary>
    public bool Merged { get; private set; }

    public IEnumerable<string> AdapterParameterNames => new[] { "lora_A.weight", "lora_B.weight" };

    /// <summary>
    /// Takes over <paramref name="baseLayer"/>'s weight and bias (the same tensors, now frozen) and adds A and B
    /// with PEFT's initialisation: A kaiming-uniform (a = √5), B zeros, so the wrapped layer starts equal to the
    /// base. A and B live on <paramref name="device"/> even when the base weight is still a meta placeholder.
    /// </summary>
    public LoraLinear(Linear baseLayer, LoraConfig cfg, Device? device = null) : base(nameof(LoraLinear))
    {
        cfg.Validate("LoRA config");
        _weight = baseLayer.weight ?? throw new ArgumentException("the base Linear has no weight");
        _bias = baseLayer.bias;
        OutFeatures = _weight.shape[0];
        InFeatures = _weight.shape[1];
        R = cfg.R;
        Scale = cfg.Scale;
        DropoutP = cfg.Dropout;
        // PEFT freezes every base weight; callers that train some of them (HiCI's projections) re-enable them.
        _weight.requires_grad = false;
        if (_bias is not null) _bias.requires_grad = false;

        var dev = device ?? (_weight.is_meta ? CPU : _weight.device);
        lora_A = nn.Linear(InFeatures, R, hasBias: false, device: dev, dtype: cfg.DType);
        lora_B = nn.Linear(R, OutFeatures, hasBias: false, device: dev, dtype: cfg.DType);
        using (torch.no_grad())
        {
            nn.init.kaiming_uniform_(lora_A.weight, a: Math.Sqrt(5));
            nn.init.zeros_(lora_B.weight);
        }
        RegisterComponents();
    }

    /// <summary>Settable so the base loader can swap a meta placeholder for loaded data.</summary>
    public Parameter weight
    {
        get => _weight;
        set { if (!ReferenceEquals(value, _weight)) { _weight.Dispose(); _weight = value; value.DetachFromDisposeScope(); ConditionallyRegisterParameter("weight", value); } }
    }

    public Parameter? bias
    {
        get => _bias;
        set
        {
            if (ReferenceEquals(value, _bias)) return;
            _bias?.Dispose();
            _bias = value;
            value?.DetachFromDisposeScope();
            ConditionallyRegisterParameter("bias", value);
        }
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var y = nn.functional.linear(x, _weight, _bias);
        if (!Merged)
        {
            var loraType = lora_A.weight!.dtype;
            var h = x.dtype == loraType ? x : x.to(loraType);
            if (training && DropoutP > 0) h = nn.functional.dropout(h, DropoutP, training: true);
            var d = lora_B.call(lora_A.call(h)).mul_(Scale);
            // As PEFT's in-place `result += delta`: add in the wider type, round to the output type once.
            y = d.dtype == y.dtype ? y.add_(d) : y.to(d.dtype).add_(d).to(y.dtype);
        }
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>scale · B · A [out, in] in float32.</summary>
    public Tensor DeltaWeight()
    {
        using var scope = torch.NewDisposeScope();
        var d = lora_B.weight!.to(ScalarType.Float32).matmul(lora_A.weight!.to(ScalarType.Float32)).mul_(Scale);
        return d.MoveToOuterDisposeScope();
    }

    /// <summary>W ← W + scale·B·A, computed in float32 and rounded to W's dtype once.</summary>
    public void Merge()
    {
        if (Merged) throw new InvalidOperationException("this LoRA layer is already merged");
        AddDelta(+1);
        Merged = true;
    }

    /// <summary>W ← W − scale·B·A. Exact up to one rounding of W in float32; in bfloat16 it is not the original W.</summary>
    public void Unmerge()
    {
        if (!Merged) throw new InvalidOperationException("this LoRA layer is not merged");
        AddDelta(-1);
        Merged = false;
    }

    private void AddDelta(int sign)
    {
        if (_weight.is_meta) throw new InvalidOperationException("the base weight is not loaded yet (meta placeholder); load it before merging");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var w = _weight.to(ScalarType.Float32).add_(DeltaWeight(), alpha: sign);
        _weight.copy_(w);
    }
}
