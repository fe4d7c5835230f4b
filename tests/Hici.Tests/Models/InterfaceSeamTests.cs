using Hici.Generation;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Models;

/// <summary>
/// Scorer and GenerationPipeline depend on <see cref="ICausalLM"/> / <see cref="IModelState"/> only: a toy
/// recurrent model (its state is a running sum of the tokens, not a K/V cache) runs through both unchanged.
/// </summary>
public class InterfaceSeamTests
{
    /// <summary>Recurrent state of fixed size: the sum of the tokens seen, mod V.</summary>
    private sealed class RunningSum : ILayerState
    {
        public long Sum;
        public void Dispose() { }
    }

    private sealed class ToyState(long batch) : IModelState
    {
        public readonly RunningSum Layer = new();
        public long Length { get; private set; }
        public long Batch { get; } = batch;
        public long MaxLength => long.MaxValue;
        public long? RopeLength { get; set; }
        public IReadOnlyList<ILayerState> Layers => new[] { Layer };
        public void EnsureRoom(long newTokens) { }
        public void Advance(long newTokens) => Length += newTokens;
        public void Reset() { Length = 0; Layer.Sum = 0; }
        public void Dispose() { }
    }

    /// <summary>
    /// With s = (sum of the tokens so far) mod V, the next-token logits are 2 at (s + 1) mod V and 0 elsewhere.
    /// "Hidden" at a position is the one-hot of s there.
    /// </summary>
    private sealed class ToyRecurrentLM : ICausalLM
    {
        public long VocabSize => 5;
        public ScalarType DType => ScalarType.Float32;
        public Device Device => CPU;
        public long? MaxPositionEmbeddings => null;
        public IReadOnlyList<int> EosTokenIds => Array.Empty<int>();
        public IModelState NewState(long maxLength, long batch = 1) => new ToyState(batch);

        public Tensor Hidden(Tensor ids, IModelState? state = null, Tensor? attentionMask = null)
        {
            var flat = (ids.dim() == 1 ? ids : ids[0]).data<long>().ToArray();
            var st = state as ToyState;
            long sum = st?.Layer.Sum ?? 0;
            var h = zeros(1, flat.Length, VocabSize);
            for (int i = 0; i < flat.Length; i++)
            {
                sum = (sum + flat[i]) % VocabSize;
                h[0, i, sum] = tensor(1f);
            }
            if (st is not null) { st.Layer.Sum = sum; st.Advance(flat.Length); }
            return h;
        }

        public Tensor LmHead(Tensor hidden)
        {
            var w = zeros(VocabSize, VocabSize);
            for (int x = 0; x < VocabSize; x++) w[x, (x + 1) % VocabSize] = tensor(2f);
            return matmul(hidden, w);
        }

        public Tensor Forward(Tensor ids, IModelState? state = null, bool lastOnly = false, Tensor? attentionMask = null)
        {
            var logits = LmHead(Hidden(ids, state, attentionMask));
            return lastOnly ? logits.narrow(1, logits.shape[1] - 1, 1) : logits;
        }

        public void Dispose() { }
    }

    [Fact]
    public void GenerationRunsOnARecurrentState()
    {
        using var lm = new ToyRecurrentLM();
        var r = new GenerationPipeline(lm).Generate(new long[] { 3 }, new GenerationOptions { MaxNewTokens = 6 });
        Assert.Equal(new long[] { 4, 3, 1, 2, 4, 3 }, r.Tokens);   // s = 3, 2, 0, 1, 3, 2 → s + 1
    }

    [Theory]
    [InlineData(false, 2)]
    [InlineData(false, 512)]
    [InlineData(true, 3)]
    public void ScoringRunsOnARecurrentState(bool wholeSequence, int chunk)
    {
        using var lm = new ToyRecurrentLM();
        var ids = new long[] { 1, 2, 4, 3, 0, 1, 0 };   // s = 1, 3, 2, 0, 0, 1 → predicted 2, 4, 3, 1, 1, 2
        var r = Scorer.Score(lm, ids, chunk, wholeSequence);
        // hand-computed: log softmax of [2, 0, 0, 0, 0] is 2 − log(e² + 4) at the favoured token, −log(e² + 4) elsewhere
        double hit = 2 - Math.Log(Math.Exp(2) + 4), miss = -Math.Log(Math.Exp(2) + 4);
        var expected = new[] { hit, hit, hit, miss, hit, miss };
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], r.LogProbs[i], 5);
    }
}
