using TorchSharp;
using TorchSharp.Modules;
using Hici.Models;
using static TorchSharp.torch;

namespace Hici.I3;

/// <summary>
/// State of one RWKV layer between calls: the token-shift inputs of time mix and channel mix (the previous
/// token's normalised z and z′, [B, d]) and the WKV triple. Fresh = zeros and p = P_NEG.
/// </summary>
public sealed record RwkvLayerState(Tensor ShiftAtt, Tensor ShiftFfn, WkvState Wkv) : ILayerState
{
    public static RwkvLayerState Fresh(long batch, long d, ScalarType dtype, Device device, ScalarType wkvDtype = ScalarType.Float32) =>
        new(torch.zeros(batch, d, dtype: dtype, device: device), torch.zeros(batch, d, dtype: dtype, device: device),
            I3.Wkv.Fresh(batch, d, wkvDtype, device));

    public IEnumerable<Tensor> Tensors => [ShiftAtt, ShiftFfn, Wkv.A, Wkv.B, Wkv.P];

    /// <summary>A copy cut from the autograd graph and from any dispose scope (the caller owns it).</summary>
    public RwkvLayerState Detached()
    {
        Tensor Keep(Tensor t) => t.detach().DetachFromDisposeScope();
        return new(Keep(ShiftAtt), Keep(ShiftFfn), new WkvState(Keep(Wkv.A), Keep(Wkv.B), Keep(Wkv.P)));
    }

    public void Dispose() { foreach (var t in Tensors) t.Dispose(); }
}

/// <summary>Pre-LN RWKV-4 block: x += TimeMix(LN1(x)); x += ChannelMix(LN2(x)).</summary>
public sealed class RwkvBlock : nn.Module
{
    public LayerNorm ln1, ln2;
    public RwkvTimeMix att;
    public RwkvChannelMix ffn;

    public RwkvBlock(I3Config cfg, Device device) : base(nameof(RwkvBlock))
    {
        ln1 = nn.LayerNorm(cfg.DModel, cfg.LayerNormEps, device: device);
        ln2 = nn.LayerNorm(cfg.DModel, cfg.LayerNormEps, device: device);
        att = new RwkvTimeMix(cfg.DModel, device);
        ffn = new RwkvChannelMix(cfg.DModel, cfg.FfnMult, device);
        RegisterComponents();
    }

    /// <summary>x [B, T, d] and the layer state before it; returns the output and the state after it (new tensors).</summary>
    public (Tensor X, RwkvLayerState State) Run(Tensor x, RwkvLayerState state, int? wkvBlock)
    {
        using var scope = torch.NewDisposeScope();
        var (ya, sa, wkv) = att.Run(ln1.call(x), state.ShiftAtt, state.Wkv, wkvBlock);
        x = x + ya;
        var (yf, sf) = ffn.Run(ln2.call(x), state.ShiftFfn);
        x = x + yf;
        return (x.MoveToOuterDisposeScope(),
            new RwkvLayerState(sa.MoveToOuterDisposeScope(), sf.MoveToOuterDisposeScope(),
                new WkvState(wkv.A.MoveToOuterDisposeScope(), wkv.B.MoveToOuterDisposeScope(), wkv.P.MoveToOuterDisposeScope())));
    }
}
