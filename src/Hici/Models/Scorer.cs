using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Models;

/// <param name="LogProbs">log p(ids[i+1] | ids[0..i]) for i = 0 .. n−2, natural log</param>
/// <param name="TotalNll">−Σ LogProbs</param>
public sealed record ScoreResult(float[] LogProbs, double TotalNll, TimeSpan Elapsed)
{
    public int Scored => LogProbs.Length;
    public double MeanNll => TotalNll / Scored;
    public double Perplexity => Math.Exp(MeanNll);
    public double TokensPerSecond => (Scored + 1) / Math.Max(Elapsed.TotalSeconds, 1e-9);
}

/// <summary>Teacher-forced log-likelihood of a token sequence.</summary>
public static class Scorer
{
    /// <summary>
    /// Scores <paramref name="ids"/> in chunks through the KV cache, so memory holds [chunk, vocab] logits
    /// rather than [n, vocab] (128k vocab × 32k tokens would be 16 GB of float32).
    /// With <paramref name="wholeSequence"/> the model runs once over all ids without a cache (HiCI attention
    /// segments the whole sequence; a cached chunk would see no memory) and only the lm_head is chunked.
    /// </summary>
    /// <param name="progress">called after each chunk with (positions scored, positions to score)</param>
    public static ScoreResult Score(ICausalLM lm, IReadOnlyList<long> ids, int chunk = 512, bool wholeSequence = false, Action<int, int>? progress = null)
    {
        if (ids.Count < 2) throw new HiciException($"scoring needs at least 2 tokens (got {ids.Count})");
        if (chunk <= 0) throw new ArgumentOutOfRangeException(nameof(chunk));
        int n = ids.Count;
        var logProbs = new float[n - 1];
        var sw = Stopwatch.StartNew();
        using var noGrad = torch.no_grad();
        using var all = torch.tensor(ids.ToArray(), dtype: ScalarType.Int64, device: lm.Device);
        if (wholeSequence)
        {
            using var hidden = lm.Hidden(all);                                       // [1, n, hidden]
            for (int start = 0; start < n - 1; start += chunk)
            {
                using var scope = torch.NewDisposeScope();
                int targets = Math.Min(chunk, n - 1 - start);
                var logits = lm.LmHead(hidden[0].narrow(0, start, targets));
                Pick(logits, all, start, targets, logProbs);
                progress?.Invoke(start + targets, n - 1);
            }
        }
        else
        {
            using var cache = lm.NewState(n);
            cache.RopeLength = n;   // chunked scoring = one full forward, also for dynamic NTK
            for (int start = 0; start < n - 1; start += chunk)
            {
                using var scope = torch.NewDisposeScope();
                int len = Math.Min(chunk, n - start);
                int targets = Math.Min(len, n - 1 - start);          // the very last token predicts nothing
                var logits = lm.Forward(all.narrow(0, start, len), cache)[0].narrow(0, 0, targets);
                Pick(logits, all, start, targets, logProbs);
                progress?.Invoke(start + targets, n - 1);
            }
        }
        double nll = -logProbs.Sum(x => (double)x);
        return new ScoreResult(logProbs, nll, sw.Elapsed);
    }

    /// <summary>log p(ids[start+1+i]) from logits [targets, vocab] into logProbs[start + i].</summary>
    private static void Pick(Tensor logits, Tensor all, int start, int targets, float[] logProbs)
    {
        var lp = nn.functional.log_softmax(logits.to(ScalarType.Float32), -1);
        var next = all.narrow(0, start + 1, targets).unsqueeze(1);
        var picked = lp.gather(1, next).squeeze(1).cpu();
        picked.data<float>().CopyTo(logProbs, start);
    }
}
