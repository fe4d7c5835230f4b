using Hici.Models;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Hici.Tests.Models;

public class KvCacheTests(ITestOutputHelper output)
{
    // Dynamic NTK is left out on purpose: its RoPE base depends on the sequence length of the call, so
    // keys cached at length 32 were rotated with another base than a 40-token recompute uses (HF has the
    // same property). DynamicRopeIsExactWithinMaxPositions covers its cached path below the threshold.
    public static TheoryData<string> Names => new("llama-mha-linear", "llama3-gqa-tied", "qwen3-gqa");

    /// <summary>Prefill k tokens, then decode one at a time: each step's logits equal the full recompute.</summary>
    [Theory, MemberData(nameof(Names))]
    public void PrefillThenDecodeEqualsFullRecompute(string name)
    {
        using var scope = torch.NewDisposeScope();
        using var lm = ModelFixtures.Load(name, ScalarType.Float32);
        var (ids, _, _) = ModelFixtures.Expected(name);
        long t = ids.shape[0];
        var full = lm.Forward(ids)[0];                                   // [T, V]

        using var cache = lm.NewCache(t);
        const int k = 7;
        var parts = new List<Tensor> { lm.Forward(ids.narrow(0, 0, k), cache)[0] };
        for (long i = k; i < t; i++) parts.Add(lm.Forward(ids.narrow(0, i, 1), cache)[0]);
        Assert.Equal(t, cache.Length);
        double maxDiff = (torch.cat(parts, 0) - full).abs().max().item<float>();
        output.WriteLine($"{name} cached decode vs full: max|Δ logit| = {maxDiff:E2}");
        Assert.True(maxDiff <= 1e-5, $"{name}: cached decode differs from full recompute by {maxDiff:E3}");
    }

    /// <summary>Chunked prefill (L &gt; 1 new tokens after a non-empty cache) needs the bottom-right causal mask.</summary>
    [Theory, MemberData(nameof(Names))]
    public void ChunkedPrefillEqualsFullRecompute(string name)
    {
        using var scope = torch.NewDisposeScope();
        using var lm = ModelFixtures.Load(name, ScalarType.Float32);
        var (ids, _, _) = ModelFixtures.Expected(name);
        var full = lm.Forward(ids)[0];
        using var cache = lm.NewCache(64);
        var parts = new List<Tensor>();
        long pos = 0;
        foreach (long len in new long[] { 5, 1, 11, 16, 7 })
        {
            parts.Add(lm.Forward(ids.narrow(0, pos, len), cache)[0]);
            pos += len;
        }
        double maxDiff = (torch.cat(parts, 0) - full).abs().max().item<float>();
        output.WriteLine($"{name} chunked prefill vs full: max|Δ logit| = {maxDiff:E2}");
        Assert.True(maxDiff <= 1e-5, $"{name}: chunked prefill differs from full recompute by {maxDiff:E3}");
    }

    [Fact]
    public void DynamicRopeIsExactWithinMaxPositions()
    {
        using var scope = torch.NewDisposeScope();
        using var lm = ModelFixtures.Load("llama-dynamic", ScalarType.Float32);
        var (ids, _, _) = ModelFixtures.Expected("llama-dynamic");
        var head = ids.narrow(0, 0, lm.Config.MaxPositionEmbeddings);
        var full = lm.Forward(head)[0];
        using var cache = lm.NewCache(lm.Config.MaxPositionEmbeddings);
        var parts = new List<Tensor> { lm.Forward(head.narrow(0, 0, 10), cache)[0] };
        for (long i = 10; i < head.shape[0]; i++) parts.Add(lm.Forward(head.narrow(0, i, 1), cache)[0]);
        Assert.True((torch.cat(parts, 0) - full).abs().max().item<float>() <= 1e-5);
    }

    [Fact]
    public void CacheOverflowIsAClearError()
    {
        using var scope = torch.NewDisposeScope();
        using var lm = ModelFixtures.Load("qwen3-gqa", ScalarType.Float32);
        using var cache = lm.NewCache(4);
        lm.Forward(torch.tensor(new long[] { 1, 2, 3 }), cache);
        var e = Assert.Throws<HiciException>(() => lm.Forward(torch.tensor(new long[] { 4, 5 }), cache));
        Assert.Contains("KV cache is full", e.Message);
        Assert.Equal(3, cache.Length);   // a failed call must not advance the cache
    }

    /// <summary>A long decode loop allocates nothing that outlives a step: the live tensor count is flat.</summary>
    [Fact]
    public void DecodeLoopDoesNotLeakTensors()
    {
        using var lm = ModelFixtures.Load("llama3-gqa-tied", ScalarType.BFloat16);
        using var cache = lm.NewCache(200);
        using (var prompt = torch.tensor(new long[] { 1, 5, 9, 13 }))
        using (lm.Forward(prompt, cache)) { }
        var stats = DisposeScopeManager.Statistics;
        long before = stats.ThreadTotalLiveCount;
        for (int i = 0; i < 150; i++)
        {
            using var id = torch.tensor(new long[] { i % 256 });
            using var logits = lm.Forward(id, cache, lastOnly: true);
        }
        long after = stats.ThreadTotalLiveCount;
        Assert.Equal(before, after);
    }

    /// <summary>An absurd cache length is a clear error before any allocation (not a native failure or an OOM kill).</summary>
    [Fact]
    public void CacheLargerThanMemoryIsRefused()
    {
        var cfg = ModelFixtures.Config("qwen3-gqa");
        double need = KvCache.RequiredBytes(cfg, 1, 1L << 40, ScalarType.Float32);
        Assert.Equal(2.0 * 2 * 2 * 32 * 4 * (1L << 40), need);                // layers·kv heads·head_dim·fp32 from the fixture config
        var e = Assert.Throws<HiciException>(() => new KvCache(cfg, 1, 1L << 40, ScalarType.Float32, CPU));
        Assert.Contains("GiB", e.Message);
    }
}
