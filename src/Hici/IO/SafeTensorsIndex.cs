using System.Text.Json;

namespace Hici.IO;

/// <summary>A sharded checkpoint's <c>model.safetensors.index.json</c>: which shard file holds each tensor.</summary>
public sealed class SafeTensorsIndex
{
    public const string FileName = "model.safetensors.index.json";
    public const long MaxBytes = 100L << 20;

    /// <summary>Tensor name → shard file name (a bare name in the index's folder), in file order.</summary>
    public required IReadOnlyList<KeyValuePair<string, string>> WeightMap { get; init; }
    public required IReadOnlyDictionary<string, JsonElement> Metadata { get; init; }

    public static SafeTensorsIndex Read(string path)
    {
        var bytes = JsonFiles.ReadLimited(path, MaxBytes);
        using var doc = JsonFiles.Parse(path, bytes);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw new HiciException($"{path}: must be a JSON object, got {root.ValueKind}");
        if (!root.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
            throw new HiciException($"{path}: missing or non-object 'weight_map'");
        var map = new List<KeyValuePair<string, string>>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in wm.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new HiciException($"{path}: weight_map entry '{p.Name}' must be a shard file name, got {p.Value.ValueKind}");
            var shard = p.Value.GetString()!;
            // The index is input too: a shard name must not reach outside the checkpoint folder.
            if (shard.Length == 0 || shard is "." or ".." || shard.IndexOfAny(['/', '\\', '\0']) >= 0 || System.IO.Path.IsPathRooted(shard))
                throw new HiciException($"{path}: weight_map entry '{p.Name}' names shard '{shard}', which is not a plain file name");
            if (!seen.Add(p.Name))
                throw new HiciException($"{path}: weight_map names tensor '{p.Name}' twice");
            map.Add(new(p.Name, shard));
        }
        var meta = new Dictionary<string, JsonElement>();
        if (root.TryGetProperty("metadata", out var m) && m.ValueKind == JsonValueKind.Object)
            foreach (var p in m.EnumerateObject()) meta[p.Name] = p.Value.Clone();
        return new SafeTensorsIndex { WeightMap = map, Metadata = meta };
    }
}
