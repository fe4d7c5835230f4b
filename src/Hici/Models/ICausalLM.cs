using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>
/// A causal language model as scorers, generators, evaluators and trainers see it: ids (and an optional
/// state carried between calls) → final hidden states or logits. <see cref="CausalLM"/> (Llama, Qwen3; any
/// registered attention) is one; a recurrent or hybrid model is another.
/// </summary>
public interface ICausalLM : IDisposable
{
    long VocabSize { get; }
    ScalarType DType { get; }
    Device Device { get; }
    /// <summary>The context length the checkpoint was trained for (config max_position_embeddings), or null if unbounded.</summary>
    long? MaxPositionEmbeddings { get; }
    /// <summary>End-of-sequence ids from the model's config (the tokenizer may name more).</summary>
    IReadOnlyList<int> EosTokenIds { get; }

    /// <summary>A state for up to <paramref name="maxLength"/> positions (preallocated where the model caches K/V).</summary>
    IModelState NewState(long maxLength, long batch = 1);

    /// <summary>
    /// Final normalised hidden states [B, L, hidden] for <paramref name="ids"/> ([B, L] or [L]), continuing
    /// <paramref name="state"/> if given. <paramref name="attentionMask"/>: optional [B, cached + L] padding
    /// mask, nonzero = real token.
    /// </summary>
    Tensor Hidden(Tensor ids, IModelState? state = null, Tensor? attentionMask = null);

    /// <summary>Logits [.., vocab] for hidden states [.., hidden] from <see cref="Hidden"/>.</summary>
    Tensor LmHead(Tensor hidden);

    /// <summary>Logits [B, L (or 1 with <paramref name="lastOnly"/>), vocab]; same inputs as <see cref="Hidden"/>.</summary>
    Tensor Forward(Tensor ids, IModelState? state = null, bool lastOnly = false, Tensor? attentionMask = null);
}
