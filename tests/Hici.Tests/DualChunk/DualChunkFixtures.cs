using Hici.DualChunk;
using Hici.IO;
using Hici.Models;
using Hici.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.DualChunk;

/// <summary>tests/fixtures/dca, written by tools/make_dca_fixtures.py from tools/dca_reference.py.</summary>
public static class DualChunkFixtures
{
    public static string Dir => Path.Combine(ModelFixtures.Root, "tests", "fixtures", "dca");

    /// <summary>The attention fixture: q [1,4,37,8], k/v [1,2,37,8] and one output per case (caller disposes).</summary>
    public static SafeTensorsWeightSource Attention() => SafeTensorsWeightSource.Open(Path.Combine(Dir, "attention.safetensors"));

    public const int PromptOfAttention = 25;

    /// <summary>The model config the attention cases were made for (head_dim 8, max_position_embeddings 16).</summary>
    public static ModelConfig AttentionConfig(string variant) => new()
    {
        ModelType = variant,
        VocabSize = 16, HiddenSize = 32, IntermediateSize = 32, NumHiddenLayers = 1,
        NumAttentionHeads = 4, NumKeyValueHeads = 2, HeadDim = 8,
        RopeTheta = variant == "qwen3" ? 1e6 : 10000.0,
        RopeScaling = variant == "qwen3" ? null : new RopeScaling("linear", 2.0),
        MaxPositionEmbeddings = 16,
    };

    /// <summary>The options of each attention case (see make_dca_fixtures.py CASES).</summary>
    public static (string Variant, DualChunkOptions Options) Case(string name) => name switch
    {
        "llama" => ("llama", new DualChunkOptions { PretrainingLength = 16 }),
        "llama_fp32_merge" => ("llama", new DualChunkOptions { PretrainingLength = 16, Bf16MergeWeights = false }),
        "llama_lw3" => ("llama", new DualChunkOptions { PretrainingLength = 16, LocalWindow = 3 }),
        "qwen3" => ("qwen3", new DualChunkOptions { PretrainingLength = 16 }),
        _ => throw new ArgumentException(name),
    };

    public static DualChunkCore Core(string name)
    {
        var (variant, options) = Case(name);
        var cfg = AttentionConfig(variant);
        return new DualChunkCore(cfg, options.Resolve(cfg));
    }

    /// <summary>The model fixtures use pretraining length 24 (chunk size 18).</summary>
    public static ModelConfig ModelConfig(string model, DualChunkOptions? options = null) =>
        ModelFixtures.Config(model) with { Attention = DualChunkImplementation.Setting(options ?? new DualChunkOptions { PretrainingLength = 24 }) };

    /// <summary>input_ids [T], logprobs_fp32 [T, V], decode_logprobs_fp32 [T−P, V] and P.</summary>
    public static (Tensor Ids, Tensor Logprobs, Tensor DecodeLogprobs, int Prompt) Expected(string model)
    {
        using var src = SafeTensorsWeightSource.Open(Path.Combine(Dir, $"model-{model}.safetensors"));
        var ids = src.Load("input_ids");
        var dec = src.Load("decode_logprobs_fp32");
        return (ids, src.Load("logprobs_fp32"), dec, (int)(ids.shape[0] - dec.shape[0]));
    }

    /// <summary>Log-probs after positions P−1 .. T−2: the prompt through the cache, then one token per call.</summary>
    public static Tensor DecodeLogprobs(CausalLM lm, Tensor ids, int prompt)
    {
        using var scope = torch.NewDisposeScope();
        long t = ids.shape[0];
        using var cache = lm.NewCache(t);
        var rows = new List<Tensor> { lm.Forward(ids.narrow(0, 0, prompt), cache, lastOnly: true)[0] };
        for (long i = prompt; i < t - 1; i++) rows.Add(lm.Forward(ids.narrow(0, i, 1), cache, lastOnly: true)[0]);
        return torch.nn.functional.log_softmax(torch.cat(rows, 0).to(ScalarType.Float32), -1).MoveToOuterDisposeScope();
    }
}
