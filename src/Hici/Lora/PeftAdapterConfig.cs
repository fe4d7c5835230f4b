using System.Text;
using System.Text.Json;
using Hici.IO;

namespace Hici.Lora;

/// <summary>
/// PEFT's <c>adapter_config.json</c> for a LoRA adapter. Only what this code can reproduce exactly is
/// accepted: LoRA on Linear layers, bias "none", no modules_to_save, no per-layer rank/alpha patterns,
/// no DoRA; anything else is refused with the field named rather than silently computed differently.
/// </summary>
public sealed record PeftAdapterConfig
{
    public const string FileName = "adapter_config.json";
    public const long MaxBytes = 1L << 20;

    public required LoraConfig Lora { get; init; }
    public string? BaseModelNameOrPath { get; init; }
    public string? TaskType { get; init; } = "CAUSAL_LM";
    public string? Revision { get; init; }

    /// <summary>Reads <paramref name="path"/>, an adapter_config.json or a folder holding one.</summary>
    public static PeftAdapterConfig Read(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, FileName);
        if (!File.Exists(path)) throw new HiciException($"{path}: no such file (a PEFT adapter folder holds {FileName})");
        return Parse(JsonFiles.ReadLimited(path, MaxBytes), path);
    }

    public static PeftAdapterConfig Parse(string json, string origin) => Parse(Encoding.UTF8.GetBytes(json), origin);

    public static PeftAdapterConfig Parse(byte[] json, string origin)
    {
        using var doc = JsonFiles.Parse(origin, json);
        var root = doc.RootElement;
        var c = new HfConfigFields(root, origin);

        var peftType = c.String("peft_type");
        if (peftType is not null && peftType != "LORA") throw c.Error("peft_type", $"'{peftType}' is not supported (only LORA)");
        var task = c.String("task_type");
        if (task is not null && task != "CAUSAL_LM") throw c.Error("task_type", $"'{task}' is not supported (only CAUSAL_LM)");
        var bias = c.String("bias") ?? "none";
        if (bias != "none") throw c.Error("bias", $"'{bias}' is not supported (only \"none\": the adapter would carry bias terms)");
        if (c.Bool("fan_in_fan_out") == true) throw c.Error("fan_in_fan_out", "true is for GPT-2 Conv1D layers, which these models do not have");
        if (c.Bool("use_dora") == true) throw c.Error("use_dora", "true is not supported (DoRA)");
        RefuseNonEmpty(root, c, "modules_to_save", "the adapter would replace whole modules");
        RefuseNonEmpty(root, c, "layers_to_transform", "per-layer selection is not supported");
        RefuseNonEmpty(root, c, "rank_pattern", "per-module ranks are not supported");
        RefuseNonEmpty(root, c, "alpha_pattern", "per-module alphas are not supported");

        int r = c.Positive("r") ?? throw c.Error("r", "is missing");
        double alpha = c.PositiveDouble("lora_alpha") ?? throw c.Error("lora_alpha", "is missing");
        double dropout = Dropout(root, c);
        var lora = new LoraConfig { R = r, Alpha = alpha, Dropout = dropout, UseRsLora = c.Bool("use_rslora") ?? false };
        lora = Targets(root, c, lora);
        lora.Validate(origin);
        return new PeftAdapterConfig
        {
            Lora = lora,
            BaseModelNameOrPath = c.String("base_model_name_or_path"),
            TaskType = task,
            Revision = c.String("revision"),
        };
    }

    private static double Dropout(JsonElement root, HfConfigFields c)
    {
        if (!root.TryGetProperty("lora_dropout", out var v) || v.ValueKind == JsonValueKind.Null) return 0;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d) || d < 0 || d >= 1)
            throw c.Error("lora_dropout", $"must be a number in [0, 1), got {v.GetRawText()}");
        return d;
    }

    private static LoraConfig Targets(JsonElement root, HfConfigFields c, LoraConfig lora)
    {
        if (!root.TryGetProperty("target_modules", out var v) || v.ValueKind == JsonValueKind.Null)
            throw c.Error("target_modules", "is missing (PEFT would fall back to per-architecture defaults; name the modules)");
        switch (v.ValueKind)
        {
            case JsonValueKind.String:
                return lora with { TargetRegex = v.GetString()! };
            case JsonValueKind.Array:
                var names = new List<string>();
                foreach (var e in v.EnumerateArray())
                {
                    if (e.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(e.GetString()))
                        throw c.Error("target_modules", $"must hold module names, got {e.GetRawText()}");
                    names.Add(e.GetString()!);
                }
                if (names.Count == 0) throw c.Error("target_modules", "is empty");
                return lora with { TargetModules = names };
            default:
                throw c.Error("target_modules", $"must be a list of module names or a regex string, got {v.GetRawText()}");
        }
    }

    private static void RefuseNonEmpty(JsonElement root, HfConfigFields c, string field, string why)
    {
        if (!root.TryGetProperty(field, out var v)) return;
        bool empty = v.ValueKind switch
        {
            JsonValueKind.Null => true,
            JsonValueKind.Array => v.GetArrayLength() == 0,
            JsonValueKind.Object => !v.EnumerateObject().Any(),
            _ => false,
        };
        if (!empty) throw c.Error(field, $"{v.GetRawText()} is not supported ({why})");
    }

    /// <summary>The JSON PEFT 0.5 writes (sorted keys, indent 2), so PEFT and the reference scripts read it back.</summary>
    public byte[] ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            var fields = new SortedDictionary<string, Action>(StringComparer.Ordinal)
            {
                ["auto_mapping"] = () => w.WriteNullValue(),
                ["base_model_name_or_path"] = () => WriteStringOrNull(w, BaseModelNameOrPath),
                ["bias"] = () => w.WriteStringValue("none"),
                ["fan_in_fan_out"] = () => w.WriteBooleanValue(false),
                ["inference_mode"] = () => w.WriteBooleanValue(true),
                ["init_lora_weights"] = () => w.WriteBooleanValue(true),
                ["layers_pattern"] = () => w.WriteNullValue(),
                ["layers_to_transform"] = () => w.WriteNullValue(),
                ["lora_alpha"] = () => WriteNumber(w, Lora.Alpha),
                ["lora_dropout"] = () => w.WriteNumberValue(Lora.Dropout),
                ["modules_to_save"] = () => w.WriteNullValue(),
                ["peft_type"] = () => w.WriteStringValue("LORA"),
                ["r"] = () => w.WriteNumberValue(Lora.R),
                ["revision"] = () => WriteStringOrNull(w, Revision),
                ["target_modules"] = () =>
                {
                    if (Lora.TargetRegex is not null) { w.WriteStringValue(Lora.TargetRegex); return; }
                    w.WriteStartArray();
                    foreach (var t in Lora.TargetModules) w.WriteStringValue(t);
                    w.WriteEndArray();
                },
                ["task_type"] = () => WriteStringOrNull(w, TaskType),
            };
            if (Lora.UseRsLora) fields["use_rslora"] = () => w.WriteBooleanValue(true);
            w.WriteStartObject();
            foreach (var (name, write) in fields) { w.WritePropertyName(name); write(); }
            w.WriteEndObject();
        }
        ms.WriteByte((byte)'\n');
        return ms.ToArray();
    }

    private static void WriteStringOrNull(Utf8JsonWriter w, string? s)
    {
        if (s is null) w.WriteNullValue(); else w.WriteStringValue(s);
    }

    // PEFT configs hold lora_alpha as an int (16); write it back the same way when it is one.
    private static void WriteNumber(Utf8JsonWriter w, double x)
    {
        if (Math.Floor(x) == x && Math.Abs(x) < 1e15) w.WriteNumberValue((long)x); else w.WriteNumberValue(x);
    }
}
