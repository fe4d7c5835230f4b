using System.Diagnostics;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Hierarchical;

/// <summary>
/// Scores a token stream of any length segment by segment with HiCI in a causal shift mode (causal_shift,
/// causal_shift_g). There a segment's tokens see only their own segment (causal) and memory built from the
/// earlier segments, so each layer carries just <see cref="HiciStreamState"/> (G, L, running statistics) to the
/// next segment: memory and time per segment do not grow with the stream. Equal to the one-shot forward with
/// the same segment length (<see cref="Scorer.Score"/> with wholeSequence) wherever both fit.
/// </summary>
public static class HiciStreamScorer
{
    /// <summary>
    /// The segment length a stream of <paramref name="length"/> tokens is cut into: <c>segment_size</c>, else
    /// int(T·ratio) (the inference rule, clipped to T; the last segment may be shorter).
    /// </summary>
    public static int SegmentLength(HiciConfig cfg, int length) => new HiciSegmenter(cfg).InferenceSegmentSize(length);

    /// <summary>The HiCI config of a model that can be streamed; throws a clear error otherwise.</summary>
    /// <param name="loadedToRun">false: a loaded model whose layers were switched on after loading (hici profile); the layers are checked instead</param>
    public static HiciConfig StreamableConfig(ModelConfig? cfg, bool loadedToRun = true)
    {
        var o = cfg is null ? null : HiciAttentionOptions.Of(cfg);
        if (o is null || (loadedToRun && !o.Run) || cfg!.Attention.Name != HiciImplementation.Id)
            throw new HiciException("--stream needs --attention hici");
        var mode = o.Config.CausalMode;
        if (mode is not (HiciCausalMode.CausalShift or HiciCausalMode.CausalShiftG))
            throw new HiciException($"--stream needs --causal-mode causal_shift or causal_shift_g (got {HiciConfig.CausalModeName(mode)}): " +
                                    "in the other modes a segment's memory depends on its own tokens");
        return o.Config;
    }

    /// <summary>One line on how a stream of <paramref name="tokens"/> tokens is cut; throws what <see cref="StreamableConfig"/> throws.</summary>
    public static string Describe(ModelConfig? cfg, int tokens)
    {
        var c = StreamableConfig(cfg);
        int s = SegmentLength(c, tokens);
        int n = (tokens + s - 1) / s;
        return $"hici {HiciConfig.CausalModeName(c.CausalMode)}, streamed: {n} segment{(n == 1 ? "" : "s")} of {s} tokens" +
               (n * s != tokens ? $" (the last one {tokens - (n - 1) * s})" : "") + ", one at a time " +
               $"(M={c.LocalSlots} K={c.GlobalSlots} h={c.NumHeads} β={c.BottleneckDim} C={c.SharedCompressDim})";
    }

    /// <param name="segment">segment length (null: <see cref="SegmentLength"/> of the whole stream)</param>
    /// <param name="progress">called after each segment with (positions scored, positions to score)</param>
    public static ScoreResult Score(CausalLM lm, IReadOnlyList<long> ids, int? segment = null, int lmHeadChunk = 512,
        Action<int, int>? progress = null)
    {
        if (ids.Count < 2) throw new HiciException($"scoring needs at least 2 tokens (got {ids.Count})");
        int n = ids.Count;
        var logProbs = new float[n - 1];
        var sw = Stopwatch.StartNew();
        Stream(lm, ids, segment, n - 1, (h, all, start, len) =>
        {
            int targets = Math.Min(len, n - 1 - start);
            for (int c = 0; c < targets; c += lmHeadChunk)
            {
                using var inner = NewDisposeScope();
                int rows = Math.Min(lmHeadChunk, targets - c);
                var lp = lm.LmHead(h.narrow(0, c, rows)).to(ScalarType.Float32).log_softmax(-1);
                var next = all.narrow(0, start + c + 1, rows).unsqueeze(1);
                lp.gather(1, next).squeeze(1).cpu().data<float>().CopyTo(logProbs, start + c);
            }
            progress?.Invoke(start + targets, n - 1);
        });
        double nll = -logProbs.Sum(x => (double)x);
        return new ScoreResult(logProbs, nll, sw.Elapsed);
    }

    /// <summary>
    /// A streamed prefill: the same segment loop with only the last position's logits [1, V] (float32), as a
    /// prefill that returns last-position logits (what <c>hici profile</c> times).
    /// </summary>
    public static Tensor LastLogits(CausalLM lm, IReadOnlyList<long> ids, int? segment = null)
    {
        if (ids.Count < 1) throw new HiciException("a streamed prefill needs at least 1 token");
        Tensor? last = null;
        Stream(lm, ids, segment, ids.Count, (h, _, start, len) =>
        {
            if (start + len == ids.Count) last = lm.LmHead(h.narrow(0, len - 1, 1)).to(ScalarType.Float32).DetachFromDisposeScope();
        });
        return last!;
    }

    /// <summary>
    /// Runs the model segment by segment over positions [0, <paramref name="upTo"/>), handing each segment's
    /// final-normed hidden states [len, H] (with all ids and the segment's start and length) to
    /// <paramref name="onSegment"/>, inside the segment's dispose scope.
    /// </summary>
    private static void Stream(CausalLM lm, IReadOnlyList<long> ids, int? segment, int upTo, Action<Tensor, Tensor, int, int> onSegment)
    {
        var hc = StreamableConfig(lm.Config, loadedToRun: false);
        if (lm.model.layers.Any(l => l.self_attn is not HiciAttention { RunHici: true }))
            throw new HiciException("streaming: every layer must run HiCI attention");
        int n = ids.Count;
        int s = segment ?? SegmentLength(hc, n);
        if (s <= 0) throw new HiciException($"segment length must be positive (got {s})");
        using var noGrad = no_grad();
        using var all = tensor(ids.ToArray(), dtype: ScalarType.Int64, device: lm.Device);
        using var rotary = new RotaryEmbedding(lm.Config, lm.Device);
        var layers = lm.model.layers.ToArray();
        var states = layers.Select(_ => new HiciStreamState()).ToArray();
        try
        {
            for (int start = 0; start < upTo; start += s)
            {
                using var scope = NewDisposeScope();
                int len = Math.Min(s, n - start);
                var h = lm.model.embed_tokens.call(all.narrow(0, start, len).unsqueeze(0));   // [1, len, H]
                // one-shot positions and, for dynamic NTK, the scaling of the whole stream
                var rope = rotary.Tables(start, len, h.dtype, n);
                for (int i = 0; i < layers.Length; i++) h = Layer(layers[i], h, rope, states[i]);
                h = lm.model.norm.call(h)[0];
                onSegment(h, all, start, len);
            }
        }
        finally
        {
            foreach (var st in states) st.Dispose();
        }
    }

    /// <summary>One decoder layer (<see cref="DecoderLayer"/>'s pre-norm residual block) on one segment.</summary>
    private static Tensor Layer(DecoderLayer layer, Tensor h, RopeTables rope, HiciStreamState state)
    {
        using var scope = NewDisposeScope();
        var attn = (HiciAttention)layer.self_attn;
        var x = layer.input_layernorm.call(h);
        var q = attn.ProjectQuery(x, rope);
        var (k, v) = attn.ProjectKeyValue(x, rope);
        var o = attn.Core.StreamSegment(x, q, k, v, m => attn.k_proj.call(m), m => attn.v_proj.call(m), state);
        h = h + attn.o_proj.call(o);
        h = h + layer.mlp.call(layer.post_attention_layernorm.call(h));
        return h.MoveToOuterDisposeScope();
    }
}
