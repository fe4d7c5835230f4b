using Hici.Hierarchical;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Evaluation;

/// <param name="Global">share of attention mass on the global memory G (mean over segments, heads, queries)</param>
/// <param name="MemoryPerSegment">G + L share per segment (segment 0 first)</param>
public sealed record AttentionLayerStats(int Layer, double Global, double Local, double Tokens, double[] GlobalPerSegment, double[] LocalPerSegment, double[] MemoryPerSegment);

public sealed record AttentionStatsResult(int Tokens, int Segments, IReadOnlyList<AttentionLayerStats> Layers);

/// <summary>
/// Where HiCI attention puts its mass, per layer: the share of the softmax over [G; L; tokens] that lands on
/// the global memory G, on the local slots L_i and on the segment's tokens, averaged over heads and query
/// positions (the statistics the reference's attention visualisations plot). One forward over the ids.
/// </summary>
public static class AttentionStats
{
    public static AttentionStatsResult Compute(CausalLM lm, IReadOnlyList<long> ids)
    {
        var hici = lm.model.layers.Select(l => l.self_attn as HiciAttention).ToList();
        if (hici.Any(a => a is null || !a.RunHici))
            throw new HiciException("attention statistics need HiCI attention running in every layer (--attention hici)");
        var masses = new HiciAttentionMass?[hici.Count];
        try
        {
            for (int i = 0; i < hici.Count; i++)
            {
                int layer = i;
                hici[i]!.Core.MassObserver = m => masses[layer] = m;
            }
            using var noGrad = torch.no_grad();
            using var scope = torch.NewDisposeScope();
            using var x = torch.tensor(ids.ToArray(), dtype: ScalarType.Int64, device: lm.Device);
            lm.Hidden(x);
        }
        finally
        {
            foreach (var a in hici) a!.Core.MassObserver = null;
        }
        if (masses.Any(m => m is null))
            throw new HiciException($"{ids.Count} tokens make one segment: HiCI adds no memory, so there is no memory attention to measure (use a longer input)");
        var layers = masses.Select((m, i) =>
        {
            var mem = m!.Global.Zip(m.Local, (g, l) => g + l).ToArray();
            return new AttentionLayerStats(i, m.Global.Average(), m.Local.Average(), m.Tokens.Average(), m.Global, m.Local, mem);
        }).ToList();
        return new AttentionStatsResult(ids.Count, masses[0]!.Tokens.Length, layers);
    }
}
