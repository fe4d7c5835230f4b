using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>Input of one decoder layer: hidden states [B, L, hidden] plus what attention needs
/// (Mask: bool [B, Start + L], true = real token, or null = no padding).</summary>
public sealed record DecoderLayerInput(Tensor Hidden, RopeTables Rope, ILayerState? State, long Start, Tensor? Mask = null);

/// <summary>Pre-norm residual block: h += attn(norm(h)); h += mlp(norm(h)). HF LlamaDecoderLayer / Qwen3DecoderLayer.</summary>
public sealed class DecoderLayer : nn.Module<DecoderLayerInput, Tensor>
{
    public RmsNorm input_layernorm;
    public Attention self_attn;
    public RmsNorm post_attention_layernorm;
    public Mlp mlp;

    /// <param name="attention">this layer's attention module, made by the model's attention implementation</param>
    public DecoderLayer(ModelConfig cfg, Attention attention, Device? device = null, ScalarType? dtype = null) : base(nameof(DecoderLayer))
    {
        input_layernorm = new RmsNorm(cfg.HiddenSize, cfg.RmsNormEps, device, dtype);
        self_attn = attention;
        post_attention_layernorm = new RmsNorm(cfg.HiddenSize, cfg.RmsNormEps, device, dtype);
        mlp = new Mlp(cfg, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(DecoderLayerInput x)
    {
        using var scope = torch.NewDisposeScope();
        var attnIn = new AttentionInput(input_layernorm.call(x.Hidden), x.Rope, x.State, x.Start, x.Mask);
        var h = x.Hidden + self_attn.call(attnIn);
        h = h + mlp.call(post_attention_layernorm.call(h));
        return h.MoveToOuterDisposeScope();
    }
}
