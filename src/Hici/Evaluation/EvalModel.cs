using Hici.Generation;
using Hici.Models;
using Hici.Text;

namespace Hici.Evaluation;

/// <summary>
/// What the generation tasks (passkey, topics/lines, LongBench) need from a model: its tokenizer and greedy
/// decoding (HF <c>generate</c> with <c>do_sample=False, num_beams=1</c>: argmax at every step, stop after an
/// EOS id, which is kept). Wraps a loaded <see cref="CausalLM"/> and its <see cref="HfTokenizer"/>; tests and
/// other back ends implement it directly.
/// </summary>
public interface IEvalModel
{
    int[] Encode(string text, bool addSpecialTokens);
    string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens);
    /// <summary>Greedy continuation of <paramref name="prompt"/>; at most <paramref name="maxNewTokens"/> ids,
    /// ending early right after an id of <paramref name="eos"/>.</summary>
    long[] Greedy(IReadOnlyList<long> prompt, int maxNewTokens, IReadOnlyCollection<long> eos);
    /// <summary>The model's own end-of-sequence ids (tokenizer and generation config).</summary>
    IReadOnlyList<long> EosIds { get; }
    long VocabSize { get; }
}

/// <summary><see cref="IEvalModel"/> over a HiCI.NET model and its tokenizer; EOS = the tokenizer's and the config's.</summary>
public sealed class CausalLMEvalModel(ICausalLM lm, HfTokenizer tok) : IEvalModel
{
    public ICausalLM Model => lm;
    public HfTokenizer Tokenizer => tok;
    public long VocabSize => lm.VocabSize;
    public IReadOnlyList<long> EosIds { get; } = tok.EosIds.Concat(lm.EosTokenIds).Distinct().Select(i => (long)i).ToArray();

    public int[] Encode(string text, bool addSpecialTokens) => tok.Encode(text, addSpecialTokens);
    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens) => tok.Decode(ids, skipSpecialTokens);

    public long[] Greedy(IReadOnlyList<long> prompt, int maxNewTokens, IReadOnlyCollection<long> eos) =>
        new GenerationPipeline(lm).Generate(prompt, new GenerationOptions
        {
            MaxNewTokens = maxNewTokens,
            Sampling = new SamplingOptions { Temperature = 0 },
            EosTokenIds = eos,
        }).Tokens;
}
