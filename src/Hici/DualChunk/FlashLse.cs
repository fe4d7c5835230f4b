using TorchSharp;
using static TorchSharp.torch;

namespace Hici.DualChunk;

/// <summary>
/// libtorch's CPU flash-attention kernel with its log-sum-exp (aten::_scaled_dot_product_flash_attention_for_cpu,
/// which SDPA calls and then drops the log-sum-exp). TorchSharp exposes SDPA's output only, so the op is reached
/// through a one-line TorchScript function compiled at first use (torch.jit.compile: no Python, no file).
/// Same kernel as full attention's prefill: blocked, fused, fp32 statistics; bf16 inputs stay bf16.
/// </summary>
internal static class FlashLse
{
    private const string Script = """
        def attend(q: Tensor, k: Tensor, v: Tensor, causal: bool, scale: float) -> Tuple[Tensor, Tensor]:
            return torch._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, causal, attn_mask=None, scale=scale)
        """;

    // compiled once per process; the script is fixed and the op exists in the pinned libtorch (2.10)
    private static readonly Lazy<jit.CompilationUnit> Unit = new(() => jit.compile(Script + "\n"));   // TorchScript wants a final newline

    /// <summary>
    /// q [B, H, Lq, d], k/v [B, H, Lk, d] (heads already matched), causal = top-left (Lq = Lk for the
    /// bottom-right rule). Returns O [B, H, Lq, d] in q's dtype and the float32 log-sum-exp [B, H, Lq].
    /// </summary>
    public static (Tensor O, Tensor Lse) Attend(Tensor q, Tensor k, Tensor v, bool causal)
    {
        var r = ((Tensor, Tensor))Unit.Value.invoke("attend", q, k, v, causal, 1.0 / Math.Sqrt(q.shape[3]));
        return r;
    }
}
