using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.I3;

/// <summary>
/// Compresses a completed chunk X [B, W, d] into L latents [B, L, d]: learnable latent queries cross-attend to the
/// chunk (no mask: every token of a closed chunk is in the past), then a pre-LN feed-forward refinement and a final
/// LayerNorm. No positions of its own (order reaches it only through X), so it is invariant to permuting X's rows.
/// </summary>
public sealed class LatentCompressor : nn.Module
{
    public Parameter latents;
    public LayerNorm ln_q, ln_kv, ln_f, ln_o;
    public Linear q_proj, k_proj, v_proj, o_proj, fc1, fc2;

    public int Heads { get; }
    public int HeadDim { get; }

    public LatentCompressor(I3Config cfg, Device device) : base(nameof(LatentCompressor))
    {
        int d = cfg.DModel;
        Heads = cfg.CompressorHeads;
        HeadDim = d / Heads;
        latents = new Parameter(torch.empty(cfg.LatentsPerChunk, d, device: device));
        ln_q = nn.LayerNorm(d, cfg.LayerNormEps, device: device);
        ln_kv = nn.LayerNorm(d, cfg.LayerNormEps, device: device);
        ln_f = nn.LayerNorm(d, cfg.LayerNormEps, device: device);
        ln_o = nn.LayerNorm(d, cfg.LayerNormEps, device: device);
        q_proj = nn.Linear(d, d, hasBias: true, device: device);
        k_proj = nn.Linear(d, d, hasBias: true, device: device);
        v_proj = nn.Linear(d, d, hasBias: true, device: device);
        o_proj = nn.Linear(d, d, hasBias: true, device: device);
        fc1 = nn.Linear(d, (long)cfg.CompressorFfnMult * d, hasBias: true, device: device);
        fc2 = nn.Linear((long)cfg.CompressorFfnMult * d, d, hasBias: true, device: device);
        RegisterComponents();
    }

    public Tensor Run(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        long B = x.shape[0], L = latents.shape[0];
        var z0 = latents.unsqueeze(0).expand(B, -1, -1);
        var q = Split(q_proj.call(ln_q.call(z0)));
        var kv = ln_kv.call(x);
        var o = nn.functional.scaled_dot_product_attention(q, Split(k_proj.call(kv)), Split(v_proj.call(kv)));
        var z1 = z0 + o_proj.call(o.transpose(1, 2).reshape(B, L, -1));
        var z2 = z1 + fc2.call(nn.functional.gelu(fc1.call(ln_f.call(z1))));
        return ln_o.call(z2).MoveToOuterDisposeScope();
    }

    private Tensor Split(Tensor t) => MemoryAttentionBlock.SplitHeads(t, Heads, HeadDim);
}
