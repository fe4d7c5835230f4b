using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Hierarchical;

/// <summary>One block of positions in the audit summary (a HiCI segment, or a quarter of the sequence).</summary>
/// <param name="Moved">earlier positions (before the perturbed one) in this block whose next-token log-prob moved</param>
/// <param name="Earlier">positions of this block before the perturbed one</param>
public sealed record AuditBlock(int Index, int Start, int End, int Moved, int Earlier, double MaxDelta);

/// <param name="Delta">per position i: |Δ log p(original ids[i+1] | ids[0..i])| between the two runs</param>
public sealed record AuditResult(int Position, long Original, long Replacement, float[] Delta, IReadOnlyList<AuditBlock> Blocks)
{
    /// <summary>Above this an fp32 log-prob counts as moved (identical inputs give identical fp32 results).</summary>
    public const double Threshold = 1e-6;

    /// <summary>Positions before the perturbed one whose prediction moved: a leak of the future.</summary>
    public IReadOnlyList<int> Leaks => Enumerable.Range(0, Position).Where(i => Delta[i] > Threshold).ToList();

    /// <summary>Positions at or after the perturbed one that moved (a sanity check that the change propagates).</summary>
    public int LaterMoved => Enumerable.Range(Position, Delta.Length - Position).Count(i => Delta[i] > Threshold);

    public bool IsCausal => Leaks.Count == 0;

    /// <summary>"causal" or "LEAKS: positions 16-22, 30 before the perturbed token changed".</summary>
    public string Verdict => IsCausal ? "causal" : $"LEAKS: positions {Ranges(Leaks)} before the perturbed token changed";

    public static string Ranges(IReadOnlyList<int> xs)
    {
        var parts = new List<string>();
        for (int i = 0; i < xs.Count;)
        {
            int j = i;
            while (j + 1 < xs.Count && xs[j + 1] == xs[j] + 1) j++;
            parts.Add(i == j ? $"{xs[i]}" : $"{xs[i]}-{xs[j]}");
            i = j + 1;
        }
        return string.Join(", ", parts);
    }
}

/// <summary>
/// Does a prediction depend on tokens after it? Replaces the token at one position and reports which
/// earlier positions' next-token log-probabilities moved. In a causal language model none may move; HiCI's
/// memory (L_g summarises its whole segment, G in mode none summarises all segments) lets the future in
/// (see docs/hici.md, "Perplexity in a leaking mode"). The model runs each sequence in one forward without a cache, as HiCI needs.
/// </summary>
public static class CausalityAudit
{
    /// <param name="blocks">[start, end) ranges for the summary (e.g. the HiCI segments); null = quarters</param>
    public static AuditResult Run(ICausalLM lm, long[] ids, int position, long replacement, IReadOnlyList<(int Start, int End)>? blocks = null)
    {
        int n = ids.Length;
        if (n < 2) throw new HiciException($"audit needs at least 2 tokens (got {n})");
        if (position < 1 || position >= n)
            throw new HiciException($"--position {position} is outside 1..{n - 1} (position 0 has no earlier position to check)");
        if (replacement == ids[position]) throw new HiciException($"the replacement token {replacement} equals the original");
        var other = (long[])ids.Clone();
        other[position] = replacement;

        var a = NextTokenLogProbs(lm, ids, ids);
        var b = NextTokenLogProbs(lm, other, ids);       // the original targets, so only the context differs
        var delta = a.Zip(b, (x, y) => Math.Abs(x - y)).ToArray();

        blocks ??= Quarters(n);
        var summary = blocks.Select((r, k) =>
        {
            var earlier = Enumerable.Range(r.Start, Math.Max(0, Math.Min(r.End, position) - r.Start)).ToList();
            int last = Math.Min(r.End, n - 1);             // the last token predicts nothing
            double max = Enumerable.Range(r.Start, Math.Max(0, last - r.Start)).Select(i => (double)delta[i]).DefaultIfEmpty(0).Max();
            return new AuditBlock(k, r.Start, r.End, earlier.Count(i => delta[i] > AuditResult.Threshold), earlier.Count, max);
        }).ToList();
        return new AuditResult(position, ids[position], replacement, delta, summary);
    }

    /// <summary>log p(targets[i+1] | ids[0..i]) for i = 0..n−2, fp32, one forward without a cache.</summary>
    private static float[] NextTokenLogProbs(ICausalLM lm, long[] ids, long[] targets)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var x = tensor(ids, dtype: ScalarType.Int64, device: lm.Device);
        var hidden = lm.Hidden(x)[0];                                            // [n, hidden]
        var t = tensor(targets, dtype: ScalarType.Int64, device: lm.Device);
        var result = new float[ids.Length - 1];
        const int chunk = 256;                                                   // bounds [chunk, vocab] logits
        for (int s = 0; s < ids.Length - 1; s += chunk)
        {
            using var inner = NewDisposeScope();
            int len = Math.Min(chunk, ids.Length - 1 - s);
            var lp = nn.functional.log_softmax(lm.LmHead(hidden.narrow(0, s, len)).to(ScalarType.Float32), -1);
            lp.gather(1, t.narrow(0, s + 1, len).unsqueeze(1)).squeeze(1).cpu().data<float>().CopyTo(result, s);
        }
        return result;
    }

    private static IReadOnlyList<(int, int)> Quarters(int n)
    {
        int q = Math.Max(1, (n + 3) / 4);
        var r = new List<(int, int)>();
        for (int s = 0; s < n; s += q) r.Add((s, Math.Min(n, s + q)));
        return r;
    }

    /// <summary>
    /// The HiCI segments [start, end) of a T-token forward, or null when HiCI does not run (full attention, or
    /// the inference forward with one segment). Throws the training forward's divisibility error.
    /// </summary>
    public static IReadOnlyList<(int Start, int End)>? Segments(AttentionSetting attention, int t)
    {
        if (attention.Options is not HiciAttentionOptions { Run: true } options) return null;
        var hc = options.Config;
        var seg = new HiciSegmenter(hc);
        int s = hc.Forward == HiciForwardKind.Train ? seg.TrainingSegmentSize(t) : seg.InferenceSegmentSize(t);
        int n = (t + s - 1) / s;
        if (hc.Forward == HiciForwardKind.Inference && n == 1 && !hc.InferenceSingleSegment) return null;
        return Enumerable.Range(0, n).Select(g => (g * s, Math.Min(t, (g + 1) * s))).ToList();
    }

    /// <summary>The default position: the middle of the last segment (so both a leak across segments and one
    /// inside the perturbed segment can show), else the middle of the sequence.</summary>
    public static int DefaultPosition(IReadOnlyList<(int Start, int End)>? segments, int t)
    {
        if (segments is null || segments.Count == 0) return t / 2;
        var (s, e) = segments[^1];
        return Math.Max(1, s + (e - s) / 2);
    }
}
