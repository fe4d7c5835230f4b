using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>What a layer's attention sees: the normalised hidden states [B, L, hidden], RoPE tables for the
/// new positions, this layer's state (null = none), the position of the first new token, and the padding
/// mask over every key position (bool [B, Start + L], true = real token; null = nothing padded).</summary>
public sealed record AttentionInput(Tensor Hidden, RopeTables Rope, ILayerState? State, long Start, Tensor? Mask = null)
{
    /// <summary>The layer state as the K/V cache softmax attention keeps (null = no state).</summary>
    public LayerKvCache? Cache => State switch
    {
        null => null,
        LayerKvCache c => c,
        _ => throw new HiciException($"this attention layer keeps a K/V cache, not a {State.GetType().Name}"),
    };

    /// <summary>The mask of the new tokens only, [B, L] (null when nothing is padded).</summary>
    public Tensor? NewTokenMask => Mask is null ? null : Mask.narrow(1, Start, Hidden.shape[1]);
}

/// <summary>
/// Projected, normalised and rotated heads handed to <see cref="Attention.Attend"/>:
/// Q [B, n_heads, L, d], K and V [B, n_kv, L, d] for the new tokens only.
/// </summary>
public sealed record AttentionHeads(Tensor Q, Tensor K, Tensor V);

/// <summary>
/// Multi-head / grouped-query self-attention as in HF Llama and Qwen3. The module does the projections,
/// Qwen3's q_norm/k_norm and RoPE; <see cref="Attend"/> (softmax(QKᵀ/√d)V over cache + new tokens) is
/// virtual so other attention kinds (HiCI, chunked) subclass this and keep the same weights and keys.
/// Field names are the HF checkpoint keys. Projections are typed as plain modules so LoRA can swap in a
/// wrapper (see <see cref="ReplaceProjection"/>).
/// </summary>
public class Attention : nn.Module<AttentionInput, Tensor>
{
    public nn.Module<Tensor, Tensor> q_proj;
    public nn.Module<Tensor, Tensor> k_proj;
    public nn.Module<Tensor, Tensor> v_proj;
    public nn.Module<Tensor, Tensor> o_proj;
    public RmsNorm? q_norm;
    public RmsNorm? k_norm;

    protected ModelConfig Config { get; }
    public int LayerIndex { get; }
    protected int Heads => Config.NumAttentionHeads;
    protected int KvHeads => Config.NumKeyValueHeads;
    protected int HeadDim => Config.HeadDim;

    public Attention(ModelConfig cfg, int layerIndex, Device? device = null, ScalarType? dtype = null, string name = nameof(Attention))
        : base(name)
    {
        Config = cfg;
        LayerIndex = layerIndex;
        long h = cfg.HiddenSize, d = cfg.HeadDim;
        q_proj = nn.Linear(h, cfg.NumAttentionHeads * d, cfg.AttentionBias, device, dtype);
        k_proj = nn.Linear(h, cfg.NumKeyValueHeads * d, cfg.AttentionBias, device, dtype);
        v_proj = nn.Linear(h, cfg.NumKeyValueHeads * d, cfg.AttentionBias, device, dtype);
        o_proj = nn.Linear(cfg.NumAttentionHeads * d, h, false, device, dtype);
        if (cfg.UsesQkNorm)
        {
            q_norm = new RmsNorm(d, cfg.RmsNormEps, device, dtype);
            k_norm = new RmsNorm(d, cfg.RmsNormEps, device, dtype);
        }
        // Subclasses add their own submodules (fields) before calling RegisterComponents themselves.
        if (GetType() == typeof(Attention)) RegisterComponents();
    }

