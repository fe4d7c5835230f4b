using System.Text.Json;
using System.Text.Json.Nodes;
using Hici.IO;

namespace Hici.I3;

/// <summary>Where the latent compressor reads a completed chunk: after the RWKV stack (default) or after the last attention layer.</summary>
public enum CompressSource { PostRwkv, Final }

/// <summary>
/// i3 hybrid configuration: Embed → RWKV-4 × NRwkvLayers → memory attention × NAttnLayers → LN → head, with a
/// kernel window W (= chunk length = number of positions), L latents per completed chunk and a history of at
/// most M compressed chunks. Saved as config.json (model_type "i3") beside the weights.
/// </summary>
public sealed record I3Config
{
    public int VocabSize { get; init; } = 512;
    public int DModel { get; init; } = 64;
    public int NRwkvLayers { get; init; } = 2;
    public int NAttnLayers { get; init; } = 2;
    public int NHeadsRequested { get; init; } = 8;
    public int FfnMult { get; init; } = 4;
    public int KernelWindow { get; init; } = 64;
    public int LatentsPerChunk { get; init; } = 8;
    public int MaxCompressedChunks { get; init; } = 3;
    public int CompressorHeadsRequested { get; init; } = 8;
    public int CompressorFfnMult { get; init; } = 4;
    public int WkvBlock { get; init; } = 16;
    public bool CarryRwkvState { get; init; }
    public CompressSource CompressFrom { get; init; } = CompressSource.PostRwkv;
    public bool UseAgeEmbedding { get; init; } = true;
    public double LayerNormEps { get; init; } = 1e-5;
    /// <summary>Compression warmup: the memory gate α is 0 before this optimizer step, then ramps to 1 over <see cref="CompressionRamp"/> steps.</summary>
    public int CompressionStart { get; init; } = 100;
    public int CompressionRamp { get; init; } = 50;

    /// <summary>The card's i3-4096ctx configuration (343,753,020 parameters).</summary>
    public static I3Config Full => new()
    {
        VocabSize = 32000, DModel = 1180, NRwkvLayers = 12, NAttnLayers = 2, KernelWindow = 512,
        LatentsPerChunk = 32, MaxCompressedChunks = 8, WkvBlock = 8,
    };

    /// <summary>CPU test configuration (329,088 parameters).</summary>
    public static I3Config Tiny => new();

    /// <summary>A few-minute CPU training run: full-length 512-token chunks and the full 8-chunk history, narrow and shallow.</summary>
    public static I3Config Small => new()
    {
        VocabSize = 4096, DModel = 128, NRwkvLayers = 4, NAttnLayers = 2, KernelWindow = 512,
        LatentsPerChunk = 16, MaxCompressedChunks = 8, WkvBlock = 4,
    };

    public static IReadOnlyList<string> PresetNames => ["full", "small", "tiny"];

    public static I3Config Preset(string name) => name.ToLowerInvariant() switch
    {
        "full" => Full,
        "small" => Small,
        "tiny" => Tiny,
        _ => throw new HiciException($"unknown i3 preset '{name}' (use {string.Join(", ", PresetNames)})"),
    };

    public int Heads => AdjustHeads(DModel, NHeadsRequested);
    public int CompressorHeads => AdjustHeads(DModel, CompressorHeadsRequested);

    /// <summary>
    /// The largest head count ≤ requested that divides d: (1180, 8) → 5 (the card's "automatic head-count
    /// adjustment"; 8 heads of 147.5 do not exist). Rejected: 8 heads of ⌈d/8⌉, whose inner width ≠ d.
    /// </summary>
    public static int AdjustHeads(int d, int requested)
    {
        if (d <= 0 || requested <= 0) throw new HiciException($"head count {requested} for width {d}: both must be positive");
        for (int h = Math.Min(requested, d); h >= 1; h--) if (d % h == 0) return h;
        return 1;
    }

