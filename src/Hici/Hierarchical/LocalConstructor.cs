using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Hici.Hierarchical;

/// <summary>
/// Local Construction (the reference's <c>LocalConstructorMulti</c> in llama_attn_hici.py / qwen3_attn_hici.py): M learned query slots attend,
/// with h heads, over one segment's hidden states and give M summary vectors of width H.
/// Field names are the state-dict sub-keys under <c>self_attn.local_constructor.</c>.
/// </summary>
public sealed class LocalConstructor : nn.Module<Tensor, Tensor?, Tensor>
{
#pragma warning disable IDE1006 // names are state-dict keys
    [ComponentName(Name = "memory_slots")] private Parameter _memory_slots;
    // Typed as modules, not Linear, so LoRA can wrap them: PEFT's suffix match puts LoRA on these too (target_modules q/k/v/o_proj in fine-tune_hici.py).
    private nn.Module<Tensor, Tensor> q_proj;
    private nn.Module<Tensor, Tensor> k_proj;
    private nn.Module<Tensor, Tensor> v_proj;
    private nn.Module<Tensor, Tensor>? o_proj;
#pragma warning restore IDE1006

    public int HiddenSize { get; }
    public int NumSlots { get; }
    public int NumHeads { get; }
    /// <summary>e: β with a bottleneck, else H.</summary>
    public int Width { get; }
    public int HeadDim => Width / NumHeads;
    /// <summary>True (default): fold the token k/v projections into the slot queries where that is cheaper
    /// (see <see cref="Folded"/>); false keeps the reference's op order everywhere (tests compare the two).</summary>
    public bool FoldTokenProjections { get; set; } = true;

    /// <summary>The learned query slots [M, H]. Settable so a loader can swap a meta placeholder for data.</summary>
    public Parameter memory_slots
    {
        get => _memory_slots;
        set { if (!ReferenceEquals(value, _memory_slots)) { _memory_slots.Dispose(); _memory_slots = value; value.DetachFromDisposeScope(); ConditionallyRegisterParameter("memory_slots", value); } }
    }

    public Parameter MemorySlots => _memory_slots;
    public nn.Module<Tensor, Tensor> QProj => q_proj;
    public nn.Module<Tensor, Tensor> KProj => k_proj;
    public nn.Module<Tensor, Tensor> VProj => v_proj;
    public nn.Module<Tensor, Tensor>? OProj => o_proj;

    public LocalConstructor(int hiddenSize, HiciConfig cfg, ScalarType dtype = ScalarType.Float32, Device? device = null)
        : this(hiddenSize, cfg.LocalSlots, cfg.NumHeads, cfg.UseBottleneck, cfg.BottleneckDim, dtype, device) { }

    /// <summary>
    /// Builds the module with the reference's initialisation (LocalConstructorMulti.__init__): slots ~ N(0,1)/√H, then q, k, v, o
    /// with PyTorch's default Linear init (kaiming-uniform, a = √5), in that RNG order; all in fp32, then cast.
    /// </summary>
    public LocalConstructor(int hiddenSize, int numSlots = 8, int numHeads = 8, bool useBottleneck = true,
        int bottleneckDim = 512, ScalarType dtype = ScalarType.Float32, Device? device = null)
        : base("LocalConstructor")
    {
        if (hiddenSize % numHeads != 0)
            throw new HiciException($"LocalConstructor: hidden size {hiddenSize} is not divisible by num_heads {numHeads}");
        if (useBottleneck && bottleneckDim % numHeads != 0)
            throw new HiciException($"LocalConstructor: bottleneck_dim {bottleneckDim} is not divisible by num_heads {numHeads}");
        HiddenSize = hiddenSize;
        NumSlots = numSlots;
        NumHeads = numHeads;
        Width = useBottleneck ? bottleneckDim : hiddenSize;

        // Built directly in the target dtype/device; on the meta device nothing is initialised (a loader
        // fills it). Otherwise: slots ~ N(0,1)/√H drawn in fp32, then q, k, v, o (default Linear init), in
        // the reference's RNG order.
        bool meta = device is { type: DeviceType.META };
        _memory_slots = new Parameter(meta
            ? empty(numSlots, hiddenSize, dtype, device)
            : (randn(numSlots, hiddenSize, ScalarType.Float32) * (1.0 / Math.Sqrt(hiddenSize))).to(dtype, device ?? CPU));
        _memory_slots.DetachFromDisposeScope();
        q_proj = nn.Linear(hiddenSize, Width, hasBias: false, device: device, dtype: dtype);
        k_proj = nn.Linear(hiddenSize, Width, hasBias: false, device: device, dtype: dtype);
        v_proj = nn.Linear(hiddenSize, Width, hasBias: false, device: device, dtype: dtype);
        o_proj = useBottleneck ? nn.Linear(Width, hiddenSize, hasBias: false, device: device, dtype: dtype) : null;
        RegisterComponents();
    }

