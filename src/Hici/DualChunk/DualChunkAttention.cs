using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.DualChunk;

/// <summary>
/// ChunkLlama's dual chunk attention (DCA), training-free: the sequence is cut into chunks of c = chunk_len
/// tokens and keys are rotated at their offset inside their chunk, so no query–key distance exceeds the
/// chunk size S (&lt; the pretraining length). A query attends (forward of chunkllama_attn_replace.py /
/// chunkqwen3_attn_replace.py) to
///   (a) its own chunk, causally, rotated at its own offset (intra);
///   (b) the previous chunk, rotated at min(offset + c, S) (successive);
///   (c) everything before that, rotated at min(2c − 1, S) (inter);
/// the three partial softmaxes are merged by their log-sum-exps (merge_attn_outputs), which equals one
/// softmax over the union of the key sets. Same weights and checkpoint keys as <see cref="Attention"/>.
/// KV cache: keys are stored rotated in the key frame (as the reference stores them); a call that starts at
/// 0 is the reference's prefill (partial attentions, its merge quirks), a later call its decoding branch
/// (one exact softmax over the three key ranges), generalised to several new tokens per call.
/// </summary>
public sealed class DualChunkAttention : Attention
{
    public DualChunkCore Core { get; }

    public DualChunkAttention(ModelConfig cfg, int layerIndex, DualChunkSettings settings, Device? device = null, ScalarType? dtype = null)
        : base(cfg, layerIndex, device, dtype, nameof(DualChunkAttention))
    {
        Core = new DualChunkCore(cfg, settings);
        RegisterComponents();
    }

    public DualChunkSettings Settings => Core.Settings;

    /// <summary>q, k, v before RoPE: the core rotates them in its own frames.</summary>
    protected override Tensor AttendBeforeRope(Tensor q, Tensor k, Tensor v, AttentionInput x) =>
        Core.Attend(q, k, v, x.Start, x.Cache, x.Mask);

    protected override void Dispose(bool disposing)
    {
        if (disposing) Core.Dispose();
        base.Dispose(disposing);
    }
}
