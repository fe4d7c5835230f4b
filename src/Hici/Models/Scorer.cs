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
    /// </summary>
    public static ScoreResult Score(CausalLM lm, IReadOnlyList<long> ids, int chunk = 512)
    {
        if (ids.Count < 2) throw new HiciException($"scoring needs at least 2 tokens (got {ids.Count})");
        if (chunk <= 0) throw new ArgumentOutOfRangeException(nameof(chunk));
        int n = ids.Count;
        var logProbs = new float[n - 1];
        var sw = Stopwatch.StartNew();
        using var noGrad = torch.no_grad();
        using var cache = lm.NewCache(n);
        cache.RopeLength = n;   // chunked scoring = one full forward, also for dynamic NTK
        using var all = torch.tensor(ids.ToArray(), dtype: ScalarType.Int64, device: lm.Device);
        for (int start = 0; start < n - 1; start += chunk)
        {
            using var scope = torch.NewDisposeScope();
            int len = Math.Min(chunk, n - start);
            int targets = Math.Min(len, n - 1 - start);          // the very last token predicts nothing
            var logits = lm.Forward(all.narrow(0, start, len), cache)[0].narrow(0, 0, targets);
            var lp = nn.functional.log_softmax(logits.to(ScalarType.Float32), -1);
            var next = all.narrow(0, start + 1, targets).unsqueeze(1);
            var picked = lp.gather(1, next).squeeze(1).cpu();
            picked.data<float>().CopyTo(logProbs, start);
        }
        double nll = -logProbs.Sum(x => (double)x);
        return new ScoreResult(logProbs, nll, sw.Elapsed);
    }
}
