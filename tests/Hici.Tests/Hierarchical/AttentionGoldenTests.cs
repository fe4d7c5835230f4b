using Hici.Hierarchical;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Hierarchical;

/// <summary>The HiCI attention core vs tools/hici_reference.py, every causal mode, both forwards, fp32 ≤ 1e-4.</summary>
public class AttentionGoldenTests
{
    private const double Tol = 1e-4;

    public static readonly TheoryData<string, string> ShapesAndModes = Build();

    private static TheoryData<string, string> Build()
    {
        var d = new TheoryData<string, string>();
        foreach (var shape in new[] { "qwen", "llama" })
            foreach (var mode in new[] { "none", "causal_gi", "causal_shift", "causal_shift_g", "causal_gi_gonly" })
                d.Add(shape, mode);
        return d;
    }

    private sealed class Setup : IDisposable
    {
        public readonly Fixture F;
        public readonly LocalConstructor Lc;
        public readonly GlobalIntegratorShared Gi;
        public readonly Tensor Wk, Wv;
        public readonly HiciConfig Cfg;
        public readonly int H;

        public Setup(string file)
        {
            F = Fixture.Open(file);
            H = F.Meta("H");
            Cfg = new HiciConfig
            {
                LocalSlots = F.Meta("M"), GlobalSlots = F.Meta("K"), NumHeads = F.Meta("h"),
                BottleneckDim = F.Meta("beta"), SharedCompressDim = F.Meta("C"),
            }.ValidateFor(H);
            Lc = new LocalConstructor(H, Cfg);
            Gi = new GlobalIntegratorShared(H, Cfg);
            // the library loader (shape check against the config included) reads the fixture's HiCI keys
            var report = new HiciLoadReport();
            HiciWeights.LoadLayer(F, "", Cfg, H, Lc, Gi, report, strict: true);
            Assert.Equal(Cfg.ExpectedShapes(H).Count, report.Loaded.Count);
            Wk = F["k_proj.weight"];
            Wv = F["v_proj.weight"];
        }

        public HiciAttentionCore Core(HiciConfig cfg) => new(cfg, Lc, Gi);
        public Tensor KProj(Tensor x) => x.matmul(Wk.t());
        public Tensor VProj(Tensor x) => x.matmul(Wv.t());

        public Tensor Train(HiciConfig cfg, bool withMask = true) =>
            Core(cfg).TrainingForward(F["hidden"], withMask ? F["mask"] : null, F["q"], F["k"], F["v"], KProj, VProj);

        public Tensor Infer(HiciConfig cfg) =>
            Core(cfg).InferenceForward(F["hidden"], F["mask"], F["q"], F["k"], F["v"], KProj, VProj);

        public void Dispose() { Lc.Dispose(); Gi.Dispose(); F.Dispose(); }
    }

    [Theory]
    [MemberData(nameof(ShapesAndModes))]
    public void TrainingForwardMatchesReference(string shape, string mode)
    {
        using var scope = NewDisposeScope();
        using var s = new Setup($"attn_{shape}_train.safetensors");
        var cfg = s.Cfg with { CausalMode = HiciConfig.ParseCausalMode(mode) };
        Close.Check(s.F["out." + mode], s.Train(cfg), Tol, $"{shape} train {mode}");
    }

    [Theory]
    [MemberData(nameof(ShapesAndModes))]
    public void InferenceForwardWithPaddingMatchesReference(string shape, string mode)
    {
        using var scope = NewDisposeScope();
        using var s = new Setup($"attn_{shape}_inference.safetensors");
        Assert.NotEqual(0, s.F.Meta("T") % (int)(s.F.Meta("T") * 0.25)); // the length needs padding
        var cfg = s.Cfg with { CausalMode = HiciConfig.ParseCausalMode(mode) };
        Close.Check(s.F["out." + mode], s.Infer(cfg), Tol, $"{shape} inference {mode}");
    }

