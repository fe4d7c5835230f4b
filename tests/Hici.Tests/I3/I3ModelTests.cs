using Hici.I3;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.I3;

/// <summary>Config, parameter count, head rule, RWKV state carry, attention gate, compressor and history behaviour.</summary>
public class I3ModelTests
{
    [Theory]
    [InlineData(1180, 8, 5)]
    [InlineData(64, 8, 8)]
    [InlineData(60, 8, 6)]
    [InlineData(97, 8, 1)]
    public void HeadCountAdjustment(int d, int requested, int expected) => Assert.Equal(expected, I3Config.AdjustHeads(d, requested));

    [Fact]
    public void ParameterCountsTinyAndD60()
    {
        using var tiny = new I3Model(I3Config.Tiny, torch.META);
        Assert.Equal(329_088L, I3Config.Tiny.CountParameters());
        Assert.Equal(329_088L, tiny.ParameterCount);
        var d60 = I3Config.Tiny with { DModel = 60 };
        using var m60 = new I3Model(d60, torch.META);
        Assert.Equal(293_672L, d60.CountParameters());
        Assert.Equal(293_672L, m60.ParameterCount);
        Assert.Equal(6, d60.Heads);
    }

    /// <summary>The card configuration, built on the meta device (nothing allocated).</summary>
    [Fact]
    public void ParameterCountFull()
    {
        using var full = new I3Model(I3Config.Full, torch.META);
        Assert.Equal(343_753_020L, I3Config.Full.CountParameters());
        Assert.Equal(343_753_020L, full.ParameterCount);
        Assert.Equal(5, I3Config.Full.Heads);
        Assert.Equal(5, I3Config.Full.CompressorHeads);
    }

