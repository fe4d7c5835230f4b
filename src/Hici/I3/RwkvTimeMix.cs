using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.I3;

/// <summary>
/// RWKV-4 time mixing: static token shift (μ_k, μ_v, μ_r interpolate the current and the previous normalised
/// token), key/value/receptance projections, WKV with per-channel decay w = −exp(time_decay) and bonus
/// u = time_first, output projection of r ⊙ wkv. Field names are checkpoint keys (RWKV-LM's).
/// </summary>
public sealed class RwkvTimeMix : nn.Module
{
    public Parameter time_decay, time_first, time_mix_k, time_mix_v, time_mix_r;
    public Linear key, value, receptance, output;

    public RwkvTimeMix(int d, Device device) : base(nameof(RwkvTimeMix))
    {
        time_decay = new Parameter(torch.empty(d, device: device));
        time_first = new Parameter(torch.empty(d, device: device));
        time_mix_k = new Parameter(torch.empty(d, device: device));
        time_mix_v = new Parameter(torch.empty(d, device: device));
        time_mix_r = new Parameter(torch.empty(d, device: device));
        key = nn.Linear(d, d, hasBias: false, device: device);
        value = nn.Linear(d, d, hasBias: false, device: device);
        receptance = nn.Linear(d, d, hasBias: false, device: device);
        output = nn.Linear(d, d, hasBias: false, device: device);
        RegisterComponents();
    }

    /// <summary>
    /// z: normalised input [B, T, d]; shift: the previous call's last z [B, d] (zeros at a stream/chunk start).
    /// Chunked (block-parallel) WKV with block size <paramref name="wkvBlock"/> when given, else the recurrence.
    /// Returns the output and the new (shift, WKV) state.
    /// </summary>
    public (Tensor Y, Tensor Shift, WkvState Wkv) Run(Tensor z, Tensor shift, WkvState wkv, int? wkvBlock)
    {
        using var scope = torch.NewDisposeScope();
        long T = z.shape[1];
        var prev = T == 1 ? shift.unsqueeze(1) : torch.cat([shift.unsqueeze(1), z.narrow(1, 0, T - 1)], 1);
        var k = key.call(Mix(z, prev, time_mix_k));
        var v = value.call(Mix(z, prev, time_mix_v));
        var r = torch.sigmoid(receptance.call(Mix(z, prev, time_mix_r)));
        var wt = wkv.A.dtype;   // WKV runs in the state's dtype (float32, or float64 in exactness tests)
        var w = -time_decay.to(wt).exp();
        var u = time_first.to(wt);
        var (y, st) = wkvBlock is int q ? Wkv.Chunked(k.to(wt), v.to(wt), w, u, wkv, q) : Wkv.Recurrent(k.to(wt), v.to(wt), w, u, wkv);
        var o = output.call(r * y.to(z.dtype));
        var newShift = z.select(1, T - 1);
        return (o.MoveToOuterDisposeScope(), newShift.MoveToOuterDisposeScope(),
            new WkvState(st.A.MoveToOuterDisposeScope(), st.B.MoveToOuterDisposeScope(), st.P.MoveToOuterDisposeScope()));
    }

    internal static Tensor Mix(Tensor z, Tensor prev, Tensor mu) => z * mu + prev * (1 - mu);
}
