using System.Diagnostics;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Generation;

/// <param name="MaxNewTokens">upper bound on generated tokens (the cache is sized prompt + this)</param>
/// <param name="EosTokenIds">stop after emitting one of these (kept in Tokens, not in Text); default: none</param>
/// <param name="StopStrings">stop when the decoded text contains one; the text is cut before it (needs Decode)</param>
/// <param name="Decode">ids → text (no clean-up of tokenization spaces, so a longer window's text extends a
/// shorter one's); called on a short window of recent ids so multi-byte characters and word-start markers
/// decode correctly; null = no text, stop strings unavailable</param>
public sealed record GenerationOptions
{
    public int MaxNewTokens { get; init; } = 128;
    public SamplingOptions Sampling { get; init; } = new();
    public IReadOnlyCollection<long> EosTokenIds { get; init; } = Array.Empty<long>();
    public IReadOnlyList<string> StopStrings { get; init; } = Array.Empty<string>();
    public Func<IReadOnlyList<long>, string>? Decode { get; init; }
}

/// <summary>
/// One generated token, as the streaming callback sees it. After the last token, text that was held back
/// (a possible stop-string start that never completed) arrives in a final step with TokenId −1.
/// </summary>
/// <param name="TextDelta">newly printable text ("" while a character or a possible stop string is incomplete)</param>
/// <param name="LogProb">log-probability of the token under the unwarped model distribution</param>
public sealed record GenerationStep(int Index, long TokenId, float LogProb, string TextDelta);

public enum StopReason { MaxTokens, Eos, StopString }

public sealed record GenerationResult(long[] Tokens, string? Text, StopReason Reason, TimeSpan Prefill, TimeSpan Decode)
{
    /// <summary>Decode speed, excluding the prompt (the first token comes from the prefill).</summary>
    public double TokensPerSecond => Tokens.Length > 1 ? (Tokens.Length - 1) / Math.Max(Decode.TotalSeconds, 1e-9) : 0;
}

/// <summary>
/// Prompt → tokens: one prefill through a preallocated KV cache, then one single-token forward per step.
/// Each step's tensors live in their own dispose scope, so memory stays flat however long it runs.
/// </summary>
public sealed class GenerationPipeline(ICausalLM lm)
{
    public GenerationResult Generate(IReadOnlyList<long> prompt, GenerationOptions o, Action<GenerationStep>? onStep = null)
    {
        if (prompt.Count == 0) throw new HiciException("generation needs a non-empty prompt");
        if (o.MaxNewTokens <= 0) throw new HiciException($"max new tokens must be positive (got {o.MaxNewTokens})");
        if ((long)prompt.Count + o.MaxNewTokens > int.MaxValue)
            throw new HiciException($"prompt ({prompt.Count} tokens) + max new tokens ({o.MaxNewTokens}) exceeds {int.MaxValue} cache positions");
        if (o.StopStrings.Count > 0 && o.Decode is null) throw new HiciException("stop strings need a tokenizer to decode the output");
        foreach (var id in prompt)
            if (id < 0 || id >= lm.VocabSize) throw new HiciException($"prompt token id {id} is outside the vocabulary [0, {lm.VocabSize})");

        using var noGrad = torch.no_grad();
        using var sampler = new Sampler(o.Sampling);
        using var cache = lm.NewState(prompt.Count + o.MaxNewTokens);
        var stops = new StopStringMatcher(o.StopStrings);
        var tokens = new List<long>();
        var text = new System.Text.StringBuilder();
        var stream = o.Decode is null ? null : new Hici.Text.TokenStreamDecoder(ids => o.Decode(ids.Select(i => (long)i).ToArray()));
        var reason = StopReason.MaxTokens;

        var sw = Stopwatch.StartNew();
        Tensor logits;
        using (var ids = torch.tensor(prompt.ToArray(), dtype: ScalarType.Int64))
            logits = lm.Forward(ids, cache, lastOnly: true);
        var prefill = sw.Elapsed;
        sw.Restart();
        try
        {
            for (int i = 0; i < o.MaxNewTokens; i++)
            {
                long next;
                float logProb;
                using (var scope = torch.NewDisposeScope())
                {
                    var last = logits[0, 0];
                    next = sampler.Next(last);
                    logProb = nn.functional.log_softmax(last.to(ScalarType.Float32), 0)[next].item<float>();
                }
                logits.Dispose();
                tokens.Add(next);

                bool eos = o.EosTokenIds.Contains(next);
                string delta = "";
                if (stream is not null && !eos)
                {
                    // A window of recent ids is decoded (HF DecodeStream), so a step costs O(1) in the output
                    // length; null means a multi-byte character is not complete yet.
                    if (stream.Step(checked((int)next)) is { } piece) delta = stops.Push(piece);
                    text.Append(delta);
                }
                onStep?.Invoke(new GenerationStep(i, next, logProb, delta));

                if (eos) { reason = StopReason.Eos; break; }
                if (stops.Stopped) { reason = StopReason.StopString; break; }
                if (i == o.MaxNewTokens - 1) break;
                using var step = torch.tensor(new[] { next }, dtype: ScalarType.Int64);
                logits = lm.Forward(step, cache, lastOnly: true);
            }
        }
        finally
        {
            if (!logits.IsInvalid) logits.Dispose();
        }
        if (stream is not null && reason != StopReason.StopString)
        {
            var tail = stops.Push(stream.Flush()) + stops.Flush();
            text.Append(tail);
            if (tail.Length > 0) onStep?.Invoke(new GenerationStep(tokens.Count, -1, float.NaN, tail));
        }
        return new GenerationResult(tokens.ToArray(), o.Decode is null ? null : text.ToString(), reason, prefill, sw.Elapsed);
    }
}
