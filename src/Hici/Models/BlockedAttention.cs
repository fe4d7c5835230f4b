using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>
/// Causal softmax attention for many queries as a few large GEMMs per block of queries, instead of libtorch's
/// CPU flash kernel. The flash kernel works on 32-64 query × 512 key tiles with small GEMMs and runs at
/// ~50-75 GFLOP/s in both dtypes, so bf16 gets none of oneDNN's GEMM rate.
/// Here, for each block of <see cref="BlockRows"/> query positions (all query heads of a KV group folded into
/// the rows, so K/V are never repeated):
///   scores = (Q_blk · K[..end]ᵀ)·scale   one batched GEMM (scale applied inside it, one rounding),
///   the causal mask only on the block's diagonal square (keys after end are never computed: upper blocks skipped),
///   P = softmax(scores) in float32 (libtorch computes a bf16 softmax row in float32 and rounds P once),
///   O_blk = P · V[..end]                  one batched GEMM.
/// Numerics: fp32 equals SDPA up to summation order (≤ 1e-6 on the outputs). In bf16 this is HF's eager
/// attention (bf16 scores, fp32 softmax, bf16 probabilities) rather than the flash kernel's fp32 running
/// statistics; the bound against a float32 reference is in docs/performance.md and tested.
/// </summary>
public static class BlockedAttention
{
    /// <summary>Query positions per block: large enough for GEMM rate, small enough that a block's scores
    /// (n_heads × rows × keys) stay in the last-level cache at 8K keys.</summary>
    public const long BlockRows = 128;

    /// <summary>Which prefill kernel <see cref="Attention.CausalAttention"/> uses (default from $HICI_PREFILL_ATTENTION).</summary>
    public static PrefillKernel Kernel { get; set; } = ParseKernel(Environment.GetEnvironmentVariable("HICI_PREFILL_ATTENTION"));

    /// <summary>
    /// Whether the blocked path is used for <paramref name="queries"/> new queries. Auto: only for bf16 on a CPU with
    /// bf16 dot products in hardware, where bf16 GEMMs run ~10× libtorch's flash kernel (794 vs 74 GFLOP/s
    /// measured on an AVX512-BF16 host). On a CPU without them (bf16 emulated) and in float32 the flash kernel
    /// already runs at the GEMM rate, and the blocked path measured 1.4× (fp32) to 3× (bf16) slower
    /// (`Hici.Bench --attention`, docs/performance.md).
    /// </summary>
    public static bool Preferred(long queries, ScalarType dtype) =>
        queries >= MinQueries && dtype is ScalarType.Float32 or ScalarType.BFloat16 && Kernel switch
        {
            PrefillKernel.Blocked => true,
            PrefillKernel.Sdpa => false,
            _ => dtype == ScalarType.BFloat16 && Hici.Runtime.CpuFeatures.NativeBf16,
        };

    /// <summary>Below this many queries SDPA is used (its per-call cost is lower and the GEMMs are small).</summary>
    public const long MinQueries = 256;

    private static PrefillKernel ParseKernel(string? s) => s?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => PrefillKernel.Auto,
        "sdpa" => PrefillKernel.Sdpa,
        "blocked" => PrefillKernel.Blocked,
        _ => throw new HiciException($"HICI_PREFILL_ATTENTION={s}: expected auto, sdpa or blocked"),
    };

    /// <summary>
    /// softmax(QKᵀ/√d)V, bottom-right causal (the L queries are the last L of the S key positions).
    /// q [B, n_heads, L, d], k and v [B, n_kv, S, d] (any strides); returns [B, n_heads, L, d] laid out as
    /// [B, L, n_heads, d] in memory, so the caller's transpose(1, 2).reshape is free.
    /// </summary>
    public static Tensor Causal(Tensor q, Tensor k, Tensor v, long blockRows = BlockRows)
    {
        using var scope = torch.NewDisposeScope();
        long b = q.shape[0], heads = q.shape[1], l = q.shape[2], d = q.shape[3];
        long kvHeads = k.shape[1], s = k.shape[2], groups = heads / kvHeads;
        if (s < l) throw new ArgumentException($"{l} queries over {s} keys: the queries must be the last of the keys");
        float scale = (float)(1.0 / Math.Sqrt(d));            // SDPA also applies it as a float
        long past = s - l;                                                    // keys before the first query

        // Q as [B·n_kv, G, L, d] (a view where the layout allows), K and V as [B·n_kv, S, d].
        var qg = q.reshape(b * kvHeads, groups, l, d);
        var kf = k.reshape(b * kvHeads, s, d);
        var vf = v.reshape(b * kvHeads, s, d);
        var outStore = torch.empty(new[] { b, l, kvHeads, groups, d }, dtype: q.dtype, device: q.device);
        var outView = outStore.permute(0, 2, 3, 1, 4);                       // [B, n_kv, G, L, d], a view
        var zero = torch.zeros(new long[] { 1, 1, 1 }, dtype: q.dtype, device: q.device);   // baddbmm's input, ignored (beta 0)
        Tensor? tri = null;
        for (long i0 = 0; i0 < l; i0 += blockRows)
        {
            using var step = torch.NewDisposeScope();
            long rows = Math.Min(blockRows, l - i0), end = past + i0 + rows;
            var qb = qg.narrow(2, i0, rows).reshape(b * kvHeads, groups * rows, d);
            var kb = kf.narrow(1, 0, end);
            // TorchSharp's Tensor.baddbmm(batch2, input): `this` is batch1 (THSTensor_baddbmm's argument order)
            var scores = qb.baddbmm(kb.transpose(1, 2), zero, beta: 0, alpha: scale);   // [B·n_kv, G·rows, end]
            if (rows > 1)
            {
                if (tri is null || tri.shape[0] != rows)
                {
                    tri?.Dispose();
                    tri = torch.ones(rows, rows, dtype: ScalarType.Bool, device: q.device).triu(1).DetachFromDisposeScope();
                }
                scores.view(b * kvHeads, groups, rows, end).narrow(3, end - rows, rows).masked_fill_(tri, double.NegativeInfinity);
            }
            var p = torch.softmax(scores, -1);
            var ob = torch.bmm(p, vf.narrow(1, 0, end));                        // [B·n_kv, G·rows, d]
            outView.narrow(3, i0, rows).copy_(ob.view(b, kvHeads, groups, rows, d));
        }
        tri?.Dispose();
        return outStore.view(b, l, heads, d).transpose(1, 2).MoveToOuterDisposeScope();
    }
}

/// <summary>Prefill attention kernel: auto (by dtype and CPU), libtorch's SDPA, or <see cref="BlockedAttention"/>.</summary>
public enum PrefillKernel { Auto, Sdpa, Blocked }
