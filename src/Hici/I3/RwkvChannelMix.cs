using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.I3;

/// <summary>RWKV-4 channel mixing: token shift, sigmoid(receptance) ⊙ value(relu(key)²) with a 4× key width.</summary>
public sealed class RwkvChannelMix : nn.Module
{
    public Parameter time_mix_k, time_mix_r;
    public Linear key, value, receptance;

    public RwkvChannelMix(int d, int ffnMult, Device device) : base(nameof(RwkvChannelMix))
    {
        time_mix_k = new Parameter(torch.empty(d, device: device));
        time_mix_r = new Parameter(torch.empty(d, device: device));
        key = nn.Linear(d, (long)ffnMult * d, hasBias: false, device: device);
        value = nn.Linear((long)ffnMult * d, d, hasBias: false, device: device);
        receptance = nn.Linear(d, d, hasBias: false, device: device);
        RegisterComponents();
    }

    /// <summary>z: normalised input [B, T, d]; shift: the previous call's last z [B, d]. Returns output and new shift.</summary>
    public (Tensor Y, Tensor Shift) Run(Tensor z, Tensor shift)
    {
        using var scope = torch.NewDisposeScope();
        long T = z.shape[1];
        var prev = T == 1 ? shift.unsqueeze(1) : torch.cat([shift.unsqueeze(1), z.narrow(1, 0, T - 1)], 1);
        var k = torch.square(nn.functional.relu(key.call(RwkvTimeMix.Mix(z, prev, time_mix_k))));
        var y = torch.sigmoid(receptance.call(RwkvTimeMix.Mix(z, prev, time_mix_r))) * value.call(k);
        return (y.MoveToOuterDisposeScope(), z.select(1, T - 1).MoveToOuterDisposeScope());
    }
}
