using Hici.I3;
using Hici.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.I3;

/// <summary>WKV: the recurrence and the block-parallel form against the definition (python fixture) and each other.</summary>
public class WkvTests
{
    private static (Tensor K, Tensor V, Tensor W, Tensor U) Random(long B, long T, long d, ScalarType dt, int seed, double kScale = 2, double decayLo = -3, double decayHi = 1, double uScale = 1)
    {
        var g = new torch.Generator((ulong)seed);
        var k = torch.randn([B, T, d], dtype: dt, generator: g) * kScale;
        var v = torch.randn([B, T, d], dtype: dt, generator: g);
        var w = -(decayLo + (decayHi - decayLo) * torch.rand(d, dtype: dt, generator: g)).exp();
        var u = torch.randn(d, dtype: dt, generator: g) * uScale;
        return (k, v, w, u);
    }

    private static double StateDiff(WkvState a, WkvState b) =>
        new[] { I3Fixtures.MaxDiff(a.A, b.A), I3Fixtures.MaxDiff(a.B, b.B), I3Fixtures.MaxDiff(a.P, b.P) }.Max();

    /// <summary>Both forms from a carried state, float64, against the definition evaluated term by term in tools/i3_reference.py.</summary>
    [Fact]
    public void BothFormsMatchDefinition()
    {
        using var scope = torch.NewDisposeScope();
        using var f = SafeTensorsWeightSource.Open(Path.Combine(I3Fixtures.Dir(""), "wkv.safetensors"));
        Tensor L(string n) => f.Load(n);
        var st = new WkvState(L("a_in"), L("b_in"), L("p_in"));
        var expected = new WkvState(L("a_out"), L("b_out"), L("p_out"));
        var (yA, sA) = Wkv.Recurrent(L("k"), L("v"), L("w"), L("u"), st);
        Assert.True(I3Fixtures.MaxDiff(yA, L("out")) <= 1e-10, $"recurrent {I3Fixtures.MaxDiff(yA, L("out")):E2}");
        Assert.True(StateDiff(sA, expected) <= 1e-10, $"recurrent state {StateDiff(sA, expected):E2}");
        foreach (int q in new[] { 1, 3, 8, 16, 37 })
        {
            var (yB, sB) = Wkv.Chunked(L("k"), L("v"), L("w"), L("u"), st, q);
            Assert.True(I3Fixtures.MaxDiff(yB, L("out")) <= 1e-10, $"Q={q}: {I3Fixtures.MaxDiff(yB, L("out")):E2}");
            Assert.True(StateDiff(sB, expected) <= 1e-10, $"Q={q} state {StateDiff(sB, expected):E2}");
        }
    }

    [Theory]
    [InlineData(ScalarType.Float64, 1e-10)]
    [InlineData(ScalarType.Float32, 1e-5)]
    public void ChunkedEqualsRecurrent(ScalarType dt, double tol)
    {
        foreach (long T in new long[] { 1, 17, 64 })
        foreach (int q in new[] { 1, 3, 8, 16, (int)T })
        {
            using var scope = torch.NewDisposeScope();
            var (k, v, w, u) = Random(2, T, 6, dt, (int)T * 31 + q);
            var fresh = Wkv.Fresh(2, 6, dt);
            var (yA, sA) = Wkv.Recurrent(k, v, w, u, fresh);
            var (yB, sB) = Wkv.Chunked(k, v, w, u, fresh, q);
            // relative on outputs (convex combinations of v, |v| ~ 1) and on the canonical state
            Assert.True(I3Fixtures.MaxDiff(yA, yB) <= tol, $"T={T} Q={q}: {I3Fixtures.MaxDiff(yA, yB):E2}");
            Assert.True(StateDiff(sA, sB) <= tol * 10, $"T={T} Q={q} state {StateDiff(sA, sB):E2}");
            Assert.True((sA.B >= 1 - 1e-6).all().item<bool>(), "b ≥ 1 after the first token");
        }
    }

    /// <summary>Extremes (k ±80, decay up to e^5 per step, u ±10): no NaN/Inf, and the two forms agree.</summary>
    [Fact]
    public void ExtremesStayFiniteAndAgree()
    {
        using var scope = torch.NewDisposeScope();
        var (k, v, w, u) = Random(2, 64, 8, ScalarType.Float32, 3, kScale: 40, decayLo: -8, decayHi: 5, uScale: 5);
        k = k.clamp(-80, 80);
        var fresh = Wkv.Fresh(2, 8);
        var (yA, sA) = Wkv.Recurrent(k, v, w, u, fresh);
        var (yB, sB) = Wkv.Chunked(k, v, w, u, fresh, 16);
        Assert.True(yA.isfinite().all().item<bool>() && yB.isfinite().all().item<bool>());
        // relative to the value scale: outputs are convex combinations of v (|v| up to ~4 here)
        double scale = v.abs().max().ToDouble();
        Assert.True(I3Fixtures.MaxDiff(yA, yB) <= 1e-5 * scale, $"{I3Fixtures.MaxDiff(yA, yB):E2} vs scale {scale:F2}");
        Assert.True((sA.P > -1e29).all().item<bool>() && (sB.P > -1e29).all().item<bool>());
        Assert.True(I3Fixtures.MaxDiff(sA.P, sB.P) <= 1e-4 * (1 + sA.P.abs().max().ToDouble()));
    }