    public void Validate()
    {
        var bad = new List<string>();
        if (VocabSize < 269) bad.Add($"vocab_size {VocabSize} < 269 (13 special tokens + 256 bytes)");
        if (DModel <= 0 || NRwkvLayers < 0 || NAttnLayers < 0 || FfnMult <= 0 || CompressorFfnMult <= 0) bad.Add("d_model, layer counts and FFN multipliers must be positive");
        if (KernelWindow <= 0 || LatentsPerChunk <= 0 || MaxCompressedChunks < 0 || WkvBlock <= 0) bad.Add("kernel_window, latents_per_chunk, wkv_block must be positive, max_compressed_chunks ≥ 0");
        if (NHeadsRequested <= 0 || CompressorHeadsRequested <= 0) bad.Add("head counts must be positive");
        if (LayerNormEps <= 0) bad.Add("layer_norm_eps must be positive");
        if (CompressionStart < 0 || CompressionRamp <= 0) bad.Add("compression_start ≥ 0 and compression_ramp > 0 required");
        if ((long)DModel * Math.Max(FfnMult, CompressorFfnMult) > int.MaxValue || DModel > 1 << 16 || VocabSize > 1 << 24 || KernelWindow > 1 << 16)
            bad.Add("sizes out of range (d_model ≤ 65536, vocab ≤ 16M, kernel_window ≤ 65536)");
        if (bad.Count > 0) throw new HiciException("invalid i3 config: " + string.Join("; ", bad));
    }

    /// <summary>Compression warmup gate α for optimizer step <paramref name="step"/> (0-based): 0 before start, then (i−start+1)/ramp, capped at 1.</summary>
    public double Gate(long step) => step < CompressionStart ? 0.0 : Math.Min(1.0, (step - CompressionStart + 1) / (double)CompressionRamp);

    // ---------------------------------------------------------------- parameter count

    public long RwkvBlockParameters { get { long d = DModel; return 4 * d * d + 5 * d + 2 * FfnMult * d * d + d * d + 2 * d + 4 * d; } }
    public long AttnBlockParameters { get { long d = DModel, f = FfnMult * d; return 3 * d * d + 3 * d + d * d + d + 2 * d * f + f + d + 4 * d; } }
    public long CompressorParameters { get { long d = DModel, f = CompressorFfnMult * d; return LatentsPerChunk * d + 4 * d * d + 4 * d + 2 * d * f + f + d + 8 * d; } }
    public long AgeParameters => UseAgeEmbedding ? (long)MaxCompressedChunks * DModel : 0;

    /// <summary>Analytic parameter count (the test checks it against the built module).</summary>
    public long CountParameters()
    {
        long d = DModel, v = VocabSize;
        long embed = v * d + (long)KernelWindow * d;
        long head = 2 * d + v * d + v;
        return embed + NRwkvLayers * RwkvBlockParameters + NAttnLayers * AttnBlockParameters + head + CompressorParameters + AgeParameters;
    }

    // ---------------------------------------------------------------- JSON (config.json beside the weights)

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public const string ModelType = "i3";
    public const long MaxConfigBytes = 1 << 20;

    public string ToJson()
    {
        var node = JsonSerializer.SerializeToNode(this, Json)!.AsObject();
        node.Insert(0, "model_type", ModelType);
        node["num_heads_effective"] = Heads;
        node["compressor_heads_effective"] = CompressorHeads;
        return node.ToJsonString(Json);
    }

    public static I3Config FromJson(string json, string origin)
    {
        JsonObject obj;
        obj = JsonFiles.ParseNode(origin, System.Text.Encoding.UTF8.GetBytes(json)) as JsonObject ?? throw new HiciException($"{origin}: not a JSON object");
        string? type = obj["model_type"] is JsonValue mt && mt.TryGetValue<string>(out var t) ? t : null;
        if (type != ModelType) throw new HiciException($"{origin}: model_type '{type}' is not '{ModelType}'");
        obj.Remove("model_type"); obj.Remove("num_heads_effective"); obj.Remove("compressor_heads_effective");
        I3Config cfg;
        try { cfg = obj.Deserialize<I3Config>(Json) ?? throw new HiciException($"{origin}: empty config"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException) { throw new HiciException($"{origin}: bad i3 config ({e.Message})"); }
        try { cfg.Validate(); }
        catch (HiciException e) { throw new HiciException($"{origin}: {e.Message}"); }
        return cfg;
    }

    /// <summary>True when the folder's config.json names model_type "i3"; a malformed config is not an i3 folder
    /// here (the loader that reads it next reports the problem as a one-line error).</summary>
    public static bool IsI3Folder(string dir) => HfConfigReader.ReadModelType(dir) == ModelType;

    public static I3Config Load(string dir)
    {
        var path = Path.Combine(dir, "config.json");
        if (!File.Exists(path)) throw new HiciException($"{path}: no such file");
        return FromJson(InputFiles.ReadText(path, MaxConfigBytes), path);
    }

    public void Save(string dir) =>
        AtomicFile.Write(Path.Combine(dir, "config.json"), s => s.Write(System.Text.Encoding.UTF8.GetBytes(ToJson() + "\n")));
}
