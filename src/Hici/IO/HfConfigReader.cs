using System.Text;
using System.Text.Json;
using Hici.Models;

namespace Hici.IO;

/// <summary>
/// Reads a Hugging Face <c>config.json</c> (model_type llama or qwen3) into a validated <see cref="ModelConfig"/>.
/// Defaults follow transformers' LlamaConfig/Qwen3Config; anything the model code cannot run (another
/// architecture, an unknown RoPE scaling, sliding windows, MLP bias) is refused here rather than computed wrongly.
/// </summary>
public static class HfConfigReader
{
    public const long MaxBytes = 4L << 20;
    public static readonly IReadOnlyList<string> SupportedModelTypes = new[] { "llama", "qwen3" };
    private static readonly string[] Dtypes = { "float32", "float16", "bfloat16", "float64" };

    /// <summary>Reads <paramref name="path"/>, a config.json or a folder holding one.</summary>
    public static ModelConfig Read(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "config.json");
        if (!File.Exists(path)) throw new HiciException($"{path}: no such file");
        return Parse(JsonFiles.ReadLimited(path, MaxBytes), path);
    }

    /// <summary>
    /// Only config.json's model_type (null when absent or the file is not readable JSON: <see cref="Read"/>
    /// then reports the problem), so a loader can pick the model family before parsing the rest.
    /// </summary>
    public static string? ReadModelType(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "config.json");
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonFiles.Parse(path, JsonFiles.ReadLimited(path, MaxBytes));
            return new HfConfigFields(doc.RootElement, path).String("model_type");
        }
        catch (HiciException) { return null; }
    }

    public static ModelConfig Parse(string json, string origin) => Parse(Encoding.UTF8.GetBytes(json), origin);

    public static ModelConfig Parse(byte[] json, string origin)
    {
        using var doc = JsonFiles.Parse(origin, json);
        var c = new HfConfigFields(doc.RootElement, origin);
        var modelType = c.String("model_type") ?? throw c.Error("model_type", "is missing");
        if (!SupportedModelTypes.Contains(modelType))
            throw c.Error("model_type", $"'{modelType}' is not supported (supported: {string.Join(", ", SupportedModelTypes)})");
        var act = c.String("hidden_act");
        if (act is not null && act != "silu") throw c.Error("hidden_act", $"'{act}' is not supported (only silu)");
        if (c.Bool("mlp_bias") == true) throw c.Error("mlp_bias", "true is not supported");
        if (c.Bool("use_sliding_window") == true) throw c.Error("use_sliding_window", "true is not supported");

        int hidden = c.Positive("hidden_size", 1 << 20) ?? throw c.Error("hidden_size", "is missing");
        int heads = c.Positive("num_attention_heads", 1 << 16) ?? throw c.Error("num_attention_heads", "is missing");
        int kvHeads = c.Positive("num_key_value_heads", 1 << 16) ?? heads;
        if (heads % kvHeads != 0)
            throw c.Error("num_key_value_heads", $"{kvHeads} does not divide num_attention_heads {heads}");
        int? headDim = c.Positive("head_dim", 1 << 16);
        if (headDim is null && hidden % heads != 0)
            throw c.Error("hidden_size", $"{hidden} is not divisible by num_attention_heads {heads} and no head_dim is given");
        int vocab = c.Positive("vocab_size") ?? throw c.Error("vocab_size", "is missing");
        int maxPos = c.Positive("max_position_embeddings") ?? 2048;

        var dtype = c.String("torch_dtype") ?? c.String("dtype") ?? "float32";
        if (!Dtypes.Contains(dtype)) throw c.Error("torch_dtype", $"'{dtype}' is not supported (supported: {string.Join(", ", Dtypes)})");

        return new ModelConfig
        {
            ModelType = modelType,
            VocabSize = vocab,
            HiddenSize = hidden,
            IntermediateSize = c.Positive("intermediate_size", 1 << 22) ?? throw c.Error("intermediate_size", "is missing"),
            NumHiddenLayers = c.Positive("num_hidden_layers", 1 << 14) ?? throw c.Error("num_hidden_layers", "is missing"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim ?? hidden / heads,
            RmsNormEps = c.PositiveDouble("rms_norm_eps") ?? 1e-6,
            RopeTheta = c.PositiveDouble("rope_theta") ?? 10000.0,
            RopeScaling = HfRopeScaling.Read(c),
            MaxPositionEmbeddings = maxPos,
            TieWordEmbeddings = c.Bool("tie_word_embeddings") ?? false,
            AttentionBias = c.Bool("attention_bias") ?? false,
            BosTokenId = c.TokenId("bos_token_id", vocab),
            EosTokenIds = c.TokenIds("eos_token_id", vocab),
            PadTokenId = c.PadTokenId(vocab),
            TorchDtype = dtype,
        };
    }
}
