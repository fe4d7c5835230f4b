using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>Input of the decoder stack: token ids [B, L], an optional state and an optional padding mask
/// [B, cached + L] (nonzero = real token; see <see cref="CausalLMInput"/>).</summary>
public sealed record DecoderModelInput(Tensor InputIds, IModelState? State, Tensor? AttentionMask = null);

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
        var attention = AttentionRegistry.For(cfg).CreateLayers(cfg, paramDevice, dtype);
        if (attention.Count != cfg.NumHiddenLayers)
            throw new InvalidOperationException($"attention '{cfg.Attention.Name}' made {attention.Count} layers for a {cfg.NumHiddenLayers}-layer model");
        layers = new ModuleList<DecoderLayer>(attention.Select(a => new DecoderLayer(cfg, a, paramDevice, dtype)).ToArray());
        norm = new RmsNorm(cfg.HiddenSize, cfg.RmsNormEps, paramDevice, dtype);
        _rotary = new RotaryEmbedding(cfg, computeDevice);
        RegisterComponents();
    }

    public override Tensor forward(DecoderModelInput x)
    {
        using var scope = torch.NewDisposeScope();
        long len = x.InputIds.shape[1];
        var state = x.State;
        long start = state?.Length ?? 0;
        if (state is not null && state.Batch != x.InputIds.shape[0])
            throw new HiciException($"KV cache holds batch {state.Batch}, the input has batch {x.InputIds.shape[0]}");
        if (state is not null && state.Layers.Count != layers.Count)
            throw new HiciException($"the state has {state.Layers.Count} layers, the model {layers.Count}");
        state?.EnsureRoom(len);
        var mask = CheckMask(x.AttentionMask, x.InputIds.shape[0], start + len);
        var h = embed_tokens.call(x.InputIds);
        var rope = _rotary.Tables(start, len, h.dtype, state?.RopeLength);
        for (int i = 0; i < layers.Count; i++)
            h = layers[i].call(new DecoderLayerInput(h, rope, state?.Layers[i], start, mask));
        state?.Advance(len);
        return norm.call(h).MoveToOuterDisposeScope();
    }

    /// <summary>RoPE tables for positions 0..length−1 with no cache, as <see cref="forward"/> builds them (for callers
    /// that run the layers one by one, e.g. gradient checkpointing).</summary>
    public RopeTables Rope(long length, ScalarType dtype) => _rotary.Tables(0, length, dtype);

    /// <summary>The mask as bool [B, total], or null when absent or all ones (so the unmasked fast paths run).</summary>
    private static Tensor? CheckMask(Tensor? mask, long batch, long total)
    {
        if (mask is null) return null;
        if (mask.dim() != 2 || mask.shape[0] != batch || mask.shape[1] != total)
            throw new HiciException($"attention mask must be [batch, cached + new tokens] = [{batch}, {total}] (got [{string.Join(", ", mask.shape)}])");
        var m = mask.dtype == ScalarType.Bool ? mask : mask.ne(0);
        return m.all().item<bool>() ? null : m;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _rotary.Dispose();
        base.Dispose(disposing);
    }
}
