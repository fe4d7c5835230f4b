using TorchSharp;
using static TorchSharp.torch;

namespace Hici.DualChunk;

/// <summary>
/// softmax(QKᵀ/√d)V together with each row's log-sum-exp, what flash_attn_func(return_attn_probs=True) gives
/// the reference, so partial attentions over disjoint key sets can be merged exactly. libtorch's SDPA does not
/// return the log-sum-exp, so unmasked square-causal or non-causal calls (every part of a prefill) reach its
/// flash kernel through <see cref="FlashLse"/>; the rest (decoding's bottom-right parts, padding masks) runs
/// float32 scores in (query block × key block) tiles with an online softmax, so memory is bounded by the tile.
/// </summary>
public static class LseAttention
{
    /// <summary>Score tile size in elements (B·heads·query rows·key columns): 2²² floats = 16 MiB.</summary>
    public const long TileElements = 1L << 22;

    /// <param name="q">[B, H, Lq, d], already rotated</param>
    /// <param name="k">[B, Hkv, Lk, d] (H a multiple of Hkv: grouped-query heads share a KV head)</param>
    /// <param name="v">[B, Hkv, Lk, d]</param>
    /// <param name="causal">bottom-right causal: query i (of Lq) sees keys j ≤ i + Lk − Lq</param>
    /// <param name="keyMask">bool [B, Lk], true = a real key (null = all)</param>
    /// <returns>O [B, H, Lq, d] in q's dtype and lse float32 [B, H, Lq] (−∞ for a row that sees no key; its O is 0)</returns>
    /// <param name="flash">false forces the tiles (tests compare the two paths)</param>
    public static (Tensor O, Tensor Lse) Attend(Tensor q, Tensor k, Tensor v, bool causal, Tensor? keyMask = null, bool flash = true)
    {
        using var scope = torch.NewDisposeScope();
        long b = q.shape[0], h = q.shape[1], lq = q.shape[2], d = q.shape[3];
        long hkv = k.shape[1], lk = k.shape[2], g = h / hkv;
        if (flash && keyMask is null && (!causal || lq == lk) && lk > 0 && k.dtype == q.dtype && v.dtype == q.dtype)
        {
            // a prefill's parts (square causal, or every key visible): libtorch's fused flash kernel, 4-6× faster
            // than the tiles below, whose unfused exp/max/sum passes over fp32 tiles dominate
            var (fo, flse) = FlashLse.Attend(q, Models.Attention.RepeatKv(k, g), Models.Attention.RepeatKv(v, g), causal);
            return (fo.MoveToOuterDisposeScope(), flse.MoveToOuterDisposeScope());
        }
        long offset = lk - lq;
        double scale = 1.0 / Math.Sqrt(d);
        long kb = Math.Min(lk, 1024);
        long qb = Math.Max(1, Math.Min(lq, TileElements / Math.Max(1, b * h * kb)));

        var q5 = (q.to(ScalarType.Float32) * scale).reshape(b, hkv, g, lq, d);   // 1/√d once on q, not on every score tile
        var k5 = k.to(ScalarType.Float32).unsqueeze(2);                       // [B, Hkv, 1, Lk, d]
        var v5 = v.to(ScalarType.Float32).unsqueeze(2);
        var maskedKeys = keyMask?.logical_not().view(b, 1, 1, 1, lk);

        var outs = new List<Tensor>();
        var lses = new List<Tensor>();
        for (long i0 = 0; i0 < lq; i0 += qb)
        {
            long n = Math.Min(qb, lq - i0);
            var (o, lse) = QueryBlock(q5.narrow(3, i0, n), k5, v5, i0, causal ? offset : (long?)null, maskedKeys, kb);
            outs.Add(o);
            lses.Add(lse);
        }
        var oAll = (outs.Count == 1 ? outs[0] : torch.cat(outs, 3)).reshape(b, h, lq, d).to(q.dtype);
        var lseAll = (lses.Count == 1 ? lses[0] : torch.cat(lses, 3)).reshape(b, h, lq);
        return (oAll.MoveToOuterDisposeScope(), lseAll.MoveToOuterDisposeScope());
    }

    /// <summary>One block of query rows [i0, i0+n) over all key blocks, with the running max / sum / weighted values.</summary>
    private static (Tensor O, Tensor Lse) QueryBlock(Tensor q, Tensor k, Tensor v, long i0, long? causalOffset,
        Tensor? maskedKeys, long kb)
    {
        using var scope = torch.NewDisposeScope();
        long n = q.shape[3], lk = k.shape[3];
        long lastVisible = causalOffset is { } off ? Math.Min(lk, i0 + n + off) : lk;    // keys [0, lastVisible) can be seen
        Tensor? m = null, l = null, acc = null;
        for (long j0 = 0; j0 < lastVisible; j0 += kb)
        {
            using var step = torch.NewDisposeScope();
            long w = Math.Min(kb, lastVisible - j0);
            var s = torch.matmul(q, k.narrow(3, j0, w).transpose(-1, -2));                // [B, Hkv, g, n, w], q pre-scaled
            if (causalOffset is { } o && j0 + w - 1 > i0 + o)
            {
                // key j is hidden from query i when j > i + offset
                var rows = torch.arange(i0, i0 + n, dtype: ScalarType.Int64, device: q.device).unsqueeze(1);
                var cols = torch.arange(j0, j0 + w, dtype: ScalarType.Int64, device: q.device).unsqueeze(0);
                s.masked_fill_(cols > rows + o, float.NegativeInfinity);
            }
            if (maskedKeys is not null) s.masked_fill_(maskedKeys.narrow(4, j0, w), float.NegativeInfinity);
            var blockMax = s.detach().amax(new long[] { -1 }, keepdim: true);   // a stabiliser: cancels in O and lse, so no gradient
            var mNew = m is null ? blockMax : torch.maximum(m, blockMax);
            var mSafe = Finite(mNew);
            var p = s.sub_(mSafe).exp_();                                                   // in place: s is not needed again
            var pv = torch.matmul(p, v.narrow(3, j0, w));
            var ps = p.sum(-1, keepdim: true);
            Tensor lNew = ps, accNew = pv;
            if (m is not null)
            {
                var corr = (m - mSafe).exp_();
                lNew = l! * corr + ps;
                accNew = acc! * corr + pv;
            }
            // the running tensors of the previous block are dropped now, not at the end of the query block
            m?.Dispose(); l?.Dispose(); acc?.Dispose();
            m = mNew.MoveToOuterDisposeScope();
            l = lNew.MoveToOuterDisposeScope();
            acc = accNew.MoveToOuterDisposeScope();
        }
        if (m is null) throw new HiciException("attention over an empty key set");
        var outO = torch.where(l! > 0, acc! / l!, torch.zeros_like(acc!));
        var lse = (Finite(m) + l!.log()).squeeze(-1);
        return (outO.MoveToOuterDisposeScope(), lse.MoveToOuterDisposeScope());
    }

    /// <summary>The running max with −∞ (nothing seen yet) replaced by 0, so exp(x − max) stays defined.</summary>
    private static Tensor Finite(Tensor m) => torch.where(m.isneginf(), torch.zeros_like(m), m);
}
