using System.Text.Json.Nodes;
using Hici.Hierarchical;

namespace Hici.Cli.Demo;

/// <summary>
/// The sizes of `hici demo` — the paper in miniature. A small Llama-architecture model with the real Llama-2
/// tokenizer (32,000 ids; the embedding and lm_head are most of its parameters and of its compute) is
/// pre-trained at <see cref="ShortContext"/> with full attention, then extended 8× to <see cref="LongContext"/>
/// with LoRA + HiCI continued pre-training and linear RoPE scaling (factor 8, the reference's rule).
/// Step counts are chosen for ≤ 15 minutes on 2 cores (--quick: about a fifth).
/// </summary>
public sealed record DemoRecipe
{
    public int ShortContext { get; init; } = 256;
    public int LongContext { get; init; } = 2048;
    public int Hidden { get; init; } = 128;
    public int Layers { get; init; } = 4;
    public int Heads { get; init; } = 4;
    public int Intermediate { get; init; } = 384;

    public int PretrainSteps { get; init; } = 700;
    public int PretrainBatch { get; init; } = 8;
    public double PretrainLr { get; init; } = 3e-3;

    public int ExtendSteps { get; init; } = 80;
    public int ExtendBatch { get; init; } = 1;
    public int ExtendAccum { get; init; } = 2;
    public double ExtendLr { get; init; } = 1e-3;
    public double ExtendHiciLr { get; init; } = 2e-3;

    /// <summary>Held-out tokens scored at every length (the same tokens, cut into windows of that length).</summary>
    public int EvalTokens { get; init; } = 8192;
    public IReadOnlyList<int> EvalLengths { get; init; } = new[] { 256, 512, 1024, 2048 };
    public HiciCausalMode EvalCausalMode { get; init; } = HiciCausalMode.CausalShift;
    public long Seed { get; init; } = 42;

    /// <summary>Passkey retrieval of the extended model: lengths Interval, 2·Interval … LongContext, a few trials each.</summary>
    public int PasskeyInterval { get; init; } = 512;
    public int PasskeyTests { get; init; } = 4;
    public int PasskeyDepthBins { get; init; } = 4;

    public static DemoRecipe Full => new();

    public static DemoRecipe Quick => new() { PretrainSteps = 200, ExtendSteps = 20, EvalTokens = 4096, PasskeyInterval = 1024, PasskeyTests = 2, PasskeyDepthBins = 2 };

    /// <summary>HiCI scaled down with the model (the published 8/4/8/512/128 at hidden 4096): M 8, K 4, h = heads,
    /// β = hidden/2, C = hidden/4 (64 and 32 at hidden 128); trained and evaluated in causal_shift, the strictly
    /// causal mode, so its perplexity is a real one.</summary>
    public HiciConfig Hici => new()
    {
        LocalSlots = 8, GlobalSlots = 4, NumHeads = Heads, BottleneckDim = Hidden / 2, SharedCompressDim = Hidden / 4,
        CausalMode = EvalCausalMode, SegmentRatio = 0.25,
    };

    /// <summary>The compact vocabulary's size (<see cref="VocabRemap"/>); set once the training split is tokenized.</summary>
    public int VocabSize { get; init; } = 32000;

    public JsonObject ModelConfig() => new()
    {
        ["architectures"] = new JsonArray("LlamaForCausalLM"), ["model_type"] = "llama", ["hidden_act"] = "silu",
        ["vocab_size"] = VocabSize, ["hidden_size"] = Hidden, ["intermediate_size"] = Intermediate,
        ["num_hidden_layers"] = Layers, ["num_attention_heads"] = Heads, ["num_key_value_heads"] = Heads,
        ["max_position_embeddings"] = ShortContext, ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 10000.0,
        ["tie_word_embeddings"] = false, ["attention_bias"] = false, ["initializer_range"] = 0.02,
        ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["torch_dtype"] = "float32",
    };
}
