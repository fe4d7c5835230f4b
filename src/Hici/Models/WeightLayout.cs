using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>
/// How projection weights sit in memory after loading. HF stores a Linear weight as [out, in] rows ("row");
/// <c>linear(x, W)</c> then multiplies by Wᵀ, and for a single token that is a dot-product ("T") gemv, which libtorch
/// runs on one thread at a fraction of the memory bandwidth (fp32 lm_head 32000×512: 3.4 ms with 2 threads; bf16
/// without hardware bf16: 2.9 ms). "column" keeps the same [out, in] parameters as transposed views of [in, out]
/// storage, so the same <c>linear</c> becomes an axpy-style ("N") gemv over contiguous Wᵀ: 2.7 ms fp32, 1.4 ms bf16
/// (bench/Hici.Bench `--decode`; docs/performance.md). Values, parameter names, checkpoint keys and memory are
/// unchanged; the fp32 summation order of a product changes (last-ulp differences, as any other GEMM kernel choice).
/// <c>HICI_WEIGHT_LAYOUT=row|column</c> (default column) chooses.
/// </summary>
public static class WeightLayout
{
    public enum Kind { Row, Column }

    /// <summary>The layout inference loads use: <c>HICI_WEIGHT_LAYOUT</c>, else column. Read at each load (a bad value
    /// is a user error there, not a type-initialisation failure).</summary>
    public static Kind Preferred => Environment.GetEnvironmentVariable("HICI_WEIGHT_LAYOUT")?.Trim().ToLowerInvariant() switch
    {
        null or "" or "column" => Kind.Column,
        "row" => Kind.Row,
        var v => throw new HiciException($"HICI_WEIGHT_LAYOUT '{v}': expected row or column"),
    };

    /// <summary>True when <paramref name="w"/> [out, in] is a transposed view of [in, ≥ out] storage (its own, or a
    /// column range of a packed buffer).</summary>
    public static bool IsColumnMajor(Tensor w) => w.dim() == 2 && w.stride(0) == 1 && w.stride(1) >= w.shape[0];

    /// <summary>
    /// Gives a loaded <see cref="Linear"/>'s weight layout <paramref name="kind"/> (a copy, then the old storage is
    /// freed; row = contiguous [out, in]). Nothing happens for other modules (e.g. a LoRA wrapper), meta weights or a
    /// weight already laid out so.
    /// </summary>
    public static void Apply(nn.Module<Tensor, Tensor> module, Kind kind)
    {
        if (module is not Linear layer || layer.weight is not { } w || w.is_meta || w.dim() != 2) return;
        if (kind == Kind.Column ? IsColumnMajor(w) : w.is_contiguous()) return;
        using var scope = torch.NewDisposeScope();
        Tensor data;
        using (torch.no_grad()) data = kind == Kind.Column ? w.t().contiguous().t() : w.contiguous();
        var p = new Parameter(data, requires_grad: w.requires_grad);
        p.DetachFromDisposeScope();
        layer.weight = p;                                                      // disposes the old weight
    }

    /// <summary>
    /// The packing buffer for weights <paramref name="ws"/> ([out_i, in] each) in layout <paramref name="kind"/>:
    /// row → [Σout, in] (views: row ranges); column → [in, Σout] (views: column ranges, transposed).
    /// Returns the buffer as [Σout, in] (a view in the column case) and the per-weight views.
    /// </summary>
    public static (Tensor Packed, Tensor[] Views) Pack(IReadOnlyList<Tensor> ws, Kind kind)
    {
        using var scope = torch.NewDisposeScope();
        Tensor packed;
        var views = new Tensor[ws.Count];
        long at = 0;
        using (torch.no_grad())
        {
            if (kind == Kind.Column)
            {
                var cols = torch.cat(ws.Select(w => w.t()).ToArray(), 1);     // [in, Σout], contiguous
                packed = cols.t();
                for (int i = 0; i < ws.Count; i++) { views[i] = cols.narrow(1, at, ws[i].shape[0]).t(); at += ws[i].shape[0]; }
            }
            else
            {
                packed = torch.cat(ws.ToArray(), 0);                               // [Σout, in]
                for (int i = 0; i < ws.Count; i++) { views[i] = packed.narrow(0, at, ws[i].shape[0]); at += ws[i].shape[0]; }
            }
        }
        packed.MoveToOuterDisposeScope();
        foreach (var v in views) v.MoveToOuterDisposeScope();
        return (packed, views);
    }
}