    /// <summary>Nothing padded: the mask-free causal path (dummy query rows + SDPA's causal flag) vs the reference.</summary>
    [Theory]
    [MemberData(nameof(ShapesAndModes))]
    public void FastPathMatchesReference(string shape, string mode)
    {
        using var scope = NewDisposeScope();
        var cm = HiciConfig.ParseCausalMode(mode);
        using (var s = new Setup($"attn_{shape}_train.safetensors"))
        {
            var key = mode == "causal_gi" ? "out.causal_gi.nomask" : "nomask." + mode;
            Close.Check(s.F[key], s.Train(s.Cfg with { CausalMode = cm }, withMask: false), Tol, $"{shape} train {mode}, no mask");
        }
        using (var s = new Setup($"attn_{shape}_inference.safetensors"))
        {
            var y = s.Core(s.Cfg with { CausalMode = cm, SegmentSize = 6 })
                .InferenceForward(s.F["hidden"], null, s.F["q"], s.F["k"], s.F["v"], s.KProj, s.VProj);
            Close.Check(s.F["nomask." + mode], y, Tol, $"{shape} inference {mode}, no mask, S = 6");
        }
    }

    /// <summary>The fast path equals the dense masked path (all-true mask) within 1e-5 in fp32.</summary>
    [Theory]
    [MemberData(nameof(ShapesAndModes))]
    public void FastPathEqualsMaskedPath(string shape, string mode)
    {
        using var scope = NewDisposeScope();
        using var s = new Setup($"attn_{shape}_train.safetensors");
        foreach (var segRatio in new[] { 0.25, 0.5, 1.0 })
        {
            var cfg = s.Cfg with { CausalMode = HiciConfig.ParseCausalMode(mode), SegmentRatio = segRatio };
            var fast = s.Core(cfg);
            var masked = s.Core(cfg);
            masked.UseFastPath = false;
            var allValid = ones(s.F["hidden"].shape[0], s.F["hidden"].shape[1], ScalarType.Bool);
            var a = fast.TrainingForward(s.F["hidden"], null, s.F["q"], s.F["k"], s.F["v"], s.KProj, s.VProj);
            var b = masked.TrainingForward(s.F["hidden"], allValid, s.F["q"], s.F["k"], s.F["v"], s.KProj, s.VProj);
            Close.Check(b, a, 1e-5, $"{shape} {mode} ratio {segRatio}: fast vs masked");
        }
    }

    [Theory]
    [InlineData("qwen")]
    [InlineData("llama")]
    public void SegmentRulesAndSpecialCasesMatchReference(string shape)
    {
        using var scope = NewDisposeScope();
        using (var s = new Setup($"attn_{shape}_train.safetensors"))
        {
            Close.Check(s.F["out.causal_gi.nomask"], s.Train(s.Cfg with { CausalMode = HiciCausalMode.CausalGi }, withMask: false),
                Tol, $"{shape} train causal_gi, no mask");
            Close.Check(s.F["out.causal_gi.one_segment"], s.Train(s.Cfg with { CausalMode = HiciCausalMode.CausalGi, SegmentRatio = 1.0 }),
                Tol, $"{shape} train one segment (HiCI on)");
            Close.Check(s.F["out.none.segment16"], s.Train(s.Cfg with { SegmentSize = 16 }), Tol, $"{shape} train segment_size 16");
            var y = HiciAttentionCore.DecodeForward(s.F["decode.q"], s.F["k"], s.F["v"]);
            Close.Check(s.F["decode.out"], y, Tol, $"{shape} decode over cached K/V");
        }
        using (var s = new Setup($"attn_{shape}_inference.safetensors"))
        {
            Close.Check(s.F["out.none.segment8"], s.Infer(s.Cfg with { SegmentSize = 8 }), Tol, $"{shape} inference segment_size 8 (pad 30→32)");
            Close.Check(s.F["out.none.one_segment"], s.Infer(s.Cfg with { SegmentSize = 64 }), Tol, $"{shape} inference one segment (HiCI off)");
        }
    }

