using TorchSharp;
using Hici.Models;
using static TorchSharp.torch;

namespace Hici.Hierarchical;

/// <summary>Which HiCI forward a layer runs (the reference's forward_flashattn_hierarchical = training, llama_attn_hici.py::forward_flashattn_hierarchical_inference = inference).</summary>
public enum HiciForwardKind
{
    /// <summary>Segments from the rule; T must be a multiple of S; one segment still runs HiCI.</summary>
    Train,
    /// <summary>Pads to a multiple of S (padding masked) and truncates back; one segment turns HiCI off.</summary>
    Inference,
}

/// <summary>
/// The HiCI attention math of one layer (forward_flashattn_hierarchical[_inference] in llama_attn_hici.py / qwen3_attn_hici.py), independent of any model class: it takes the layer's
/// input hidden states, the token q/k/v after QK-norm and RoPE, and the host layer's own k_proj/v_proj (which
/// the memory tokens go through, without RoPE and without k_norm), and returns the attention output before
/// o_proj, [B, T, n_q·d]. Per segment g the keys/values are [G | L_g | segment tokens]: every unmasked memory
/// slot is visible to every token of the segment, tokens are causal inside the segment (bottom-right rule).
/// </summary>
public sealed class HiciAttentionCore
{
    public HiciConfig Config { get; }
    public LocalConstructor? LocalConstructor { get; }
    public IGlobalIntegrator? GlobalIntegrator { get; }
    public HiciSegmenter Segmenter { get; }
    /// <summary>When set, every segmented forward also reports where its attention mass went (attention
    /// statistics; the probabilities are then computed explicitly, which costs [B·N, n_q, S, P+S] floats).</summary>
    public Action<HiciAttentionMass>? MassObserver { get; set; }

    /// <summary>
    /// True (default): inputs without padding run the mask-free causal path (<see cref="SegmentedCausal"/>);
    /// false forces the dense masked path, which the padded case and a set <see cref="MassObserver"/> always take
    /// (tests compare the two).
    /// </summary>
    public bool UseFastPath { get; set; } = true;

    public HiciAttentionCore(HiciConfig config, LocalConstructor? localConstructor, IGlobalIntegrator? globalIntegrator,
        HiciSegmenter? segmenter = null)
    {
        Config = config;
        LocalConstructor = config.UseLocalConstructor ? localConstructor : null;
        GlobalIntegrator = config.UseGlobalIntegrator ? globalIntegrator : null;
        if (config.UseLocalConstructor && localConstructor is null)
            throw new HiciException("HiCI: use_local_constructor is set but no local constructor was given");
        if (config.UseGlobalIntegrator && globalIntegrator is null)
            throw new HiciException("HiCI: use_global_integrator is set but no global integrator was given");
        Segmenter = segmenter ?? new HiciSegmenter(config);
    }