    /// <summary>Split at s: recurrence over [0, s) then chunked over [s, T) (and the other order) equals one call.</summary>
    [Fact]
    public void StateCarryAcrossCallsEqualsOneCall()
    {
        using var scope = torch.NewDisposeScope();
        var (k, v, w, u) = Random(2, 50, 5, ScalarType.Float64, 9);
        var fresh = Wkv.Fresh(2, 5, ScalarType.Float64);
        var (y, s) = Wkv.Chunked(k, v, w, u, fresh, 7);
        foreach (int split in new[] { 1, 13, 32, 49 })
        {
            var (y1, s1) = Wkv.Recurrent(k.narrow(1, 0, split), v.narrow(1, 0, split), w, u, fresh);
            var (y2, s2) = Wkv.Chunked(k.narrow(1, split, 50 - split), v.narrow(1, split, 50 - split), w, u, s1, 16);
            Assert.True(I3Fixtures.MaxDiff(torch.cat([y1, y2], 1), y) <= 1e-10);
            Assert.True(StateDiff(s2, s) <= 1e-10);
            var (z1, t1) = Wkv.Chunked(k.narrow(1, 0, split), v.narrow(1, 0, split), w, u, fresh, 3);
            var (z2, t2) = Wkv.Recurrent(k.narrow(1, split, 50 - split), v.narrow(1, split, 50 - split), w, u, t1);
            Assert.True(I3Fixtures.MaxDiff(torch.cat([z1, z2], 1), y) <= 1e-10);
            Assert.True(StateDiff(t2, s) <= 1e-10);
        }
    }

    /// <summary>float64 gradients of a random functional of outputs and exit state agree (detached max-shifts are exact).</summary>
    [Fact]
    public void GradientsAgree()
    {
        using var scope = torch.NewDisposeScope();
        var (k0, v0, w0, u0) = Random(2, 20, 4, ScalarType.Float64, 17);
        var g = new torch.Generator(5);
        var c = torch.randn([2, 20, 4], dtype: ScalarType.Float64, generator: g);
        var ca = torch.randn([2, 4], dtype: ScalarType.Float64, generator: g);
        Tensor[] Grads(bool chunked)
        {
            var k = k0.clone().requires_grad_(); var v = v0.clone().requires_grad_();
            var decay = (-w0).log().clone().requires_grad_(); var u = u0.clone().requires_grad_();
            var fresh = Wkv.Fresh(2, 4, ScalarType.Float64);
            var (y, s) = chunked ? Wkv.Chunked(k, v, -decay.exp(), u, fresh, 6) : Wkv.Recurrent(k, v, -decay.exp(), u, fresh);
            // the exit sums A = a·e^p enter through a and p; p only as the (detached) shift, so use a/b
            var loss = (y * c).sum() + (s.A / s.B * ca).sum();
            loss.backward();
            return [k.grad!, v.grad!, decay.grad!, u.grad!];
        }
        var ga = Grads(false); var gb = Grads(true);
        for (int i = 0; i < 4; i++) Assert.True(I3Fixtures.MaxDiff(ga[i], gb[i]) <= 1e-8, $"grad {i}: {I3Fixtures.MaxDiff(ga[i], gb[i]):E2}");
    }

    /// <summary>Finite differences on T = 5, d = 3 for the chunked form's time_decay / time_first gradients.</summary>
    [Fact]
    public void ChunkedGradientMatchesFiniteDifferences()
    {
        using var scope = torch.NewDisposeScope();
        var (k, v, w0, u0) = Random(1, 5, 3, ScalarType.Float64, 23);
        var c = torch.randn([1, 5, 3], dtype: ScalarType.Float64, generator: new torch.Generator(2));
        var decay0 = (-w0).log();
        double F(Tensor decay, Tensor u) => (Wkv.Chunked(k, v, -decay.exp(), u, Wkv.Fresh(1, 3, ScalarType.Float64), 2).Out * c).sum().ToDouble();
        var dv = decay0.clone().requires_grad_(); var uv = u0.clone().requires_grad_();
        (Wkv.Chunked(k, v, -dv.exp(), uv, Wkv.Fresh(1, 3, ScalarType.Float64), 2).Out * c).sum().backward();
        const double h = 1e-6;
        for (int i = 0; i < 3; i++)
        {
            var e = torch.zeros(3, dtype: ScalarType.Float64); e[i] = h;
            double fdD = (F(decay0 + e, u0) - F(decay0 - e, u0)) / (2 * h);
            double fdU = (F(decay0, u0 + e) - F(decay0, u0 - e)) / (2 * h);
            Assert.True(Math.Abs(fdD - dv.grad![i].ToDouble()) <= 1e-6, $"decay[{i}] fd {fdD} vs {dv.grad![i].ToDouble()}");
            Assert.True(Math.Abs(fdU - uv.grad![i].ToDouble()) <= 1e-6, $"first[{i}] fd {fdU} vs {uv.grad![i].ToDouble()}");
        }
    }
}