    [Fact]
    public void OneSegmentInferenceIsPlainCausalAttention()
    {
        using var scope = NewDisposeScope();
        using var s = new Setup("attn_qwen_inference.safetensors");
        var y = s.Infer(s.Cfg with { SegmentSize = 1000 });
        // no padding mask inside row 0: must equal SDPA causal over the tokens only
        var q = s.F["q"].narrow(0, 0, 1);
        var k = s.F["k"].narrow(0, 0, 1).repeat_interleave(2, 1);
        var v = s.F["v"].narrow(0, 0, 1).repeat_interleave(2, 1);
        var want = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true).transpose(1, 2).reshape(1, q.shape[2], -1);
        Close.Check(want, y.narrow(0, 0, 1), 1e-5, "one-segment inference = causal SDPA");
    }

    [Fact]
    public void LengthThatDoesNotDivideIsAClearError()
    {
        using var scope = NewDisposeScope();
        using var s = new Setup("attn_qwen_inference.safetensors"); // T = 30, ratio 1/4 → S = 7
        var ex = Assert.Throws<HiciException>(() => s.Train(s.Cfg));
        Assert.Contains("not a multiple of the segment length 7", ex.Message);
        Assert.Contains("30", ex.Message);
    }

    [Fact]
    public void SegmentationFollowsTheReferenceRule()
    {
        var seg = new HiciSegmenter(new HiciConfig());
        Assert.Equal(2, seg.TrainingSegmentSize(10));       // T = 10 → S = 2, N = 5 (the reference's int(T·ratio) corner)
        Assert.Equal(1, seg.TrainingSegmentSize(6));        // T ∈ {5,6,7} → S = 1, N = T
        Assert.Equal(12288, seg.TrainingSegmentSize(49152));
        Assert.Throws<HiciException>(() => seg.TrainingSegmentSize(4098)); // S = 1024, 4098 % 1024 ≠ 0
        var fixedSeg = new HiciSegmenter(new HiciConfig { SegmentSize = 1024 });
        Assert.Equal(500, fixedSeg.TrainingSegmentSize(500)); // T < S → S = T
        Assert.Equal(1024, fixedSeg.InferenceSegmentSize(3000));
        var mixed = new HiciSegmenter(new HiciConfig { MixedSegmentRatios = HiciConfig.DefaultMixedRatios }, seed: 3);
        var seen = new HashSet<int>();
        for (int i = 0; i < 50; i++)
        {
            int s0 = mixed.TrainingSegmentSize(64, layerIdx: 0, training: true);
            Assert.Equal(s0, mixed.TrainingSegmentSize(64, layerIdx: 5, training: true)); // later layers reuse layer 0's draw
            seen.Add(s0);
        }
        Assert.Equal(new[] { 8, 16, 32 }, seen.OrderBy(x => x));
        Assert.Equal(16, mixed.TrainingSegmentSize(64, 0, training: false)); // eval: the plain ratio
        var single = new HiciSegmenter(new HiciConfig { InferenceSingleSegment = true });
        Assert.Equal(777, single.InferenceSegmentSize(777));
    }

    [Fact]
    public void ShiftModesAreStrictlyCausalAndNoneLeaks()
    {
        // perturb the last token; outputs at earlier positions must not move in causal_shift(_g), must move in none
        using var scope = NewDisposeScope();
        using var s = new Setup("attn_llama_train.safetensors");
        var hidden = s.F["hidden"];
        var h2 = hidden.clone();
        h2[0, -1] = h2[0, -1] + 1.0;
        foreach (var (mode, leaks) in new[] { (HiciCausalMode.None, true), (HiciCausalMode.CausalGi, false),
                                             (HiciCausalMode.CausalShift, false), (HiciCausalMode.CausalShiftG, false) })
        {
            var core = s.Core(s.Cfg with { CausalMode = mode });
            var a = core.TrainingForward(hidden, null, s.F["q"], s.F["k"], s.F["v"], s.KProj, s.VProj);
            var b = core.TrainingForward(h2, null, s.F["q"], s.F["k"], s.F["v"], s.KProj, s.VProj);
            // positions 0..23 = segments 0..2 (the perturbed token is in segment 3)
            var d = (a.narrow(1, 0, 24) - b.narrow(1, 0, 24)).abs().max().item<float>();
            if (leaks) Assert.True(d > 1e-4, $"{mode}: expected earlier segments to move (Δ={d})");
            else Assert.True(d == 0, $"{mode}: earlier segments moved by {d}");
        }
    }
}
