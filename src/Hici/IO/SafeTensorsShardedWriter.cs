using System.Text.Json;
using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace Hici.IO;

/// <summary>
/// Writes a checkpoint folder the way HF transformers does: <c>model-0000i-of-0000n.safetensors</c> shards plus
/// <c>model.safetensors.index.json</c>, or a lone <c>model.safetensors</c> when everything fits in one shard.
/// </summary>
public static partial class SafeTensorsShardedWriter
{
    /// <summary>
    /// Splits <paramref name="tensors"/> (in the given order) into shards of at most <paramref name="maxShardBytes"/>
    /// data bytes (a larger tensor gets a shard of its own) and returns the files written. The index is written last,
    /// so a reader never sees an index naming a shard that is not complete yet.
    /// </summary>
    public static IReadOnlyList<string> Save(string folder, IEnumerable<(string Name, Tensor Tensor)> tensors, long maxShardBytes,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (maxShardBytes <= 0) throw new ArgumentOutOfRangeException(nameof(maxShardBytes), "must be positive");
        var shards = new List<List<(string Name, Tensor Tensor)>> { new() };
        long current = 0, total = 0;
        foreach (var item in tensors)
        {
            long n = SafeTensorsWriter.ByteSize(item.Tensor);
            if (current + n > maxShardBytes && shards[^1].Count > 0) { shards.Add(new()); current = 0; }
            shards[^1].Add(item);
            current += n;
            total += n;
        }
        Directory.CreateDirectory(folder);
        var indexPath = Path.Combine(folder, SafeTensorsIndex.FileName);
        if (shards.Count == 1)
        {
            var single = Path.Combine(folder, "model.safetensors");
            SafeTensorsWriter.Save(single, shards[0], metadata);
            // A stale index would take precedence over the new file when the folder is read.
            if (File.Exists(indexPath)) File.Delete(indexPath);
            RemoveStaleShards(folder, Array.Empty<string>());
            return new[] { single };
        }

        var written = new List<string>();
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < shards.Count; i++)
        {
            var name = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            foreach (var (key, _) in shards[i])
                if (!weightMap.TryAdd(key, name)) throw new HiciException($"{folder}: tensor name '{key}' given twice");
            var path = Path.Combine(folder, name);
            SafeTensorsWriter.Save(path, shards[i], metadata);
            written.Add(path);
        }
        AtomicFile.Write(indexPath, fs =>
        {
            using var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true });
            w.WriteStartObject();
            w.WriteStartObject("metadata");
            w.WriteNumber("total_size", total);
            w.WriteEndObject();
            w.WriteStartObject("weight_map");
            foreach (var kv in weightMap) w.WriteString(kv.Key, kv.Value);
            w.WriteEndObject();
            w.WriteEndObject();
            w.Flush();
            fs.WriteByte((byte)'\n');
        });
        written.Add(indexPath);
        RemoveStaleShards(folder, written);
        return written;
    }

    /// <summary>Shards of an earlier, larger save would otherwise linger beside the new ones (HF removes them too).</summary>
    private static void RemoveStaleShards(string folder, IReadOnlyList<string> keep)
    {
        var keepNames = keep.Select(Path.GetFileName).ToHashSet(StringComparer.Ordinal);
        foreach (var f in Directory.GetFiles(folder, "model-*-of-*.safetensors"))
            if (ShardName().IsMatch(Path.GetFileName(f)) && !keepNames.Contains(Path.GetFileName(f)))
                File.Delete(f);
    }

    [GeneratedRegex(@"^model-\d{5}-of-\d{5}\.safetensors$")]
    private static partial Regex ShardName();
}
