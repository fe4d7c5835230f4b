using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>Input of the decoder stack: token ids [B, L] and an optional cache.</summary>
public sealed record DecoderModelInput(Tensor InputIds, KvCache? Cache);

/// <summary>
/// The transformer body (HF LlamaModel / Qwen3Model, the <c>model.</c> prefix of checkpoint keys):
/// embed → layers → final norm. Returns the normalised hidden states [B, L, hidden].
/// </summary>
public sealed class DecoderModel : nn.Module<DecoderModelInput, Tensor>
{
    public TokenEmbedding embed_tokens;
    public ModuleList<DecoderLayer> layers;
    public RmsNorm norm;
    private readonly RotaryEmbedding _rotary;   // not a module: no state-dict entries

    /// <param name="paramDevice">where parameters are created (meta = placeholders for the loader)</param>
    /// <param name="computeDevice">where RoPE tables live (the device the model will run on)</param>
    public DecoderModel(ModelConfig cfg, Device paramDevice, Device computeDevice, ScalarType dtype) : base(nameof(DecoderModel))
    {
        embed_tokens = new TokenEmbedding(cfg.VocabSize, cfg.HiddenSize, paramDevice, dtype);
        layers = new ModuleList<DecoderLayer>(Enumerable.Range(0, cfg.NumHiddenLayers)
            .Select(i => new DecoderLayer(cfg, i, paramDevice, dtype)).ToArray());
        norm = new RmsNorm(cfg.HiddenSize, cfg.RmsNormEps, paramDevice, dtype);
        _rotary = new RotaryEmbedding(cfg, computeDevice);
        RegisterComponents();
    }

    public override Tensor forward(DecoderModelInput x)
    {
        using var scope = torch.NewDisposeScope();
        long len = x.InputIds.shape[1];
        long start = x.Cache?.Length ?? 0;
        if (x.Cache is not null && x.Cache.Batch != x.InputIds.shape[0])
            throw new HiciException($"KV cache holds batch {x.Cache.Batch}, the input has batch {x.InputIds.shape[0]}");
        x.Cache?.CheckRoom(len);
        var h = embed_tokens.call(x.InputIds);
        var rope = _rotary.Tables(start, len, h.dtype, x.Cache?.RopeLength);
        for (int i = 0; i < layers.Count; i++)
            h = layers[i].call(new DecoderLayerInput(h, rope, x.Cache?.Layers[i], start));
        x.Cache?.Advance(len);
        return norm.call(h).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _rotary.Dispose();
        base.Dispose(disposing);
    }
}