    public override Tensor forward(AttentionInput x)
    {
        using var scope = torch.NewDisposeScope();
        long b = x.Hidden.shape[0], l = x.Hidden.shape[1];
        var (q, k, v) = ProjectHeads(x.Hidden);
        var o = AttendBeforeRope(q, k, v, x);                           // [B, n_heads, L, d]
        o = o.transpose(1, 2).reshape(b, l, Heads * HeadDim);
        return o_proj.call(o).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The heads before RoPE: q [B, n_heads, L, d], k and v [B, n_kv, L, d] (q/k normed for Qwen3). The default
    /// rotates q and k by the layer input's tables and calls <see cref="Attend"/>; an implementation that places
    /// queries and keys itself (e.g. dual chunk attention, which rotates them with its own position ids through
    /// <see cref="RotaryEmbedding.Tables(Tensor, ScalarType, long?)"/>) overrides this.
    /// </summary>
    protected virtual Tensor AttendBeforeRope(Tensor q, Tensor k, Tensor v, AttentionInput x) =>
        Attend(new AttentionHeads(RotaryEmbedding.Apply(q, x.Rope), RotaryEmbedding.Apply(k, x.Rope), v), x);

    /// <summary>Q for hidden states [B, L, hidden] → [B, n_heads, L, d], normed (Qwen3), rotated when <paramref name="rope"/> is given.</summary>
    public Tensor ProjectQuery(Tensor hidden, RopeTables? rope)
    {
        var q = QueryHeads(q_proj.call(hidden));
        return rope is null ? q : RotaryEmbedding.Apply(q, rope);
    }

    /// <summary>
    /// K, V for any states [B, L, hidden] through this layer's own k_proj/v_proj (and k_norm) → [B, n_kv, L, d].
    /// RoPE is applied when <paramref name="rope"/> is given; HiCI calls this without it for memory tokens.
    /// </summary>
    public (Tensor K, Tensor V) ProjectKeyValue(Tensor states, RopeTables? rope)
    {
        var k = KeyHeads(k_proj.call(states));
        if (rope is not null) k = RotaryEmbedding.Apply(k, rope);
        return (k, ValueHeads(v_proj.call(states)));
    }

    /// <summary>
    /// Q, K, V before RoPE as <see cref="ProjectQuery"/> and <see cref="ProjectKeyValue"/> give them, from one GEMM
    /// when the projections are packed (<see cref="PackProjections"/>), else from three.
    /// </summary>
    public (Tensor Q, Tensor K, Tensor V) ProjectHeads(Tensor hidden)
    {
        if (_packedQkv?.Apply(hidden, q_proj, k_proj, v_proj) is { } qkv) return (QueryHeads(qkv[0]), KeyHeads(qkv[1]), ValueHeads(qkv[2]));
        var (k, v) = ProjectKeyValue(hidden, rope: null);
        return (ProjectQuery(hidden, rope: null), k, v);
    }

    private Tensor QueryHeads(Tensor projected)
    {
        var q = projected.view(projected.shape[0], projected.shape[1], Heads, HeadDim);
        if (q_norm is not null) q = q_norm.call(q);                    // over head_dim, before RoPE (Qwen3)
        return q.transpose(1, 2);
    }

    private Tensor KeyHeads(Tensor projected)
    {
        var k = projected.view(projected.shape[0], projected.shape[1], KvHeads, HeadDim);
        if (k_norm is not null) k = k_norm.call(k);
        return k.transpose(1, 2);
    }

    private Tensor ValueHeads(Tensor projected) =>
        projected.view(projected.shape[0], projected.shape[1], KvHeads, HeadDim).transpose(1, 2);

    private PackedProjections? _packedQkv;

    /// <summary>
    /// Lets q/k/v_proj run as one GEMM in inference (<see cref="PackedProjections"/>: same weights and keys, no
    /// extra memory). Called once the weights are loaded; a later LoRA wrapper or weight swap turns it off by itself.
    /// </summary>
    /// <param name="layout">how the packed buffer is stored (<see cref="WeightLayout"/>)</param>
    public void PackProjections(bool enable = true, WeightLayout.Kind layout = WeightLayout.Kind.Row)
    {
        _packedQkv?.Dispose();
        _packedQkv = enable ? PackedProjections.Pack(layout, q_proj, k_proj, v_proj) : null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { _packedQkv?.Dispose(); _packedQkv = null; }
        base.Dispose(disposing);
    }

    /// <summary>
    /// Causal softmax attention of the new queries over cached + new keys. Returns [B, n_heads, L, d].
    /// Override for other attention kinds; <paramref name="x"/> gives access to the layer input and cache.
    /// </summary>
    protected virtual Tensor Attend(AttentionHeads heads, AttentionInput x)
    {
        var (q, k, v) = heads;
        if (x.Cache is not null) (k, v) = x.Cache.Append(k, v, x.Start);
        return x.Mask is null ? CausalAttention(q, k, v) : MaskedCausalAttention(q, k, v, x.Mask);
    }

    /// <summary>
    /// <see cref="CausalAttention"/> with padded keys removed: keyMask bool [B, S] (true = real token). A query
    /// row that sees no key at all (a padded query before any real token) attends to every key instead, so the
    /// softmax has no empty row (no NaN); such rows are padding and their output is never used.
    /// </summary>
    public static Tensor MaskedCausalAttention(Tensor q, Tensor k, Tensor v, Tensor keyMask)
    {
        long b = q.shape[0], heads = q.shape[1], l = q.shape[2];
        long kvHeads = k.shape[1], s = k.shape[2];
        var causal = torch.ones(l, s, dtype: ScalarType.Bool, device: q.device).tril(s - l);
        var allowed = causal.unsqueeze(0).logical_and(keyMask.to(ScalarType.Bool).view(b, 1, s));   // [B, L, S]
        allowed = allowed.logical_or(allowed.any(-1, keepdim: true).logical_not());
        long groups = heads / kvHeads;
        return nn.functional.scaled_dot_product_attention(q, RepeatKv(k, groups), RepeatKv(v, groups), attn_mask: allowed.unsqueeze(1));
    }

    /// <summary>
    /// softmax(QKᵀ/√d)V where the L queries are the last L of the S key positions (bottom-right causal).
    /// Many queries (prefill) go through <see cref="BlockedAttention"/> (large GEMMs, several times the flash
    /// kernel's rate). With SDPA, full prefill uses its is_casual (top-left aligned, correct only when L == S) on repeated K/V;
    /// otherwise the query heads of a KV group are folded into the query length, so K/V are not copied
    /// and the explicit mask is just tiled per group.
    /// </summary>
    public static Tensor CausalAttention(Tensor q, Tensor k, Tensor v) =>
        BlockedAttention.Preferred(q.shape[2], q.dtype) ? BlockedAttention.Causal(q, k, v) : SdpaCausalAttention(q, k, v);

    /// <summary><see cref="CausalAttention"/> through libtorch's SDPA kernels (used for few queries, e.g. decoding).</summary>
    public static Tensor SdpaCausalAttention(Tensor q, Tensor k, Tensor v)
    {
        long b = q.shape[0], heads = q.shape[1], l = q.shape[2], d = q.shape[3];
        long kvHeads = k.shape[1], s = k.shape[2], groups = heads / kvHeads;
        if (l == s)
        {
            return nn.functional.scaled_dot_product_attention(q, RepeatKv(k, groups), RepeatKv(v, groups), is_casual: l > 1);
        }
        var qg = q.reshape(b, kvHeads, groups * l, d);
        Tensor? mask = null;
        if (l > 1)
        {
            // bottom-right aligned: query i (absolute position s-l+i) sees keys 0..s-l+i
            mask = torch.ones(l, s, dtype: ScalarType.Bool, device: q.device).tril(s - l);
            if (groups > 1) mask = mask.repeat(groups, 1);
        }
        var o = nn.functional.scaled_dot_product_attention(qg, k, v, attn_mask: mask);
        return o.view(b, heads, l, d);
    }

    /// <summary>HF repeat_kv: [B, n_kv, S, d] → [B, n_kv·groups, S, d], head h reading kv head h / groups.</summary>
    public static Tensor RepeatKv(Tensor x, long groups)
    {
        if (groups == 1) return x;
        long b = x.shape[0], kv = x.shape[1], s = x.shape[2], d = x.shape[3];
        return x.unsqueeze(2).expand(b, kv, groups, s, d).reshape(b, kv * groups, s, d);
    }

    /// <summary>Swaps q_proj/k_proj/v_proj/o_proj for another module (e.g. a LoRA wrapper); returns the old one.</summary>
    public nn.Module<Tensor, Tensor> ReplaceProjection(string name, nn.Module<Tensor, Tensor> replacement)
        => ModuleTree.ReplaceChild(this, name, replacement);
}