    /// <summary>
    /// Training forward (forward_flashattn_hierarchical). hidden [B,T,H]; mask [B,T] (nonzero = valid) or null (all valid);
    /// q [B,n_q,T,d]; k, v [B,n_kv,T,d]; kProj/vProj map [..., H] → [..., n_kv·d]. Returns [B, T, n_q·d].
    /// <paramref name="training"/> enables mixed segment ratios (drawn when <paramref name="layerIdx"/> is 0).
    /// </summary>
    public Tensor TrainingForward(Tensor hidden, Tensor? mask, Tensor q, Tensor k, Tensor v,
        Func<Tensor, Tensor> kProj, Func<Tensor, Tensor> vProj, int layerIdx = 0, bool training = false)
    {
        using var scope = NewDisposeScope();
        long b = hidden.shape[0], t = hidden.shape[1];
        CheckShapes(hidden, mask, q, k, v);
        int s = Segmenter.TrainingSegmentSize((int)t, layerIdx, training);
        var result = mask is null && UseFastPath && MassObserver is null
            ? SegmentedCausal(hidden, q, k, v, kProj, vProj, s, useMemory: true)
            : Segmented(hidden, mask is null ? ones(b, t, ScalarType.Bool, hidden.device) : mask.to(ScalarType.Bool),
                q, k, v, kProj, vProj, s, useMemory: true);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Inference (prefill) forward (llama_attn_hici.py::forward_flashattn_hierarchical_inference semantics, causal modes honoured): right-pads to a
    /// multiple of S with the padding masked, runs the segmented attention and truncates back to T. With one
    /// segment HiCI is off (plain causal attention) unless <see cref="HiciConfig.InferenceSingleSegment"/>.
    /// </summary>
    public Tensor InferenceForward(Tensor hidden, Tensor? mask, Tensor q, Tensor k, Tensor v,
        Func<Tensor, Tensor> kProj, Func<Tensor, Tensor> vProj)
    {
        using var scope = NewDisposeScope();
        long b = hidden.shape[0], t = hidden.shape[1];
        CheckShapes(hidden, mask, q, k, v);
        int s = Segmenter.InferenceSegmentSize((int)t);
        long tp = (t + s - 1) / s * s;
        var m = mask is null ? ones(b, t, ScalarType.Bool, hidden.device) : mask.to(ScalarType.Bool);
        if (tp != t)
        {
            long pad = tp - t;
            hidden = nn.functional.pad(hidden, new long[] { 0, 0, 0, pad });
            m = nn.functional.pad(m.to(ScalarType.Int32), new long[] { 0, pad }).to(ScalarType.Bool);
            q = nn.functional.pad(q, new long[] { 0, 0, 0, pad });
            k = nn.functional.pad(k, new long[] { 0, 0, 0, pad });
            v = nn.functional.pad(v, new long[] { 0, 0, 0, pad });
        }
        bool useMemory = tp / s > 1 || Config.InferenceSingleSegment;
        var result = mask is null && tp == t && UseFastPath && MassObserver is null
            ? SegmentedCausal(hidden, q, k, v, kProj, vProj, s, useMemory)
            : Segmented(hidden, m, q, k, v, kProj, vProj, s, useMemory);
        if (tp != t) result = result.narrow(1, 0, t);
        return result.contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Runs <see cref="TrainingForward"/> or <see cref="InferenceForward"/>.
    /// </summary>
    public Tensor Forward(HiciForwardKind kind, Tensor hidden, Tensor? mask, Tensor q, Tensor k, Tensor v,
        Func<Tensor, Tensor> kProj, Func<Tensor, Tensor> vProj, int layerIdx = 0, bool training = false) =>
        kind == HiciForwardKind.Train
            ? TrainingForward(hidden, mask, q, k, v, kProj, vProj, layerIdx, training)
            : InferenceForward(hidden, mask, q, k, v, kProj, vProj);

    /// <summary>
    /// A decode step with a KV cache (the decode branch of llama_attn_hici.py::forward_flashattn_hierarchical_inference): no memory slots; the new queries
    /// q [B,n_q,Tn,d] attend over the cached-plus-new token keys/values k, v [B,n_kv,Tk,d] (RoPE'd K as
    /// cached), causal with bottom-right alignment. kvMask [B,Tk] (nonzero = valid) or null. Returns [B,Tn,n_q·d].
    /// </summary>
    public static Tensor DecodeForward(Tensor q, Tensor k, Tensor v, Tensor? kvMask = null)
    {
        using var scope = NewDisposeScope();
        long b = q.shape[0], nq = q.shape[1], tn = q.shape[2], d = q.shape[3];
        long nkv = k.shape[1], tk = k.shape[2];
        if (tk < tn) throw new HiciException($"HiCI decode: {tk} keys for {tn} queries");
        var qi = arange(tn, device: q.device).view(tn, 1);
        var kj = arange(tk, device: q.device).view(1, tk);
        var allowed = (kj <= qi + (tk - tn)).view(1, 1, tn, tk);
        if (kvMask is not null)
        {
            var km = kvMask.to(ScalarType.Bool).view(b, 1, 1, tk);
            // a query row with nothing visible would give NaN; let it see everything (output is not used)
            allowed = allowed.logical_and(km);
            var empty = allowed.any(-1, keepdim: true).logical_not();
            allowed = allowed.logical_or(empty);
        }
        var kr = RepeatKv(k, nq / nkv);
        var vr = RepeatKv(v, nq / nkv);
        var o = nn.functional.scaled_dot_product_attention(q, kr, vr, allowed.expand(b, 1, tn, tk));
        return o.transpose(1, 2).reshape(b, tn, nq * d).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Streaming (causal_shift / causal_shift_g only): the attention of one segment [B, S', H] given what the
    /// earlier segments left in <paramref name="state"/> (G_{g−1}, L_{g−1}); then adds this segment to the state.
    /// q/k/v are the segment's own heads (RoPE at their absolute positions). Equals the segment's rows of the
    /// one-shot forward with segment length S (a shorter last segment = the inference forward's padded one).
    /// </summary>
    public Tensor StreamSegment(Tensor hidden, Tensor q, Tensor k, Tensor v,
        Func<Tensor, Tensor> kProj, Func<Tensor, Tensor> vProj, HiciStreamState state)
    {
        var mode = Config.CausalMode;
        if (mode is not (HiciCausalMode.CausalShift or HiciCausalMode.CausalShiftG))
            throw new HiciException($"HiCI streaming needs causal_mode causal_shift or causal_shift_g (got {HiciConfig.CausalModeName(mode)}): " +
                                    "in the other modes a segment's memory depends on its own or later tokens");
        using var scope = NewDisposeScope();
        CheckShapes(hidden, null, q, k, v);
        long b = hidden.shape[0], s = hidden.shape[1];
        long nq = q.shape[1], nkv = k.shape[1], d = q.shape[3];
        var parts = new List<Tensor>();
        if (LocalConstructor is not null && state.Segments > 0)
        {
            if (GlobalIntegrator is not null) parts.Add(state.Global!);
            if (mode == HiciCausalMode.CausalShift) parts.Add(state.Local!);
        }
        Tensor o;
        if (parts.Count == 0) o = CausalWithMemory(q, k, v, null, null);
        else
        {
            var mem = parts.Count == 1 ? parts[0] : cat(parts.ToArray(), 1);                  // [B, P, H]
            long p = mem.shape[1];
            var km = kProj(mem).view(b, p, nkv, d).transpose(1, 2);                           // [B, n_kv, P, d]
            var vm = vProj(mem).view(b, p, nkv, d).transpose(1, 2);
            o = CausalWithMemory(q, k, v, km, vm);
        }
        if (LocalConstructor is not null)
        {
            var l = LocalConstructor.forward(hidden, null);                                     // [B, M, H]
            Tensor? g = null;
            if (GlobalIntegrator is not null)
            {
                state.Stats.Add(l);
                g = GlobalIntegrator.ForwardStats(state.Stats.Stats());                         // G_g, for segment g+1
            }
            state.Advance(mode == HiciCausalMode.CausalShift ? l : null, g);
        }
        else state.Advance(null, null);
        return o.transpose(1, 2).reshape(b, s, nq * d).MoveToOuterDisposeScope();
    }

    // ------------------------------------------------------------------ internals

    private void CheckShapes(Tensor hidden, Tensor? mask, Tensor q, Tensor k, Tensor v)
    {
        if (hidden.dim() != 3) throw new HiciException($"HiCI: hidden states must be [B, T, H] (got {HiciConfig.Fmt(hidden.shape)})");
        long b = hidden.shape[0], t = hidden.shape[1];
        if (q.dim() != 4 || q.shape[0] != b || q.shape[2] != t)
            throw new HiciException($"HiCI: q must be [B, n_q, T, d] = [{b}, *, {t}, *] (got {HiciConfig.Fmt(q.shape)})");
        if (k.dim() != 4 || k.shape[0] != b || k.shape[2] != t || v.dim() != 4 || !v.shape.SequenceEqual(k.shape))
            throw new HiciException($"HiCI: k and v must be [B, n_kv, T, d] (got {HiciConfig.Fmt(k.shape)} and {HiciConfig.Fmt(v.shape)})");
        if (k.shape[3] != q.shape[3] || q.shape[1] % k.shape[1] != 0)
            throw new HiciException($"HiCI: q heads {q.shape[1]} must be a multiple of kv heads {k.shape[1]} with equal head dims");
        if (mask is not null && (mask.dim() != 2 || mask.shape[0] != b || mask.shape[1] != t))
            throw new HiciException($"HiCI: the padding mask must be [B, T] = [{b}, {t}] (got {HiciConfig.Fmt(mask.shape)})");
    }

    /// <summary>kv head κ serves query heads κ·r .. κ·r + r − 1 (repeat_kv / flash GQA mapping).</summary>
    private static Tensor RepeatKv(Tensor x, long rep) => rep == 1 ? x : x.repeat_interleave(rep, dim: 1);

    /// <summary>The memory per segment, [B, N, P, H], and its mask [B, N, P] (true = visible); mask null = nothing padded.</summary>
    private (Tensor? Memory, Tensor? MemMask) BuildMemory(Tensor hidden, Tensor? mask, long n, long s)
    {
        if (LocalConstructor is null) return (null, null);
        long b = hidden.shape[0], h = hidden.shape[2];
        var mode = Config.CausalMode;
        var chunks = hidden.reshape(b * n, s, h);
        var chunkMask = mask?.reshape(b * n, s);
        var l = LocalConstructor.forward(chunks, chunkMask).view(b, n, Config.LocalSlots, h); // [B, N, M, H]

        Tensor? g = null;                                                                      // [B, N, K, H]
        if (GlobalIntegrator is not null)
        {
            bool causal = mode != HiciCausalMode.None;
            g = causal
                ? GlobalIntegrator.ForwardCausal(l)
                : GlobalIntegrator.Forward(l).unsqueeze(1).expand(b, n, GlobalIntegrator.NumGlobalSlots, h);
        }
        bool shift = mode is HiciCausalMode.CausalShift or HiciCausalMode.CausalShiftG;
        bool dropL = mode is HiciCausalMode.CausalShiftG or HiciCausalMode.CausalGiGOnly;
        Tensor? lUse = dropL ? null : l;
        if (shift)
        {
            if (g is not null) g = Shift(g);
            if (lUse is not null) lUse = Shift(lUse);
        }
        var parts = new List<Tensor>();
        if (g is not null) parts.Add(g);
        if (lUse is not null) parts.Add(lUse);
        if (parts.Count == 0) return (null, null);
        var mem = parts.Count == 1 ? parts[0] : cat(parts.ToArray(), 2);                      // [B, N, P, H]
        long p = mem.shape[2];
        var memMask = ones(b, n, p, ScalarType.Bool, hidden.device);
        if (shift) memMask[TensorIndex.Colon, 0] = tensor(false);
        return (mem, memMask);
    }

    /// <summary>[zeros, x_0 .. x_{N-2}] along the segment dim.</summary>
    private static Tensor Shift(Tensor x)
    {
        long n = x.shape[1];
        var z = zeros_like(x.narrow(1, 0, 1));
        return n == 1 ? z : cat(new[] { z, x.narrow(1, 0, n - 1) }, 1);
    }

    /// <summary>
    /// The per-segment attention without a dense mask (nothing padded). Each segment's keys are
    /// [memory (P) ; tokens (S)]; P zero query rows are put in front of its S queries, so SDPA's top-left
    /// causal rule (query row i sees keys 0..i) lets real query a (row P + a) see every memory slot and the
    /// tokens 0..a — the bottom-right rule of <see cref="Segmented"/> — on the causal flash kernel, which skips
    /// the masked blocks; the P extra rows are dropped. In the shift modes segment 0 has no memory (its slots
    /// are masked) and runs as plain causal attention over its own tokens.
    /// </summary>
    private Tensor SegmentedCausal(Tensor hidden, Tensor q, Tensor k, Tensor v,
        Func<Tensor, Tensor> kProj, Func<Tensor, Tensor> vProj, long s, bool useMemory)
    {
        long b = hidden.shape[0], t = hidden.shape[1];
        long nq = q.shape[1], nkv = k.shape[1], d = q.shape[3];
        long n = t / s;
        var (mem, _) = useMemory ? BuildMemory(hidden, null, n, s) : (null, null);
        bool shift = Config.CausalMode is HiciCausalMode.CausalShift or HiciCausalMode.CausalShiftG;

        var qs = q.view(b, nq, n, s, d).transpose(1, 2);                                 // [B, N, n_q, S, d]
        var ks = k.view(b, nkv, n, s, d).transpose(1, 2);                                // [B, N, n_kv, S, d]
        var vs = v.view(b, nkv, n, s, d).transpose(1, 2);
        // segments first .. first+count-1, with or without their memory → [B, count, n_q, S, d]
        Tensor Run(long first, long count, Tensor? km, Tensor? vm)
        {
            Tensor Rows(Tensor x, long heads) => x.narrow(1, first, count).reshape(b * count, heads, x.shape[3], d);
            var o = CausalWithMemory(Rows(qs, nq), Rows(ks, nkv), Rows(vs, nkv),
                km is null ? null : Rows(km, nkv), vm is null ? null : Rows(vm, nkv));
            return o.view(b, count, nq, s, d);
        }
        Tensor result;
        if (mem is null) result = Run(0, n, null, null);
        else
        {
            long first = shift ? 1 : 0;                                                  // segments with memory
            long nm = n - first;
            var parts = new List<Tensor>();
            if (shift) parts.Add(Run(0, 1, null, null));
            if (nm > 0)
            {
                long p = mem.shape[2];
                var memK = kProj(mem).view(b, n, p, nkv, d).transpose(2, 3);               // [B, N, n_kv, P, d]
                var memV = vProj(mem).view(b, n, p, nkv, d).transpose(2, 3);
                parts.Add(Run(first, nm, memK, memV));
            }
            result = parts.Count == 1 ? parts[0] : cat(parts.ToArray(), 1);
        }
        return result.permute(0, 1, 3, 2, 4).reshape(b, t, nq * d);                      // [B, T, n_q·d]
    }

    /// <summary>
    /// Causal attention of q [R, n_q, S, d] over [memory ; tokens] with every memory slot visible to every query:
    /// km/vm [R, n_kv, P, d] (null = no memory), k/v [R, n_kv, S, d]. P zero query rows go in front so that SDPA's
    /// top-left causal flag gives the bottom-right rule; they are dropped. Returns [R, n_q, S, d].
    /// </summary>
    private static Tensor CausalWithMemory(Tensor q, Tensor k, Tensor v, Tensor? km, Tensor? vm)
    {
        // Attention.CausalAttention is the full-attention prefill kernel (square q/k: top-left causal), so both
        // paths run on the same kernel and HiCI gains whatever makes full attention faster.
        long r = q.shape[0], nq = q.shape[1], s = q.shape[2], d = q.shape[3];
        if (km is null || vm is null) return Attention.CausalAttention(q, k, v);
        long p = km.shape[2];
        var kk = cat(new[] { km.to(k.dtype), k }, 2);
        var vv = cat(new[] { vm.to(v.dtype), v }, 2);
        var qq = cat(new[] { zeros(new long[] { r, nq, p, d }, q.dtype, q.device), q }, 2);
        return Attention.CausalAttention(qq, kk, vv).narrow(2, p, s);
    }

    private Tensor Segmented(Tensor hidden, Tensor mask, Tensor q, Tensor k, Tensor v,
        Func<Tensor, Tensor> kProj, Func<Tensor, Tensor> vProj, long s, bool useMemory)
    {
        long b = hidden.shape[0], t = hidden.shape[1];
        long nq = q.shape[1], nkv = k.shape[1], d = q.shape[3];
        long n = t / s;
        var (mem, memMask) = useMemory ? BuildMemory(hidden, mask, n, s) : (null, null);
        long p = mem?.shape[2] ?? 0;

        var qs = q.view(b, nq, n, s, d).permute(0, 2, 1, 3, 4).reshape(b * n, nq, s, d);
        var ks = k.view(b, nkv, n, s, d).permute(0, 2, 1, 3, 4);                            // [B, N, n_kv, S, d]
        var vs = v.view(b, nkv, n, s, d).permute(0, 2, 1, 3, 4);
        var tokMask = mask.view(b, n, s);
        Tensor kvMask;
        if (mem is not null)
        {
            var km = kProj(mem).view(b, n, p, nkv, d).permute(0, 1, 3, 2, 4);               // [B, N, n_kv, P, d]
            var vm = vProj(mem).view(b, n, p, nkv, d).permute(0, 1, 3, 2, 4);
            ks = cat(new[] { km.to(ks.dtype), ks }, 3);
            vs = cat(new[] { vm.to(vs.dtype), vs }, 3);
            kvMask = cat(new[] { memMask!, tokMask }, 2);                                    // [B, N, P+S]
        }
        else kvMask = tokMask;
        long kvLen = p + s;
        var kr = RepeatKv(ks.reshape(b * n, nkv, kvLen, d), nq / nkv);
        var vr = RepeatKv(vs.reshape(b * n, nkv, kvLen, d), nq / nkv);

        // allowed[r, a, j] = mask_q[a] ∧ mask_kv[j] ∧ (j < P ∨ j − P ≤ a); padded query rows see all keys
        // (their output is zeroed) so that no softmax row is empty.
        var a = arange(s, device: hidden.device).view(s, 1);
        var j = arange(kvLen, device: hidden.device).view(1, kvLen);
        var causal = (j < p).logical_or(j - p <= a).view(1, s, kvLen);
        var qMask = tokMask.reshape(b * n, s, 1);
        var allowed = causal.logical_and(kvMask.reshape(b * n, 1, kvLen)).logical_or(qMask.logical_not());
        if (MassObserver is { } observe) observe(Mass(qs, kr, allowed, qMask, mem is null ? 0 : MemoryLayout(), p, b, n));
        var o = nn.functional.scaled_dot_product_attention(qs, kr, vr, allowed.unsqueeze(1));   // [B·N, n_q, S, d]
        o = o * qMask.unsqueeze(1).to(o.dtype);
        return o.view(b, n, nq, s, d).permute(0, 1, 3, 2, 4).reshape(b, t, nq * d);
    }

    /// <summary>Global slots at the front of the memory (0 when the memory holds only L).</summary>
    private long MemoryLayout() => GlobalIntegrator?.NumGlobalSlots ?? 0;

    /// <summary>Softmax mass per key group (G slots, L slots, tokens), averaged over heads and valid queries, per segment.</summary>
    private static HiciAttentionMass Mass(Tensor qs, Tensor kr, Tensor allowed, Tensor qMask, long gSlots, long p, long b, long n)
    {
        using var scope = NewDisposeScope();
        long d = qs.shape[3];
        var scores = matmul(qs.to(ScalarType.Float32), kr.to(ScalarType.Float32).transpose(2, 3)) * Math.Pow(d, -0.5);
        var probs = scores.masked_fill(allowed.unsqueeze(1).logical_not(), double.NegativeInfinity).softmax(-1);   // [B·N, n_q, S, P+S]
        var valid = qMask.reshape(b * n, 1, qMask.shape[1]).to(ScalarType.Float32);                              // [B·N, 1, S]
        double[] PerSegment(long start, long len)
        {
            if (len <= 0) return new double[n];
            var m = probs.narrow(3, start, len).sum(3) * valid;                                                // [B·N, n_q, S]
            // sum(0L), not sum(0): a literal 0 converts to ScalarType and would sum everything
            var perSeg = m.sum(2L).sum(1L).view(b, n).sum(0L) / (valid.sum(2L).sum(1L).view(b, n).sum(0L) * probs.shape[1]);
            return perSeg.to(ScalarType.Float64).cpu().data<double>().ToArray();
        }
        return new HiciAttentionMass(PerSegment(0, gSlots), PerSegment(gSlots, p - gSlots), PerSegment(p, probs.shape[3] - p));
    }
}

/// <summary>One segmented forward's attention mass per segment: on the global memory G, the local slots L and the tokens (shares of 1).</summary>
public sealed record HiciAttentionMass(double[] Global, double[] Local, double[] Tokens);