    /// <summary>
    /// x: [R, S, H] (one row per segment), mask: [R, S] (nonzero/true = valid) or null. Returns [R, M, H].
    /// Padded keys get finfo(dtype).min (not -inf), so a fully padded row gives the plain mean of its values.
    /// Runs in x's dtype; the reference's fp32→bf16 round trip of the input (forward_flashattn_hierarchical casts the segment to bf16 before the local constructor) is deliberately not done.
    /// </summary>
    public override Tensor forward(Tensor x, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        long r = x.shape[0], s = x.shape[1];
        int h = NumHeads, dh = HeadDim;
        var qs = q_proj.forward(_memory_slots);                                    // [M, e]
        var qh = qs.view(1, NumSlots, h, dh).transpose(1, 2);                     // [1, h, M, dh]
        var folded = Folded(x);
        Tensor scores, vh = null!;
        if (folded is { } w)
        {
            // scores_h = (q_h W_k,h) xᵀ: one [R·S, H] × [H, h·M] GEMM instead of projecting every token to e
            var qk = matmul(qh.squeeze(0), w.K).reshape(h * NumSlots, HiddenSize);             // [h·M, H]
            scores = matmul(x, qk.t()).view(r, s, h, NumSlots).permute(0, 2, 3, 1) / Math.Sqrt(dh); // [R, h, M, S]
        }
        else
        {
            var kx = k_proj.forward(x);                                           // [R, S, e]
            var vx = v_proj.forward(x);
            var kh = kx.view(r, s, h, dh).transpose(1, 2);                        // [R, h, S, dh]
            vh = vx.view(r, s, h, dh).transpose(1, 2);
            scores = matmul(qh, kh.transpose(-2, -1)) / Math.Sqrt(dh);           // [R, h, M, S]
        }
        if (mask is not null)
        {
            var invalid = mask.to(ScalarType.Bool).logical_not().view(r, 1, 1, s);
            scores = scores.masked_fill(invalid, MinValue(scores.dtype));
        }
        var attn = scores.softmax(-1);
        Tensor o;
        if (folded is { } wf)
        {
            // (attn_h x) W_v,hᵀ: the weighted sum over the S tokens is taken in H, then projected per head
            var ax = matmul(attn.reshape(r, h * NumSlots, s), x).view(r, h, NumSlots, HiddenSize);  // [R, h, M, H]
            o = matmul(ax, wf.V).transpose(1, 2).reshape(r, NumSlots, Width);                    // [R, M, e]
        }
        else o = matmul(attn, vh).transpose(1, 2).reshape(r, NumSlots, Width);   // [R, M, e]
        var result = o_proj is null ? o : o_proj.forward(o);                      // [R, M, H]
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The k/v weights per head, W_k as [h, dh, H] and W_v as [h, H, dh], when the token projections can be
    /// folded into the M slot queries: plain bias-free Linears (not LoRA-wrapped), fp32/fp64, and fewer
    /// query rows h·M than the width e, so the fold is cheaper. The reference projects every token to e
    /// (4·S·H·e FLOPs per segment, as much as a quarter of the segment's attention); folded it is 4·S·H·h·M.
    /// It only reassociates fp32 sums (fast vs unfolded ≤ 1e-6 here); bf16 keeps the reference's op order,
    /// whose per-step rounding a fold would change.
    /// </summary>
    private (Tensor K, Tensor V)? Folded(Tensor x)
    {
        if (!FoldTokenProjections || x.dtype is not (ScalarType.Float32 or ScalarType.Float64) || NumHeads * NumSlots >= Width) return null;
        if (k_proj is not Linear { bias: null } kl || v_proj is not Linear { bias: null } vl) return null;
        if (kl.weight!.dtype != x.dtype || vl.weight!.dtype != x.dtype) return null;
        return (kl.weight.view(NumHeads, HeadDim, HiddenSize), vl.weight.view(NumHeads, HeadDim, HiddenSize).transpose(1, 2));
    }

    internal static double MinValue(ScalarType t) => t switch
    {
        ScalarType.Float32 => float.MinValue,
        ScalarType.Float64 => double.MinValue,
        ScalarType.Float16 => -65504.0,
        ScalarType.BFloat16 => -3.3895313892515355e38,
        _ => throw new HiciException($"LocalConstructor: unsupported dtype {t}"),
    };
}
