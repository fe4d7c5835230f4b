using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hici.IO;
using static TorchSharp.torch;

namespace Hici.Lora;

/// <summary>The base config.json with only what the merge changes edited; every other field is kept verbatim.</summary>
internal static class MergedConfig
{
    public static JsonObject Read(string baseDir)
    {
        var path = Path.Combine(baseDir, "config.json");
        using var doc = JsonFiles.Parse(path, JsonFiles.ReadLimited(path, HfConfigReader.MaxBytes));
        return JsonObject.Create(doc.RootElement.Clone())!;
    }

    public static void SetDType(JsonObject c, ScalarType dtype)
    {
        var name = dtype switch
        {
            ScalarType.Float32 => "float32",
            ScalarType.BFloat16 => "bfloat16",
            ScalarType.Float16 => "float16",
            _ => throw new HiciException($"output dtype {dtype} is not supported (float32, bfloat16 or float16)"),
        };
        c["torch_dtype"] = name;
        if (c.ContainsKey("dtype")) c["dtype"] = name;   // transformers ≥ 4.56 writes this name
    }

    public static void SetLinearRope(JsonObject c, double factor)
    {
        // Python writes floats with a decimal point ("4.0"); transformers warns about an int factor.
        var text = factor.ToString("R", CultureInfo.InvariantCulture);
        if (!text.Contains('.') && !text.Contains('E')) text += ".0";
        c["rope_scaling"] = JsonNode.Parse($"{{\"factor\": {text}, \"rope_type\": \"linear\", \"type\": \"linear\"}}");
    }

    public static byte[] ToBytes(JsonObject c)
    {
        var s = c.ToJsonString(new JsonSerializerOptions { WriteIndented = true, IndentSize = 2 });
        return System.Text.Encoding.UTF8.GetBytes(s + "\n");
    }

    public static ScalarType ParseDType(string torchDtype) => torchDtype switch
    {
        "bfloat16" => ScalarType.BFloat16,
        "float16" => ScalarType.Float16,
        _ => ScalarType.Float32,
    };
}
