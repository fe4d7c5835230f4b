using System.Text.Json.Nodes;
using Hici.Evaluation;
using Hici.IO;
using Hici.Training;

namespace Hici.Cli.Demo;

/// <summary>
/// The demo's compact vocabulary: the Llama-2 token ids that occur in the Brown training split (18,359 of
/// 32,000), renumbered 0…n−1 in id order, so the embedding and lm_head — most of a small model's parameters
/// and compute — only cover ids the model can ever learn. The tokenizer stays the real Llama-2 one; text is
/// tokenized with it and the ids mapped through this table (<see cref="FileName"/> in every demo model folder:
/// position i holds the Llama-2 id of model id i). Held-out ids the training split never has map to
/// &lt;unk&gt; (id 0; 112 of 57,594 held-out tokens), which is always kept, as are BOS and EOS.
/// </summary>
public sealed class VocabRemap
{
    public const string FileName = "demo_vocab_map.json";
    private const int Unk = 0;
    private readonly int[] _toCompact;   // Llama-2 id → compact id (−1: not in the training split)

    public IReadOnlyList<int> Original { get; }
    public int Count => Original.Count;

    private VocabRemap(int[] original, int fullVocab)
    {
        Original = original;
        _toCompact = Enumerable.Repeat(-1, fullVocab).ToArray();
        for (int i = 0; i < original.Length; i++) _toCompact[original[i]] = i;
    }

    /// <summary>The ids that occur in <paramref name="trainBin"/>, plus &lt;unk&gt;, BOS and EOS (0, 1, 2).</summary>
    public static VocabRemap FromTokens(string trainBin, int fullVocab)
    {
        var used = new bool[fullVocab];
        used[0] = used[1] = used[2] = true;
        using var f = TokenFile.Open(trainBin, fullVocab);
        const int chunk = 1 << 20;
        for (long s = 0; s < f.Length; s += chunk)
            foreach (var id in f.Read(s, (int)Math.Min(chunk, f.Length - s))) used[id] = true;
        return new VocabRemap(Enumerable.Range(0, fullVocab).Where(i => used[i]).ToArray(), fullVocab);
    }

    public int ToCompact(long id) => id >= 0 && id < _toCompact.Length && _toCompact[id] >= 0 ? _toCompact[id] : Unk;
    public long ToOriginal(long id) => Original[(int)id];

    /// <summary>Rewrites a Llama-2 token file as compact ids (same metadata, vocab_size = <see cref="Count"/>).</summary>
    public void RewriteTokenFile(string srcBin, string dstBin, int fullVocab)
    {
        using var f = TokenFile.Open(srcBin, fullVocab);
        using var w = new TokenFileWriter(dstBin, TokenFileInfo.DTypeFor(Count));
        const int chunk = 1 << 20;
        for (long s = 0; s < f.Length; s += chunk)
            w.Add(f.Read(s, (int)Math.Min(chunk, f.Length - s)).Select(ToCompact).ToArray(), endsDocument: false);
        w.Commit();
        (f.Info with { DType = TokenFileInfo.DTypeFor(Count), VocabSize = Count, Tokenizer = f.Info.Tokenizer + "+" + FileName }).Save(dstBin);
    }

    public void Save(string modelDir) =>
        AtomicDirectory.WriteJson(Path.Combine(modelDir, FileName), new JsonObject
        {
            ["description"] = "hici demo: model id i is Llama-2 tokenizer id original[i]; other Llama-2 ids map to 0 (<unk>)",
            ["original"] = new JsonArray(Original.Select(i => (JsonNode)i).ToArray()),
        });

    /// <summary>An <see cref="IEvalModel"/> (tokenizer ids) over a model with compact ids: encode maps in, greedy
    /// output maps back, so passkey retrieval compares Llama-2 ids as usual.</summary>
    public IEvalModel Wrap(IEvalModel compact) => new Mapped(this, compact);

    private sealed class Mapped(VocabRemap map, IEvalModel m) : IEvalModel
    {
        public int[] Encode(string text, bool addSpecialTokens) => m.Encode(text, addSpecialTokens);
        public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens) => m.Decode(ids, skipSpecialTokens);
        public long[] Greedy(IReadOnlyList<long> prompt, int maxNewTokens, IReadOnlyCollection<long> eos) =>
            m.Greedy(prompt.Select(i => (long)map.ToCompact(i)).ToArray(), maxNewTokens, eos.Select(i => (long)map.ToCompact(i)).ToArray())
                .Select(map.ToOriginal).ToArray();
        public IReadOnlyList<long> EosIds => m.EosIds;   // Llama-2's EOS (2) is compact id 2 as well
        public long VocabSize => map._toCompact.Length;
    }
}
