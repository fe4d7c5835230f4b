using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>SwiGLU feed-forward: down_proj(silu(gate_proj(x)) · up_proj(x)), as HF LlamaMLP / Qwen3MLP.</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    public nn.Module<Tensor, Tensor> gate_proj;
    public nn.Module<Tensor, Tensor> up_proj;
    public nn.Module<Tensor, Tensor> down_proj;

    public Mlp(ModelConfig cfg, Device? device = null, ScalarType? dtype = null) : base(nameof(Mlp))
    {
        // HF's mlp_bias defaults to false for Llama and Qwen3; checkpoints with it are not supported.
        gate_proj = nn.Linear(cfg.HiddenSize, cfg.IntermediateSize, false, device, dtype);
        up_proj = nn.Linear(cfg.HiddenSize, cfg.IntermediateSize, false, device, dtype);
        down_proj = nn.Linear(cfg.IntermediateSize, cfg.HiddenSize, false, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var h = _packedGateUp?.Apply(x, gate_proj, up_proj) is { } gu
            ? nn.functional.silu(gu[0]) * gu[1]
            : nn.functional.silu(gate_proj.call(x)) * up_proj.call(x);
        return down_proj.call(h).MoveToOuterDisposeScope();
    }

    private PackedProjections? _packedGateUp;

    /// <summary>Lets gate_proj and up_proj run as one GEMM in inference (see <see cref="Attention.PackProjections"/>).</summary>
    public void PackProjections(bool enable = true, WeightLayout.Kind layout = WeightLayout.Kind.Row)
    {
        _packedGateUp?.Dispose();
        _packedGateUp = enable ? PackedProjections.Pack(layout, gate_proj, up_proj) : null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { _packedGateUp?.Dispose(); _packedGateUp = null; }
        base.Dispose(disposing);
    }

    /// <summary>Swaps gate_proj/up_proj/down_proj (e.g. for LoRA); returns the old module.</summary>
    public nn.Module<Tensor, Tensor> ReplaceProjection(string name, nn.Module<Tensor, Tensor> replacement)
        => ModuleTree.ReplaceChild(this, name, replacement);
}
