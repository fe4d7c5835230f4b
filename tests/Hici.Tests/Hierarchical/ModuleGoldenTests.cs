using Hici.Hierarchical;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Tests.Hierarchical;

/// <summary>HiCI modules vs tools/hici_reference.py (fixtures from tools/make_hici_fixtures.py), fp32 ≤ 1e-5.</summary>
public class ModuleGoldenTests
{
    private const double Tol = 1e-5;

    [Fact]
    public void LocalConstructorMatchesReference()
    {
        using var f = Fixture.Open("local_constructor.safetensors");
        using var scope = NewDisposeScope();
        var lc = new LocalConstructor(f.Meta("H"), f.Meta("M"), f.Meta("h"), true, f.Meta("beta"));
        f.LoadInto(lc, "lc.");
        Close.Check(f["lc.out_masked"], lc.forward(f["lc.x"], f["lc.mask"]), Tol, "LC masked (incl. fully padded row)");
        Close.Check(f["lc.out_nomask"], lc.forward(f["lc.x"], null), Tol, "LC no mask");

        var nb = new LocalConstructor(f.Meta("H"), 4, 4, useBottleneck: false);
        Assert.Null(nb.OProj);
        f.LoadInto(nb, "lcnb.");
        Close.Check(f["lcnb.out"], nb.forward(f["lc.x"], f["lc.mask"]), Tol, "LC no bottleneck");
    }

    [Fact]
    public void FoldedTokenProjectionsEqualTheReferenceOrder()
    {
        // h·M = 16 < e = 32: the fold runs (the model fixtures use this setting against the reference too)
        using var scope = NewDisposeScope();
        torch.manual_seed(3);
        var lc = new LocalConstructor(64, numSlots: 4, numHeads: 4, bottleneckDim: 32);
        var x = randn(3, 37, 64);
        var mask = ones(3, 37, ScalarType.Bool);
        mask[1, TensorIndex.Slice(20)] = tensor(false);
        mask[2] = tensor(false);
        var folded = (lc.forward(x, null), lc.forward(x, mask));
        lc.FoldTokenProjections = false;
        Close.Check(lc.forward(x, null), folded.Item1, 1e-6, "LC folded = unfolded, no mask");
        Close.Check(lc.forward(x, mask), folded.Item2, 1e-6, "LC folded = unfolded, masked and fully padded rows");
        Assert.True(lc.forward(x, null).sub(folded.Item1).abs().max().item<float>() > 0, "the fold did not run (same op order)");
    }

    [Fact]
    public void FullyPaddedSegmentIsTheUniformMeanNotNaN()
    {
        using var f = Fixture.Open("local_constructor.safetensors");
        using var scope = NewDisposeScope();
        var lc = new LocalConstructor(f.Meta("H"), f.Meta("M"), f.Meta("h"), true, f.Meta("beta"));
        f.LoadInto(lc, "lc.");
        var x = f["lc.x"].narrow(0, 4, 1);
        var outMasked = lc.forward(x, zeros(1, x.shape[1], ScalarType.Bool));
        // uniform attention over all S positions = mean of V over the segment, through o_proj
        var mean = lc.OProj!.forward(lc.VProj.forward(x).mean(new long[] { 1 }, keepdim: true)).expand(1, lc.NumSlots, x.shape[2]);
        Close.Check(mean, outMasked, 1e-5, "LC fully padded = mean");
    }

    [Theory]
    [InlineData("gis")]
    [InlineData("gisid")]
    [InlineData("gii")]
    public void GlobalIntegratorMatchesReference(string which)
    {
        using var f = Fixture.Open("global_integrator.safetensors");
        using var scope = NewDisposeScope();
        int hd = f.Meta("H"), k = f.Meta("K"), h = f.Meta("h"), beta = f.Meta("beta");
        IGlobalIntegrator gi = which switch
        {
            "gis" => new GlobalIntegratorShared(hd, k, beta, 16, h),
            "gisid" => new GlobalIntegratorShared(hd, k, 32, 48, h),
            _ => new GlobalIntegrator(hd, k, beta, h),
        };
        if (which == "gisid") Assert.Equal(48, gi.Width);
        f.LoadInto(gi.Module, which + ".");
        var l = f["gi.L"];
        Close.Check(f[which + ".out"], gi.Forward(l), Tol, $"{which} forward");
        Close.Check(f[which + ".out_causal"], gi.ForwardCausal(l), Tol, $"{which} forward_causal");
    }

    [Fact]
    public void StateDictKeysAreTheReferenceKeys()
    {
        var cfg = new HiciConfig();
        const int hidden = 64;
        var small = cfg with { BottleneckDim = 32, SharedCompressDim = 16 };
        using var lc = new LocalConstructor(hidden, small);
        using var gi = new GlobalIntegratorShared(hidden, small);
        var keys = lc.state_dict().Select(kv => "local_constructor." + kv.Key)
            .Concat(gi.state_dict().Select(kv => "global_integrator." + kv.Key)).ToHashSet();
        var want = small.ExpectedShapes(hidden).ToDictionary(e => e.Key, e => e.Shape);
        Assert.Equal(want.Keys.OrderBy(x => x), keys.OrderBy(x => x));
        foreach (var (name, t) in lc.state_dict()) Assert.Equal(want["local_constructor." + name], t.shape);
        foreach (var (name, t) in gi.state_dict()) Assert.Equal(want["global_integrator." + name], t.shape);

        using var gii = new GlobalIntegrator(hidden, small with { UseSharedCompressor = false, CompressDim = 32 });
        var wantI = (small with { UseSharedCompressor = false, CompressDim = 32 }).ExpectedShapes(hidden)
            .Where(e => e.Key.StartsWith("global_integrator.")).Select(e => e.Key).OrderBy(x => x);
        Assert.Equal(wantI, gii.state_dict().Keys.Select(k => "global_integrator." + k).OrderBy(x => x));
    }

