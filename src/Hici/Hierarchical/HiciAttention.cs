using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Hierarchical;

/// <summary>
/// The host layer's attention with HiCI (the reference's forward_flashattn_hierarchical and forward_flashattn_hierarchical_inference): same q/k/v/o (and Qwen3 q_norm/k_norm) weights and
/// keys as <see cref="Attention"/>, plus the fields <c>local_constructor</c> and <c>global_integrator</c>, so
/// checkpoint keys read <c>model.layers.N.self_attn.local_constructor.*</c>.
/// With <see cref="RunHici"/> false (HiciAttentionOptions.Run false) the modules are held
/// and loaded but not run: plain full attention, as the reference's paper perplexities.
/// KV cache: a prefill (cache start 0) runs HiCI and stores the token K/V only; later calls (start &gt; 0) are
/// decode steps over the cached token K/V with no memory slots (the decode branch of llama_attn_hici.py::forward_flashattn_hierarchical_inference).
/// </summary>
public sealed class HiciAttention : Attention
{
#pragma warning disable IDE1006 // field names are state-dict keys
    public LocalConstructor? local_constructor;
    /// <summary><see cref="GlobalIntegratorShared"/> or <see cref="GlobalIntegrator"/>.</summary>
    public nn.Module<Tensor, Tensor>? global_integrator;
#pragma warning restore IDE1006

    public HiciConfig Hici { get; }
    /// <summary>False: full attention (HiCI modules loaded, unused).</summary>
    public bool RunHici { get; set; }
    public HiciAttentionCore Core { get; }
    /// <summary>The model's segmenter (one per model, shared by every layer): save and restore its state to resume training exactly.</summary>
    public HiciSegmenter Segmenter => Core.Segmenter;
    public IGlobalIntegrator? GlobalIntegratorModule => global_integrator as IGlobalIntegrator;

    /// <param name="segmenter">the model's segmenter, shared by all its layers (see <see cref="HiciImplementation"/>)</param>
    public HiciAttention(ModelConfig cfg, int layerIndex, bool runHici, HiciSegmenter segmenter, Device? device = null, ScalarType? dtype = null)
        : base(cfg, layerIndex, device, dtype, nameof(HiciAttention))
    {
        Hici = (HiciAttentionOptions.Of(cfg)?.Config ?? throw new HiciException(
            "attention 'hici' needs a HiCI config (hici_config.json beside the checkpoint, or the HiCI flags)"))
            .ValidateFor(cfg.HiddenSize);
        RunHici = runHici;
        var dt = dtype ?? ScalarType.Float32;
        int h = cfg.HiddenSize;
        if (Hici.UseLocalConstructor) local_constructor = new LocalConstructor(h, Hici, dt, device);
        if (Hici.UseGlobalIntegrator)
            global_integrator = Hici.UseSharedCompressor
                ? new GlobalIntegratorShared(h, Hici, null, dt, device)
                : new GlobalIntegrator(h, Hici, null, dt, device);
        RegisterComponents();
        Core = new HiciAttentionCore(Hici, local_constructor, GlobalIntegratorModule, segmenter);
    }

    protected override Tensor Attend(AttentionHeads heads, AttentionInput x)
    {
        if (!RunHici) return base.Attend(heads, x);
        var (q, k, v) = heads;
        if (x.Cache is not null && x.Start > 0)
        {
            // decode (or a continued prefill): token-only causal attention over the cache, no memory
            var (kc, vc) = x.Cache.Append(k, v, x.Start);
            return x.Mask is null ? CausalAttention(q, kc, vc) : MaskedCausalAttention(q, kc, vc, x.Mask);
        }
        if (x.Cache is not null) x.Cache.Append(k, v, 0);
        long b = q.shape[0], t = q.shape[2];
        var o = Core.Forward(Hici.Forward, x.Hidden, x.NewTokenMask, q, k, v,
            s => k_proj.call(s), s => v_proj.call(s), LayerIndex, training);     // memory: no RoPE, no k_norm
        return o.view(b, t, Heads, HeadDim).transpose(1, 2);
    }

    /// <summary>
    /// Re-initialises the HiCI modules by the reference's rules (LocalConstructorMulti.__init__, GlobalIntegratorShared.__init__), for training from scratch;
    /// <paramref name="embedTokens"/> is the host input embedding (for the global queries' high-norm init).
    /// </summary>
    public void ResetHiciParameters(Tensor? embedTokens)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        int h = Config.HiddenSize;
        void CopyAll(nn.Module dst, nn.Module src)
        {
            var s = src.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach (var (name, p) in dst.named_parameters()) p.copy_(s[name]);
        }
        if (local_constructor is not null)
        {
            using var fresh = new LocalConstructor(h, Hici);
            CopyAll(local_constructor, fresh);
        }
        if (global_integrator is not null)
        {
            nn.Module fresh = Hici.UseSharedCompressor
                ? new GlobalIntegratorShared(h, Hici, embedTokens)
                : new GlobalIntegrator(h, Hici, embedTokens);
            CopyAll(global_integrator, fresh);
            fresh.Dispose();
        }
    }
}
