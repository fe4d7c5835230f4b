namespace Hici.Evaluation;

/// <param name="ContextSize">the training context; lengths up to it use ceil(context/orig) linear RoPE scaling,
/// longer ones ceil(max_tokens/orig) (the reference's two-stage interpolation); ≤ 0: no scaling edit</param>
public sealed record PasskeyOptions
{
    public int ContextSize { get; init; } = -1;
    public int MaxTokens { get; init; } = 32000;
    public int Interval { get; init; } = 1000;
    public int NumTests { get; init; } = 10;
}

/// <summary>The RoPE setting one passkey length runs with.</summary>
/// <param name="LinearFactor">linear scaling factor to set, or null to keep the model's config</param>
public sealed record PasskeyRope(double? LinearFactor);

public sealed record PasskeyTrialResult(int Target, int Seed, int PassKey, double Depth, int PromptTokens, bool Correct, long[] Answer, long[] Generated);

/// <param name="AvgTokens">mean prompt tokens over the trials, floored (the reference's result key)</param>
public sealed record PasskeyLengthResult(int Target, int AvgTokens, double Accuracy, bool Extrapolation);

public sealed record PasskeyResult(PasskeyOptions Options, IReadOnlyList<PasskeyLengthResult> Lengths, IReadOnlyList<PasskeyTrialResult> Trials)
{
    public double MeanAccuracy => Lengths.Count == 0 ? 0 : Lengths.Average(l => l.Accuracy);

    /// <summary>Accuracy per (depth bin, length): rows = <paramref name="depthBins"/> equal bins of the pass-key
    /// depth (prefix share of the filler, 0 = top), columns = lengths; NaN where no trial fell in a bin.</summary>
    public double[,] DepthLengthGrid(int depthBins = 10)
    {
        var grid = new double[depthBins, Lengths.Count];
        for (int c = 0; c < Lengths.Count; c++)
            for (int r = 0; r < depthBins; r++)
            {
                var cell = Trials.Where(t => t.Target == Lengths[c].Target && Math.Min((int)(t.Depth * depthBins), depthBins - 1) == r).ToList();
                grid[r, c] = cell.Count == 0 ? double.NaN : cell.Count(t => t.Correct) / (double)cell.Count;
            }
        return grid;
    }
}

/// <summary>
/// Passkey retrieval as LongLoRA's <c>passkey_retrieval.py</c> runs it: for each length, <c>num_tests</c> prompts
/// (seeds 0..n−1, <see cref="PasskeyPrompts"/>), tokenized with BOS; the answer ids are <c>str(pass_key)</c>
/// tokenized with its first token (BOS) dropped; greedy decoding of exactly that many tokens; a trial passes
/// when the generated ids equal the answer ids.
/// </summary>
public static class Passkey
{
    /// <summary>The RoPE setting per length (<c>passkey_retrieval.py → update_rope_scaling</c>); the reference
    /// hard-codes Llama-2's 4096 as the original context, here it is the model's max_position_embeddings.</summary>
    public static PasskeyRope RopeFor(int target, PasskeyOptions o, int origContext, bool configHasScaling)
    {
        if (configHasScaling || o.ContextSize <= origContext) return new PasskeyRope(null);
        int limit = target <= o.ContextSize ? o.ContextSize : o.MaxTokens;
        return new PasskeyRope(Math.Ceiling(limit / (double)origContext));
    }

    /// <param name="modelFor">the model to run a length with; called again only when the RoPE setting changes
    /// (the previous one is disposed if it is IDisposable)</param>
    /// <param name="log">partial results (resume after an interruption); null = none</param>
    /// <param name="progress">(trials done, trials in total)</param>
    public static PasskeyResult Run(PasskeyOptions o, Func<int, PasskeyRope> ropeFor, Func<PasskeyRope, IEvalModel> modelFor,
        ResumeLog<PasskeyTrialResult>? log = null, Action<int, int>? progress = null)
    {
        var targets = PasskeyPrompts.Targets(o.MaxTokens, o.Interval).ToList();
        if (o.NumTests <= 0) throw new HiciException($"--num-tests must be positive (got {o.NumTests})");
        int total = targets.Count * o.NumTests, done = 0;
        var trials = new List<PasskeyTrialResult>();
        var lengths = new List<PasskeyLengthResult>();
        PasskeyRope? current = null;
        IEvalModel? model = null;
        try
        {
            foreach (int target in targets)
            {
                var perLength = new List<PasskeyTrialResult>();
                for (int seed = 0; seed < o.NumTests; seed++)
                {
                    string key = $"{target}/{seed}";
                    if (log is null || !log.TryGet(key, out var r))
                    {
                        var rope = ropeFor(target);
                        if (model is null || rope != current)
                        {
                            (model as IDisposable)?.Dispose();
                            model = modelFor(rope);
                            current = rope;
                        }
                        r = RunTrial(model, PasskeyPrompts.Build(target, seed));
                        log?.Add(key, r);
                    }
                    perLength.Add(r);
                    progress?.Invoke(++done, total);
                }
                trials.AddRange(perLength);
                int avg = (int)(perLength.Sum(t => (long)t.PromptTokens) / o.NumTests);
                lengths.Add(new PasskeyLengthResult(target, avg, perLength.Count(t => t.Correct) / (double)o.NumTests,
                    o.ContextSize > 0 && target > o.ContextSize));
            }
        }
        finally
        {
            (model as IDisposable)?.Dispose();
            log?.Flush();
        }
        return new PasskeyResult(o, lengths, trials);
    }

    public static PasskeyTrialResult RunTrial(IEvalModel m, PasskeyTrial t)
    {
        var prompt = m.Encode(t.Prompt, addSpecialTokens: true).Select(i => (long)i).ToArray();
        var answer = m.Encode(t.PassKey.ToString(System.Globalization.CultureInfo.InvariantCulture), addSpecialTokens: true)
            .Skip(1).Select(i => (long)i).ToArray();                            // [1:]: drop the BOS
        if (answer.Length == 0) throw new HiciException($"passkey {t.PassKey}: encodes to no answer tokens");
        foreach (var id in prompt)
            if (id >= m.VocabSize) throw new HiciException($"passkey prompt: token id {id} is outside the model's vocabulary [0, {m.VocabSize})");
        // generate() stops at the config's EOS; the reference compares the last len(answer) ids of prompt + output,
        // so an early EOS (or the prompt's own tail) fails the trial as it does there
        var gen = m.Greedy(prompt, answer.Length, m.EosIds.ToArray());
        var whole = prompt.Concat(gen).ToArray();
        bool ok = whole.AsSpan(whole.Length - answer.Length).SequenceEqual(answer);
        double depth = t.NPrefix / (double)PasskeyPrompts.GarbageChars(t.Target);
        return new PasskeyTrialResult(t.Target, t.Seed, t.PassKey, depth, prompt.Length, ok, answer, gen);
    }
}