    [Fact]
    public void InitialisationFollowsTheReferenceRules()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(7);
        const int hidden = 256;
        var lc = new LocalConstructor(hidden, numSlots: 64, numHeads: 8, bottleneckDim: 128);
        // slots ~ N(0, 1/H): std ≈ 1/16
        Assert.InRange(lc.MemorySlots.std().item<float>(), 0.055, 0.070);
        // default Linear init: U(±1/√fan_in)
        Assert.True(((Linear)lc.QProj).weight!.abs().max().item<float>() <= 1.0 / Math.Sqrt(hidden) + 1e-7);
        Assert.True(((Linear)lc.OProj!).weight!.abs().max().item<float>() <= 1.0 / Math.Sqrt(128) + 1e-7);

        var embed = randn(50, hidden);
        embed[17] = embed[17] * 10; embed[3] = embed[3] * 9; embed[40] = embed[40] * 8; embed[8] = embed[8] * 7;
        var gi = new GlobalIntegratorShared(hidden, globalSlots: 4, compressDim: 128, sharedCompressDim: 32, numHeads: 8, embeddings: embed);
        // expand_scale_param = inverse softplus(0.1)
        Assert.Equal(Math.Log(Math.Exp(0.1) - 1), gi.ExpandScaleParam.item<float>(), 5);
        Assert.Equal(0.1, nn.functional.softplus(gi.ExpandScaleParam).item<float>(), 5);
        var sd = gi.state_dict();
        // expand ~ N(0, (0.02/√D)²)
        Assert.InRange(sd["expand.weight"].std().item<float>(), 0.02 / Math.Sqrt(128) * 0.9, 0.02 / Math.Sqrt(128) * 1.1);
        // q/k/v/o xavier-uniform: bound √(6/(D+D))
        double xb = Math.Sqrt(6.0 / 256);
        foreach (var p in new[] { "q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight" })
        {
            var w = sd[p];
            Assert.True(w.abs().max().item<float>() <= xb + 1e-6, p);
            Assert.True(w.abs().max().item<float>() > xb * 0.9, p);
        }
        // global queries = LayerNorm stages applied to the K largest-norm embedding rows (in topk order)
        var rows = embed.index_select(0, tensor(new long[] { 17, 3, 40, 8 }));
        var c = ((nn.Module<Tensor, Tensor>)gi.named_children().First(x => x.name == "shared_compressor").module).forward(rows);
        c = ((nn.Module<Tensor, Tensor>)gi.named_children().First(x => x.name == "stat_expand").module).forward(c);
        Close.Check(c, gi.GlobalQueries, 1e-6, "global_queries high-norm init");

        // independent compressors: stat_compressors[0] of the same rows
        var gii = new GlobalIntegrator(hidden, globalSlots: 4, compressDim: 128, numHeads: 8, embeddings: embed);
        var sc0 = gii.state_dict();
        var lin = rows.matmul(sc0["stat_compressors.0.0.weight"].t());
        var ln = nn.functional.layer_norm(lin, new long[] { 128 }, sc0["stat_compressors.0.1.weight"], sc0["stat_compressors.0.1.bias"], 1e-5);
        Close.Check(ln, sc0["global_queries"], 1e-6, "independent global_queries init");

        // without embeddings: xavier-uniform queries
        var g2 = new GlobalIntegratorShared(hidden, globalSlots: 4, compressDim: 128, sharedCompressDim: 32, numHeads: 8);
        Assert.True(g2.GlobalQueries.abs().max().item<float>() <= Math.Sqrt(6.0 / (4 + 128)) + 1e-6);
        Assert.True(g2.GlobalQueries.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void Bf16ModulesRunAndStayClose()
    {
        using var f = Fixture.Open("global_integrator.safetensors");
        using var scope = NewDisposeScope();
        var gi = new GlobalIntegratorShared(f.Meta("H"), f.Meta("K"), f.Meta("beta"), 16, f.Meta("h"));
        f.LoadInto(gi, "gis.");
        gi.to(ScalarType.BFloat16);
        var l = f["gi.L"].to(ScalarType.BFloat16);
        var o = gi.ForwardCausal(l);
        Assert.Equal(ScalarType.BFloat16, o.dtype);
        var rel = ((o.to(ScalarType.Float32) - f["gis.out_causal"]).abs().max() / f["gis.out_causal"].abs().max()).item<float>();
        Assert.True(rel < 0.05, $"bf16 relative error {rel}");
    }
}