    [Fact]
    public void D60ModelBuildsAndRuns()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var m = I3Fixtures.Random(I3Config.Tiny with { DModel = 60 });
        using var st = m.NewStream();
        var logits = m.Forward(torch.randint(0, 512, [1, 100]), st);
        Assert.Equal(new long[] { 1, 100, 512 }, logits.shape);
        Assert.True(logits.isfinite().all().item<bool>());
        Assert.Equal(1, st.History.Count);
    }

    [Fact]
    public void ConfigJsonRoundTrip()
    {
        var cfg = I3Config.Full with { CarryRwkvState = true, CompressFrom = CompressSource.Final };
        var back = I3Config.FromJson(cfg.ToJson(), "test");
        Assert.Equal(cfg, back);
        Assert.Contains("\"model_type\": \"i3\"", cfg.ToJson());
        Assert.Contains("\"num_heads_effective\": 5", cfg.ToJson());
        Assert.Throws<HiciException>(() => I3Config.FromJson("{\"model_type\":\"llama\"}", "x"));
        Assert.Throws<HiciException>(() => I3Config.FromJson("{\"model_type\":\"i3\",\"d_model\":-3}", "x"));
        Assert.Throws<HiciException>(() => I3Config.FromJson("[1]", "x"));
    }

    [Fact]
    public void GateSchedule()
    {
        var c = I3Config.Full;
        Assert.Equal(0.0, c.Gate(99));
        Assert.Equal(0.02, c.Gate(100), 12);
        Assert.Equal(0.5, c.Gate(124), 12);
        Assert.Equal(1.0, c.Gate(149));
        Assert.Equal(1.0, c.Gate(150));
        Assert.Equal(1.0, c.Gate(1_000_000));
    }

    /// <summary>One RWKV block in float64: one call over 64 tokens == random splits (Q 1 and 16) == 64 single-token steps, outputs and final state.</summary>
    [Fact]
    public void RwkvBlockStateCarryEquivalence()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var m = I3Fixtures.Lively();
        var block = m.blocks[1];
        block.to(ScalarType.Float64);
        var x = torch.randn([2, 64, 64], dtype: ScalarType.Float64, generator: new torch.Generator(4));
        RwkvLayerState Fresh() => RwkvLayerState.Fresh(2, 64, ScalarType.Float64, torch.CPU, ScalarType.Float64);
        var (yOne, sOne) = block.Run(x, Fresh(), 16);
        foreach (int? q in new int?[] { 1, 16, null })
        {
            var rng = new Random(q ?? 0);
            var st = Fresh();
            var parts = new List<Tensor>();
            for (int pos = 0; pos < 64;)
            {
                int n = q is null ? 1 : Math.Min(64 - pos, rng.Next(1, 20));
                var (y, s) = block.Run(x.narrow(1, pos, n), st, q);
                parts.Add(y); st = s; pos += n;
            }
            Assert.True(I3Fixtures.MaxDiff(torch.cat(parts, 1), yOne) <= 1e-10, $"Q={q}: {I3Fixtures.MaxDiff(torch.cat(parts, 1), yOne):E2}");
            foreach (var (a, b) in st.Tensors.Zip(sOne.Tensors)) Assert.True(I3Fixtures.MaxDiff(a, b) <= 1e-10);
        }
    }

    /// <summary>α = 0 is exactly the no-memory attention; α → 0 approaches it continuously; α = 1 differs.</summary>
    [Fact]
    public void AttentionGate()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var m = I3Fixtures.Lively();
        var blk = m.attn_blocks[0];
        var g = new torch.Generator(8);
        var x = torch.randn([2, 10, 64], generator: g);
        var mem = blk.MemoryKeys(torch.randn([2, 16, 64], generator: g));
        var none = blk.Run(x, null, 1.0, null);
        Assert.Equal(0.0, I3Fixtures.MaxDiff(blk.Run(x, mem, 0.0, null), none));
        Assert.True(I3Fixtures.MaxDiff(blk.Run(x, mem, 1e-12, null), none) <= 1e-6);
        Assert.True(I3Fixtures.MaxDiff(blk.Run(x, mem, 1.0, null), none) > 1e-3);
    }

    [Fact]
    public void CompressorShapePermutationAndBatchIndependence()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var m = I3Fixtures.Lively();
        var g = new torch.Generator(3);
        var x = torch.randn([3, 64, 64], generator: g);
        var z = m.compressor.Run(x);
        Assert.Equal(new long[] { 3, 8, 64 }, z.shape);
        var perm = torch.randperm(64, generator: g);
        Assert.True(I3Fixtures.MaxDiff(m.compressor.Run(x.index_select(1, perm)), z) <= 1e-5);
        var x2 = x.clone(); x2[2] = torch.randn([64, 64], generator: g);
        var z2 = m.compressor.Run(x2);
        Assert.True(I3Fixtures.MaxDiff(z2.narrow(0, 0, 2), z.narrow(0, 0, 2)) <= 1e-6);
        Assert.True(I3Fixtures.MaxDiff(z2[2], z[2]) > 1e-3);
    }

    /// <summary>Push M+3 blocks: count stays M, the last M in order, detached, memory L·M rows with ages newest = 0.</summary>
    [Fact]
    public void HistoryPruningAtCapacity()
    {
        using var scope = torch.NewDisposeScope();
        using var m = I3Fixtures.Random();
        int M = m.Config.MaxCompressedChunks, L = m.Config.LatentsPerChunk;
        using var h = new CompressedHistory(M);
        var blocks = Enumerable.Range(0, M + 3).Select(i => torch.full([2, L, 64], (float)i).requires_grad_()).ToArray();
        for (int i = 0; i < blocks.Length; i++)
        {
            h.Push(blocks[i] * 1);   // has a grad_fn
            Assert.Equal(Math.Min(i + 1, M), h.Count);
        }
        for (int j = 0; j < M; j++)
        {
            Assert.Equal(3 + j, h.Entries[j][0, 0, 0].ToSingle());
            Assert.False(h.Entries[j].requires_grad);
            Assert.True(h.Entries[j].is_leaf, "a history entry has no autograd history");
        }
        using var noGrad = torch.no_grad();
        var mem = m.Memory(h.Entries);
        Assert.Equal(new long[] { 2, (long)L * M, 64 }, mem.shape);
        for (int j = 0; j < M; j++)
            Assert.Equal(0.0, I3Fixtures.MaxDiff(mem.narrow(1, j * L, L), h.Entries[j] + m.age_emb!.weight![M - 1 - j]));
    }
}
