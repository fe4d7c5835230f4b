using Hici.Hierarchical;
using Hici.IO;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Hierarchical;

/// <summary>
/// A right-padded batch of 2 with an attention mask through the tiny HiCI models, vs
/// tools/make_hici_padding_fixtures.py: full attention (padded keys masked) and every HiCI mode with both
/// forwards; log-probs compared at real positions only, fp32 ≤ 1e-4. Row 1 has a partly and a fully padded
/// segment, so the local constructor's finfo.min masking and the uniform mean of an all-padding segment count.
/// </summary>
public class PaddingMaskTests
{
    private const double Tol = 1e-4;
    private const int Valid1 = 19;

    public static readonly TheoryData<string, string, string> Cases = Build();

    private static TheoryData<string, string, string> Build()
    {
        var d = new TheoryData<string, string, string>();
        foreach (var model in new[] { "qwen3", "llama" })
        {
            d.Add(model, "full", "-");
            foreach (var fwd in new[] { "train", "inference" })
                foreach (var mode in new[] { "none", "causal_gi", "causal_shift", "causal_shift_g", "causal_gi_gonly" })
                    d.Add(model, fwd, mode);
        }
        return d;
    }

    private static string Folder(string model) => Path.GetDirectoryName(Fixture.PathOf($"model-{model}/config.json"))!;

    private static CausalLM Load(string model, AttentionKind kind, HiciConfig hici)
    {
        var cfg = HfConfigReader.Read(Path.Combine(Folder(model), "config.json")) with { Attention = TestAttention.Setting(kind, hici) };
        using var src = SafeTensorsWeightSource.Open(Path.Combine(Folder(model), "model.safetensors"));
        return CausalLM.Load(cfg, src, ScalarType.Float32);
    }

    /// <summary>Max |Δ| over row 0 (all positions) and row 1 (its real tokens).</summary>
    private static void CheckRealPositions(Tensor expected, Tensor actual, string what)
    {
        long t = expected.shape[1];
        Close.Check(expected[0], actual[0], Tol, what + " row 0");
        Close.Check(expected[1].narrow(0, 0, Valid1), actual[1].narrow(0, 0, Valid1), Tol, what + " row 1 (real tokens)");
        Assert.Equal(t, actual.shape[1]);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void PaddedBatchMatchesReference(string model, string forward, string mode)
    {
        using var scope = NewDisposeScope();
        using var exp = Fixture.Open($"model-{model}/expected_padded.safetensors");
        var hici = HiciConfig.Load(Folder(model));
        if (forward != "full") hici = hici with { CausalMode = HiciConfig.ParseCausalMode(mode), Forward = HiciConfig.ParseForward(forward) };
        using var lm = Load(model, forward == "full" ? AttentionKind.Full : AttentionKind.Hici, hici);
        var ids = exp["input_ids"];
        var mask = exp["attention_mask"];
        if (forward == "inference") { ids = ids.narrow(1, 0, 30); mask = mask.narrow(1, 0, 30); }
        var lp = lm.Forward(ids, attentionMask: mask).to(ScalarType.Float32).log_softmax(-1);
        string key = forward == "full" ? "lp.full" : $"lp.{forward}.{mode}";
        CheckRealPositions(exp[key], lp, $"{model} padded {forward} {mode}");
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("llama")]
    public void FullAttentionIgnoresPadContentAndWorksThroughTheCache(string model)
    {
        using var scope = NewDisposeScope();
        using var exp = Fixture.Open($"model-{model}/expected_padded.safetensors");
        using var lm = Load(model, AttentionKind.Full, HiciConfig.Load(Folder(model)));
        var ids = exp["input_ids"];
        var mask = exp["attention_mask"];

        // other pad ids: the real positions do not move
        var other = ids.clone();
        other[1, TensorIndex.Slice(Valid1)] = tensor(7L);
        CheckRealPositions(exp["lp.full"], lm.Forward(other, attentionMask: mask).log_softmax(-1), $"{model} other pad ids");

        // two chunks through the KV cache, the mask always covering cached + new positions
        using var cache = lm.NewCache(32, batch: 2);
        var a = lm.Forward(ids.narrow(1, 0, 20), cache, attentionMask: mask.narrow(1, 0, 20));
        var b = lm.Forward(ids.narrow(1, 20, 12), cache, attentionMask: mask);
        CheckRealPositions(exp["lp.full"], cat(new[] { a, b }, 1).log_softmax(-1), $"{model} padded, cached in 2 chunks");
    }

    [Fact]
    public void MaskOfTheWrongShapeIsAClearError()
    {
        using var scope = NewDisposeScope();
        using var lm = Load("qwen3", AttentionKind.Full, HiciConfig.Load(Folder("qwen3")));
        var ex = Assert.Throws<HiciException>(() => lm.Forward(zeros(2, 8, ScalarType.Int64), attentionMask: ones(2, 7)));
        Assert.Contains("attention mask must be [batch, cached + new tokens] = [2, 8]", ex.Message);
    }
}
