using Hici.Models;

namespace Hici.Cli.Demo;

/// <summary>
/// Perplexity of a model on the same held-out tokens at several window lengths: the tokens are cut into
/// consecutive windows of L, each window is one forward (HiCI segments it whole), every position after a
/// window's first token is scored, and the perplexity is exp(mean NLL) over all of them.
/// </summary>
public static class LengthPerplexity
{
    public static double[] Measure(CausalLM lm, long[] tokens, IReadOnlyList<int> lengths, Action<int, int>? progress = null)
    {
        var ppl = new double[lengths.Count];
        int totalWindows = lengths.Sum(l => tokens.Length / l), done = 0;
        for (int i = 0; i < lengths.Count; i++)
        {
            int l = lengths[i];
            int windows = tokens.Length / l;
            if (windows == 0) throw new HiciException($"{tokens.Length} held-out tokens do not fill one window of {l}");
            double nll = 0;
            long n = 0;
            for (int w = 0; w < windows; w++)
            {
                var r = Scorer.Score(lm, new ArraySegment<long>(tokens, w * l, l), wholeSequence: true);
                nll += r.TotalNll;
                n += r.Scored;
                progress?.Invoke(++done, totalWindows);
            }
            ppl[i] = Math.Exp(nll / n);
        }
        return ppl;
    }
}
