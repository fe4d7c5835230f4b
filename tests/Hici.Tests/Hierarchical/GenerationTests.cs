using Hici.Generation;
using Hici.Hierarchical;
using Hici.Loading;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Hierarchical;

/// <summary>
/// Greedy generation with HiCI through the KV cache equals a cache-free recompute loop under the reference's
/// generation semantics (modeling_qwen3_hici / modeling_llama_hici: the prefill runs HiCI over the prompt's
/// segments; a decode step attends to the cached token K/V with no memory slots). The recompute runs every step
/// from the ids alone: prompt positions through the HiCI core over the prompt, generated positions through
/// plain causal attention over all tokens — no cache, no state carried between steps.
/// </summary>
public class GenerationTests
{
    private const double Tol = 1e-4;
    private const int NewTokens = 6;

    private static string Folder(string model) => Path.GetDirectoryName(Fixture.PathOf($"model-{model}/config.json"))!;

    private static LoadedModel Load(string model, HiciConfig hc) =>
        ModelLoader.Load(new ModelLoadRequest(Folder(model)) { Attention = HiciAttentionOptions.Setting(hc) });

    /// <summary>Log-probs [vocab] of the next token after <paramref name="ids"/> (prompt = the first <paramref name="p"/>).</summary>
    private static Tensor Recompute(CausalLM lm, long[] ids, int p)
    {
        using var scope = NewDisposeScope();
        var cfg = lm.Config;
        int t = ids.Length, g = t - p;
        using var rotary = new RotaryEmbedding(cfg, CPU);
        var rope = rotary.Tables(0, t, lm.DType);
        var h = lm.model.embed_tokens.call(tensor(ids, dtype: ScalarType.Int64).unsqueeze(0));
        foreach (var layer in lm.model.layers)
        {
            var attn = (HiciAttention)layer.self_attn;
            var a = layer.input_layernorm.call(h);
            var q = attn.ProjectQuery(a, rope);
            var (k, v) = attn.ProjectKeyValue(a, rope);
            var prompt = attn.Core.Forward(attn.Hici.Forward, a.narrow(1, 0, p), null, q.narrow(2, 0, p), k.narrow(2, 0, p), v.narrow(2, 0, p),
                s => attn.k_proj.call(s), s => attn.v_proj.call(s), attn.LayerIndex);                 // [1, p, n_q·d]
            var o = prompt;
            if (g > 0)
            {
                var gen = Attention.CausalAttention(q.narrow(2, p, g), k, v);                           // [1, n_q, g, d]
                o = cat(new[] { prompt, gen.transpose(1, 2).reshape(1, g, -1) }, 1);
            }
            h = h + attn.o_proj.call(o);
            h = h + layer.mlp.call(layer.post_attention_layernorm.call(h));
        }
        var last = lm.model.norm.call(h).narrow(1, t - 1, 1);
        return lm.LmHead(last).reshape(-1).to(ScalarType.Float32).log_softmax(0).MoveToOuterDisposeScope();
    }

    [Theory]
    [InlineData("qwen3", "train", "causal_gi")]
    [InlineData("qwen3", "inference", "causal_shift")]
    [InlineData("llama", "train", "causal_shift_g")]
    [InlineData("llama", "inference", "none")]
    public void GreedyCachedGenerationEqualsCacheFreeRecompute(string model, string forward, string mode)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var hc = HiciConfig.Load(Folder(model)) with { CausalMode = HiciConfig.ParseCausalMode(mode), Forward = HiciConfig.ParseForward(forward) };
        using var loaded = Load(model, hc);
        var lm = loaded.Transformer;
        var rng = new Random(3);
        var prompt = Enumerable.Range(0, 24).Select(_ => (long)rng.Next((int)lm.VocabSize)).ToArray();   // 4 segments of 6

        var steps = new List<GenerationStep>();
        var result = new GenerationPipeline(lm).Generate(prompt, new GenerationOptions { MaxNewTokens = NewTokens }, steps.Add);
        Assert.Equal(NewTokens, result.Tokens.Length);

        var ids = prompt.ToList();
        double worst = 0;
        for (int i = 0; i < NewTokens; i++)
        {
            using var step = NewDisposeScope();
            var lp = Recompute(lm, ids.ToArray(), prompt.Length);
            long expected = lp.argmax().item<long>();
            Assert.Equal(expected, result.Tokens[i]);
            worst = Math.Max(worst, Math.Abs(lp[expected].item<float>() - steps[i].LogProb));
            ids.Add(expected);
        }
        Assert.True(worst <= Tol, $"log-prob of the greedy tokens differs by {worst:G3} > {Tol}");
    }

    /// <summary>
    /// What does NOT hold, and why the test above recomputes as it does: re-running HiCI over prompt + generated
    /// tokens re-segments the longer sequence, so the prompt's positions see other memory; generation is not that.
    /// </summary>
    [Fact]
    public void HiciOverTheWholeSequenceIsNotWhatGenerationComputes()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var hc = HiciConfig.Load(Folder("qwen3")) with { CausalMode = HiciCausalMode.CausalGi, Forward = HiciForwardKind.Train };
        using var loaded = Load("qwen3", hc);
        var lm = loaded.Transformer;
        var rng = new Random(4);
        var ids = Enumerable.Range(0, 32).Select(_ => (long)rng.Next((int)lm.VocabSize)).ToArray();   // 24 prompt + 8 "generated"
        var whole = lm.Forward(tensor(ids, dtype: ScalarType.Int64)).select(0, 0).select(0, -1).to(ScalarType.Float32).log_softmax(0);
        var generation = Recompute(lm, ids, 24);
        Assert.True((whole - generation).abs().max().item<float>() > 1e-3);
        // while with no generated token both are the plain HiCI forward over the prompt
        var prompt = ids.Take(24).ToArray();
        Close.Check(lm.Forward(tensor(prompt, dtype: ScalarType.Int64)).select(0, 0).select(0, -1).to(ScalarType.Float32).log_softmax(0), Recompute(lm, prompt, 24), 1e-5, "prompt only");
    }
}
