using Hici.Loading;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Models;

/// <summary>
/// Attention implementations by name: a new one is one registration; it reaches q/k before RoPE and can place
/// them with RoPE tables from its own position ids (what dual chunk attention needs).
/// </summary>
public class AttentionRegistryTests
{
    /// <summary>Full attention, but q/k are rotated here from explicit position ids instead of by the layer.</summary>
    private sealed class PositionIdsAttention : Attention
    {
        public static int Calls;
        private readonly RotaryEmbedding _rope;

        public PositionIdsAttention(ModelConfig cfg, int layer, Device? device, ScalarType? dtype) : base(cfg, layer, device, dtype, nameof(PositionIdsAttention))
        {
            _rope = new RotaryEmbedding(cfg, CPU);
            RegisterComponents();
        }

        protected override Tensor AttendBeforeRope(Tensor q, Tensor k, Tensor v, AttentionInput x)
        {
            Interlocked.Increment(ref Calls);
            using var positions = arange(x.Start, x.Start + q.shape[2], dtype: ScalarType.Int64);
            var t = _rope.Tables(positions, q.dtype);
            return Attend(new AttentionHeads(RotaryEmbedding.Apply(q, t), RotaryEmbedding.Apply(k, t), v), x);
        }
    }

    private sealed class PositionIdsImplementation : AttentionImplementation
    {
        public override string Name => "test-position-ids";
        public override string Summary => "full attention rotating q/k from explicit position ids (test)";
        public override IReadOnlyList<Attention> CreateLayers(ModelConfig cfg, Device? device, ScalarType? dtype) =>
            Enumerable.Range(0, cfg.NumHiddenLayers).Select(i => (Attention)new PositionIdsAttention(cfg, i, device, dtype)).ToArray();
    }

    private static readonly Lazy<bool> Registered = new(() => { AttentionRegistry.Register(new PositionIdsImplementation()); return true; });

    [Fact]
    public void BuiltInsAreRegisteredAndAnUnknownNameIsAClearError()
    {
        Assert.Contains("full", AttentionRegistry.Names);
        Assert.Contains("hici", AttentionRegistry.Names);
        var e = Assert.Throws<HiciException>(() => AttentionRegistry.Get("nope"));
        Assert.Contains("attention 'nope' is not available", e.Message);
        Assert.Throws<ArgumentException>(() => AttentionRegistry.Register(new FullAttention()));
    }

    [Fact]
    public void ARegisteredImplementationLoadsByNameAndSeesQkBeforeRope()
    {
        Assert.True(Registered.Value);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        string dir = ModelFixtures.Dir("llama-dynamic");
        using var full = ModelLoader.Load(new ModelLoadRequest(dir));
        using var probe = ModelLoader.Load(new ModelLoadRequest(dir) { Attention = new AttentionSetting("test-position-ids") });
        Assert.IsType<PositionIdsAttention>(probe.Transformer.model.layers[0].self_attn);
        var (ids, _, _) = ModelFixtures.Expected("llama-dynamic");
        int before = PositionIdsAttention.Calls;

        // whole sequence, and prefill + decode through the state: both equal the built-in path bit for bit
        Assert.Equal(0, (full.Model.Forward(ids) - probe.Model.Forward(ids)).abs().max().item<float>());
        using var s1 = full.Model.NewState(ids.shape[^1]);
        using var s2 = probe.Model.NewState(ids.shape[^1]);
        long n = ids.shape[^1];
        var a = cat(new[] { full.Model.Forward(ids.narrow(-1, 0, n - 3), s1), full.Model.Forward(ids.narrow(-1, n - 3, 3), s1) }, 1);
        var b = cat(new[] { probe.Model.Forward(ids.narrow(-1, 0, n - 3), s2), probe.Model.Forward(ids.narrow(-1, n - 3, 3), s2) }, 1);
        Assert.Equal(0, (a - b).abs().max().item<float>());
        Assert.True(PositionIdsAttention.Calls > before);
    }

    [Fact]
    public void RopeTablesFromPositionIdsAreRowsOfTheContiguousTables()
    {
        using var scope = NewDisposeScope();
        var cfg = ModelFixtures.Config("llama3-gqa-tied");
        using var rope = new RotaryEmbedding(cfg, CPU);
        var all = rope.Tables(0, 40, ScalarType.Float32);
        var same = rope.Tables(arange(0, 40, dtype: ScalarType.Int64), ScalarType.Float32);
        Assert.Equal(0, MaxDiff(all, same));
        var picked = tensor(new long[] { 7, 0, 39, 7, 12 });
        var t = rope.Tables(picked, ScalarType.Float32, sequenceLength: 40);
        Assert.Equal(0, MaxDiff(t, new RopeTables(all.Cos.index_select(0, picked), all.Sin.index_select(0, picked))));
    }

    private static float MaxDiff(RopeTables a, RopeTables b) =>
        Math.Max((a.Cos - b.Cos).abs().max().item<float>(), (a.Sin - b.Sin).abs().max().item<float>());
}
