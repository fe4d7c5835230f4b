using System.Text.Json;

namespace Hici.Text;

/// <summary>A tokenizer JSON file read through <see cref="Hici.IO.JsonFiles"/>; wrong field types become
/// a <see cref="HiciException"/> naming the file and the JSON path.</summary>
internal sealed class JsonFile : IDisposable
{
    public string Path { get; }
    public JsonDocument Document { get; }
    public JsonElement Root => Document.RootElement;

    JsonFile(string path, JsonDocument doc) { Path = path; Document = doc; }

    public static JsonFile Read(string path, long maxBytes)
    {
        var doc = Hici.IO.JsonFiles.Read(path, maxBytes, maxDepth: 128);
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            var kind = doc.RootElement.ValueKind;
            doc.Dispose();
            throw new HiciException($"{path}: expected a JSON object at the top level, found {kind}");
        }
        return new JsonFile(path, doc);
    }

    public HiciException Error(string where, string problem) => new($"{Path}: {where}: {problem}");

    public JsonElement? Get(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public JsonElement Object(JsonElement obj, string name, string where) => Get(obj, name) is { ValueKind: JsonValueKind.Object } v
        ? v : throw Error($"{where}.{name}", "missing or not an object");

    public JsonElement Array(JsonElement obj, string name, string where) => Get(obj, name) is { ValueKind: JsonValueKind.Array } v
        ? v : throw Error($"{where}.{name}", "missing or not an array");

    public string? String(JsonElement obj, string name, string where) => Get(obj, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } v => v.GetString(),
        var v => throw Error($"{where}.{name}", $"expected a string, found {v.Value.ValueKind}"),
    };

    public string RequiredString(JsonElement obj, string name, string where) =>
        String(obj, name, where) ?? throw Error($"{where}.{name}", "missing");

    public bool Bool(JsonElement obj, string name, string where, bool fallback) => Get(obj, name) switch
    {
        null => fallback,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        var v => throw Error($"{where}.{name}", $"expected true/false, found {v.Value.ValueKind}"),
    };

    public int Int(JsonElement obj, string name, string where, int? fallback = null, int min = 0, int max = int.MaxValue)
    {
        var v = Get(obj, name);
        if (v is null) return fallback ?? throw Error($"{where}.{name}", "missing");
        if (v.Value.ValueKind != JsonValueKind.Number || !v.Value.TryGetInt32(out int i))
            throw Error($"{where}.{name}", $"expected an integer, found {v.Value.GetRawText()}");
        if (i < min || i > max) throw Error($"{where}.{name}", $"{i} is out of range [{min}, {max}]");
        return i;
    }

    public void Dispose() => Document.Dispose();
}
