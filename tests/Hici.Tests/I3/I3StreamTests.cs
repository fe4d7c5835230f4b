using Hici.I3;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.I3;

/// <summary>Chunk boundaries, causality (including through the latents), detached history and generation.</summary>
public class I3StreamTests
{
    private static Tensor Logits(I3Model m, long[] ids)
    {
        using var st = m.NewStream();
        return m.Forward(torch.tensor(ids), st)[0];
    }

    private static long[] RandomIds(int n, int seed, int vocab = 512)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (long)r.Next(vocab)).ToArray();
    }

    /// <summary>Perturbing token j never changes logits at positions &lt; j (also across boundaries and through the latents) but does change later ones.</summary>
    [Fact]
    public void NoFutureLeakage()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        foreach (var cfg in new[] { I3Config.Tiny, I3Config.Tiny with { CarryRwkvState = true, CompressFrom = CompressSource.Final } })
        {
            using var m = I3Fixtures.Lively(cfg);
            var ids = RandomIds(6 * 64, 1);
            var baseLogits = Logits(m, ids);
            foreach (int j in new[] { 10, 63, 64, 127, 200, 300 })
            {
                var p = (long[])ids.Clone();
                p[j] = (p[j] + 17) % 512;
                var pl = Logits(m, p);
                Assert.True(I3Fixtures.MaxDiff(pl.narrow(0, 0, j), baseLogits.narrow(0, 0, j)) <= 1e-5, $"token {j} changed an earlier position");
                Assert.True(I3Fixtures.MaxDiff(pl.narrow(0, j, 1), baseLogits.narrow(0, j, 1)) > 1e-4, $"token {j} did not change its own logits");
                int nextChunk = (j / 64 + 1) * 64;
                if (nextChunk < ids.Length)   // reaches the next chunk (through the latents, and the RWKV state in carry mode)
                    Assert.True(I3Fixtures.MaxDiff(pl.narrow(0, nextChunk, 64), baseLogits.narrow(0, nextChunk, 64)) > 1e-4, $"token {j} did not reach the next chunk");
            }
        }
    }

    /// <summary>Logits up to position W−1 use the old (empty) history: a different compressor changes nothing before the first boundary, everything after.</summary>
    [Fact]
    public void LastPositionOfAChunkUsesTheOldHistory()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var m = I3Fixtures.Lively();
        var ids = RandomIds(3 * 64, 2);
        var a = Logits(m, ids);
        m.compressor.latents.add_(torch.randn(m.compressor.latents.shape, generator: new torch.Generator(1)));   // not a constant: the LayerNorms would remove it
        var b = Logits(m, ids);
        Assert.Equal(0.0, I3Fixtures.MaxDiff(a.narrow(0, 0, 64), b.narrow(0, 0, 64)));
        Assert.True(I3Fixtures.MaxDiff(a.narrow(0, 64, 1), b.narrow(0, 64, 1)) > 1e-4);
    }

    /// <summary>With α = 0 and a reset RWKV state a chunk is independent of the previous one; with α = 1 it depends on it through the latents.</summary>
    [Fact]
    public void GateZeroIsolatesChunks()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var m = I3Fixtures.Lively();
        var g = new torch.Generator(6);
        var chunk = torch.randint(0, 512, [2, 64], generator: g);
        var prevA = torch.randn([2, 64, 64], generator: g);
        var prevB = torch.randn([2, 64, 64], generator: g);
        Tensor Run(Tensor pending, double alpha) => m.TrainChunk(chunk, [], pending, alpha, null).Logits;
        Assert.Equal(0.0, I3Fixtures.MaxDiff(Run(prevA, 0), Run(prevB, 0)));
        Assert.True(I3Fixtures.MaxDiff(Run(prevA, 1), Run(prevB, 1)) > 1e-4);
    }

    /// <summary>
    /// A training micro-step: tokens that occur only in the previous chunk get exactly zero embedding gradient (its stream
    /// is detached); the compressor gets a gradient when α &gt; 0 and a previous chunk exists, none when α = 0.
    /// </summary>
    [Fact]
    public void NoGradientIntoDetachedHistory()
    {
        using var scope = torch.NewDisposeScope();
        using var m = I3Fixtures.Lively();
        m.train();
        // chunk c−1 uses ids 0..255 only, chunk c ids 256..511 only
        var g = new torch.Generator(12);
        var prev = torch.randint(0, 256, [2, 64], generator: g);
        var cur = torch.randint(256, 512, [2, 64], generator: g);
        foreach (double alpha in new[] { 1.0, 0.0 })
        {
            m.zero_grad();
            Tensor pending, old;
            using (torch.no_grad())
            {
                var r = m.TrainChunk(prev, [], null, 1.0, null);
                pending = r.NextPending;
                old = m.compressor.Run(pending);   // an older history entry
            }
            var (logits, _, fresh, _) = m.TrainChunk(cur, [old], pending, alpha, null);
            nn.functional.cross_entropy(logits.reshape(-1, 512), torch.randint(0, 512, [128], generator: g)).backward();
            var embGrad = m.emb.weight!.grad!;
            Assert.Equal(0.0, embGrad.narrow(0, 0, 256).abs().max().ToDouble());
            Assert.True(embGrad.narrow(0, 256, 256).abs().max().ToDouble() > 0);
            double compGrad = m.compressor.parameters().Select(p => p.grad is null ? 0 : p.grad.abs().max().ToDouble()).Max();
            if (alpha > 0)
            {
                Assert.NotNull(fresh);
                Assert.True(compGrad > 0, "the compressor gets a gradient through the fresh latents");
            }
            else
            {
                Assert.Null(fresh);
                Assert.Equal(0.0, compGrad);
            }
        }
    }

    /// <summary>
    /// Greedy generation of 5·W tokens: the history grows 1, 2, 3, 3, 3 at the boundaries (M = 3); the logits seen while
    /// generating equal one full forward over the final sequence; a rerun gives the same tokens.
    /// </summary>
    [Fact]
    public void GenerationEqualsFullForward()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var m = I3Fixtures.Lively();
        int W = 64;
        var prompt = RandomIds(5, 3);
        (List<long> Tokens, List<Tensor> Logits, List<int> Hist) Generate()
        {
            using var st = m.NewStream();
            var toks = new List<long>(prompt);
            var rows = new List<Tensor>();
            var hist = new List<int>();
            var last = m.Forward(torch.tensor(prompt), st);
            rows.Add(last[0]);
            while (toks.Count < prompt.Length + 5 * W)
            {
                long next = last[0, -1].argmax().ToInt64();
                toks.Add(next);
                bool boundary = (toks.Count) % W == 0;
                last = m.Forward(torch.tensor(new[] { next }), st);
                rows.Add(last[0]);
                if (boundary) hist.Add(st.History.Count);
            }
            return (toks, rows, hist);
        }
        var (tokens, logits, history) = Generate();
        Assert.Equal(new[] { 1, 2, 3, 3, 3 }, history);
        var full = Logits(m, tokens.ToArray());
        var streamed = torch.cat(logits, 0);
        Assert.True(I3Fixtures.MaxDiff(streamed, full) <= 1e-4, $"generation vs full forward {I3Fixtures.MaxDiff(streamed, full):E2}");
        Assert.Equal(tokens, Generate().Tokens);
    }

    /// <summary>A prompt prefilled in pieces of 1, 7, 64 or 100 tokens gives the same logits and the same state.</summary>
    [Fact]
    public void PrefillSplitInvariance()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var m = I3Fixtures.Lively();
        var ids = RandomIds(300, 4);
        var reference = Logits(m, ids);
        foreach (int piece in new[] { 1, 7, 64, 100 })
        {
            using var st = m.NewStream();
            var rows = new List<Tensor>();
            for (int pos = 0; pos < ids.Length; pos += piece)
                rows.Add(m.Forward(torch.tensor(ids[pos..Math.Min(ids.Length, pos + piece)]), st)[0]);
            Assert.True(I3Fixtures.MaxDiff(torch.cat(rows, 0), reference) <= 1e-4, $"piece {piece}");
            Assert.Equal(300 % 64, st.ChunkPos);
            Assert.Equal(3, st.History.Count);
        }
    }
}
