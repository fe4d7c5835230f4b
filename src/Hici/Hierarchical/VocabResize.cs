using Hici.IO;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Hierarchical;

/// <summary>
/// A base checkpoint seen with another vocabulary size, as HF <c>resize_token_embeddings</c> leaves it: the
/// embedding and lm_head keep their first rows when shrinking (the reference's Qwen3 151,936 → 151,671) and
/// gain rows when growing (Llama-2 32,000 → 32,001 with [PAD]). New rows are the mean of the old rows — the
/// training script's init (smart_tokenizer_and_embedding_resize) and what HF ≥ 4.46 approximates; the eval's
/// HF 4.34 draws them at random, which we do not copy. The embedding rows are normally replaced by the
/// trainable_params overlay afterwards; lm_head is never trained, so its new rows stay the mean.
/// Does not own the wrapped source.
/// </summary>
public sealed class VocabResizedSource : IWeightSource
{
    private static readonly string[] Resized = { TrainableParams.EmbedKey, "lm_head.weight" };
    private readonly IWeightSource _inner;

    public long Rows { get; }

    public VocabResizedSource(IWeightSource inner, long rows)
    {
        if (rows <= 0) throw new HiciException($"vocabulary size must be positive (got {rows})");
        _inner = inner;
        Rows = rows;
    }

    public IReadOnlyCollection<string> Keys => _inner.Keys;
    public bool Contains(string key) => _inner.Contains(key);
    public ScalarType DType(string key) => _inner.DType(key);
    public string Origin => _inner.Origin;

    public long[] Shape(string key)
    {
        var s = _inner.Shape(key);
        if (!IsResized(key, s)) return s;
        var r = (long[])s.Clone();
        r[0] = Rows;
        return r;
    }

    public Tensor Load(string key, ScalarType? dtype = null, Device? device = null)
    {
        var t = _inner.Load(key, dtype, device);
        if (!IsResized(key, t.shape) || t.shape[0] == Rows) return t;
        using var scope = NewDisposeScope();
        using var whole = t;
        Tensor r = t.shape[0] > Rows
            ? t.narrow(0, 0, Rows).clone()
            : cat(new[] { t, t.to(ScalarType.Float32).mean(new long[] { 0 }, keepdim: true).to(t.dtype).expand(Rows - t.shape[0], t.shape[1]) }, 0);
        return r.MoveToOuterDisposeScope();
    }

    public void Dispose() { }

    private static bool IsResized(string key, long[] shape) => shape.Length == 2 && Resized.Contains(key);

    /// <summary>The config with the new vocabulary size.</summary>
    public static ModelConfig Config(ModelConfig cfg, long rows) => cfg with { VocabSize = checked((int)rows) };
}
