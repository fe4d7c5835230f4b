using System.Diagnostics;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Profiling;

/// <summary>
/// How one run is measured, after the reference's profile_efficiency.py → run_single_profile: uniform random
/// ids (batch 1), <see cref="Warmup"/> untimed passes, the peak restarted, then <see cref="Repeats"/> timed
/// passes. <see cref="Train"/>: a pass is forward + backward of the next-token loss (labels = inputs) with
/// every parameter receiving a gradient and no optimizer step, as the reference; otherwise a prefill forward
/// (no gradients, last-position logits).
/// </summary>
public sealed record ProfileSettings(int Warmup = 2, int Repeats = 3, bool Train = false, long Seed = 0);

/// <summary>One (method, length) measurement. Error: why it did not run (as the reference records OOM etc.).</summary>
public sealed record ProfileRow(string Method, int Tokens, IReadOnlyList<double> Seconds, long? BaselineRssBytes, long? PeakRssBytes, string? Error)
{
    public double? MeanSeconds => Seconds.Count == 0 ? null : Seconds.Average();
    /// <summary>batch·tokens / mean time.</summary>
    public double? TokensPerSecond => MeanSeconds is { } s && s > 0 ? Tokens / s : null;
    /// <summary>Peak RSS during the timed passes above the RSS before them (model weights, caches of earlier runs excluded).</summary>
    public long? PeakOverBaselineBytes => PeakRssBytes is { } p && BaselineRssBytes is { } b ? Math.Max(0, p - b) : null;
}

public static class Profiler
{
    /// <summary>Measures <paramref name="lm"/> on <paramref name="tokens"/> random ids; failures become the row's Error.</summary>
    /// <param name="prefill">the forward pass when it is not <c>lm.Forward</c> (ids [1, T] → last-position logits),
    /// e.g. streaming HiCI; such a method has no train pass</param>
    public static ProfileRow Run(CausalLM lm, string method, int tokens, ProfileSettings s, Func<CausalLM, Tensor, Tensor>? prefill = null)
    {
        var seconds = new List<double>();
        long? baseline = null, peak = null;
        try
        {
            using var gen = new Generator();
            gen.manual_seed(s.Seed + tokens);
            using var ids = torch.randint(0, lm.Config.VocabSize, new long[] { 1, tokens }, generator: gen);
            if (s.Train && prefill is not null) throw new HiciException($"{method}: forward pass only (no --pass train)");
            if (s.Train) foreach (var p in lm.parameters()) p.requires_grad_(true);
            for (int i = 0; i < s.Warmup; i++) Pass(lm, ids, s.Train, prefill);
            bool peakKnown = ProcessMemory.ResetPeak();
            baseline = ProcessMemory.Rss();
            for (int i = 0; i < s.Repeats; i++)
            {
                var sw = Stopwatch.StartNew();
                Pass(lm, ids, s.Train, prefill);
                seconds.Add(sw.Elapsed.TotalSeconds);
            }
            peak = peakKnown ? ProcessMemory.PeakRss() : null;
            return new ProfileRow(method, tokens, seconds, baseline, peak, null);
        }
        catch (Exception e) when (e is System.Runtime.InteropServices.ExternalException or OutOfMemoryException or HiciException)
        {
            return new ProfileRow(method, tokens, seconds, baseline, peak, e.Message.Split('\n')[0].Trim());
        }
        finally
        {
            if (s.Train) lm.zero_grad();
        }
    }

    private static void Pass(CausalLM lm, Tensor ids, bool train, Func<CausalLM, Tensor, Tensor>? prefill)
    {
        using var scope = torch.NewDisposeScope();
        if (!train)
        {
            using var noGrad = torch.no_grad();
            var last = prefill is null ? lm.Forward(ids, null, lastOnly: true) : prefill(lm, ids);
            _ = last.sum().item<float>();   // item(): wait for the result
            return;
        }
        using var grad = torch.enable_grad();
        var logits = lm.Forward(ids);
        long t = ids.shape[1];
        var loss = nn.functional.cross_entropy(logits[0].narrow(0, 0, t - 1).to(ScalarType.Float32), ids[0].narrow(0, 1, t - 1));
        loss.backward();
        _ = loss.item<float>();
    }

    /// <summary>
    /// What a run at <paramref name="next"/> tokens will probably need, from the last two rows of the same
    /// method (power law through them; one row: quadratic growth, the worst attention can do).
    /// </summary>
    public static (double? Seconds, double? Bytes) Predict(IReadOnlyList<ProfileRow> done, int next)
    {
        var ok = done.Where(r => r.Error is null && r.MeanSeconds is not null).OrderBy(r => r.Tokens).ToList();
        if (ok.Count == 0) return (null, null);
        var last = ok[^1];
        var prev = ok.Count > 1 ? ok[^2] : null;
        double ratio = (double)next / last.Tokens;
        double Exponent(double? a, double? b) =>
            prev is null || a is not { } x || b is not { } y || x <= 0 || y <= 0 ? 2.0
                : Math.Clamp(Math.Log(y / x) / Math.Log((double)last.Tokens / prev.Tokens), 1.0, 2.0);
        double seconds = last.MeanSeconds!.Value * Math.Pow(ratio, Exponent(prev?.MeanSeconds, last.MeanSeconds));
        double? bytes = last.PeakOverBaselineBytes is { } m
            ? m * Math.Pow(ratio, Exponent(prev?.PeakOverBaselineBytes, m)) : null;
        return (seconds, bytes);
    }
}
