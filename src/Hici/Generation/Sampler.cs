using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Generation;

/// <summary>
/// Picks the next token from last-position logits with HF's warper order: temperature, then top-k,
/// then top-p (the smallest set whose probability reaches top_p, always keeping the best token).
/// </summary>
public sealed class Sampler : IDisposable
{
    readonly SamplingOptions _o;
    readonly Generator? _gen;

    public Sampler(SamplingOptions options)
    {
        options.Validate();
        _o = options;
        if (!options.Greedy)
        {
            _gen = new Generator();
            if (options.Seed is long s) _gen.manual_seed(s); else _gen.seed();
        }
    }

    /// <summary>Returns the chosen token id for a 1-D logits vector [V].</summary>
    public long Next(Tensor logits)
    {
        using var scope = NewDisposeScope();
        if (logits.dim() != 1) throw new ArgumentException("logits must be 1-D [vocab]");
        if (_o.Greedy) return logits.argmax().item<long>();
        var scores = Warp(logits.to(ScalarType.Float32));
        var probs = scores.softmax(-1);
        return multinomial(probs, 1, false, _gen).item<long>();
    }

    /// <summary>The warped scores (masked tokens at −inf). Public for tests.</summary>
    public Tensor Warp(Tensor logits)
    {
        var s = logits / _o.Temperature;
        long v = s.shape[0];
        if (_o.TopK > 0 && _o.TopK < v)
        {
            var kth = s.topk(_o.TopK).values[-1];
            s = s.masked_fill(s < kth, double.NegativeInfinity);
        }
        if (_o.TopP < 1.0)
        {
            var (sorted, idx) = s.sort(descending: false);
            var cum = sorted.softmax(-1).cumsum(-1);
            var remove = cum <= (1.0 - _o.TopP);
            remove[-1] = tensor(false);            // keep at least the most likely token
            var mask = zeros_like(remove).scatter(0, idx, remove);
            s = s.masked_fill(mask, double.NegativeInfinity);
        }
        return s;
    }

    public void Dispose() => _gen?.Dispose();
}
