using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.IO;

/// <summary>Writes safetensors files that the HF <c>safetensors</c> library and this reader both accept.</summary>
public static class SafeTensorsWriter
{
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
        => Save(path, tensors.Select(kv => (kv.Key, kv.Value)), metadata);

    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/> atomically. Data is laid out by element size
    /// (largest first) then name, like the HF writer, so every tensor starts aligned to its element size and
    /// can be memory-mapped; the header is padded with spaces to a multiple of 8 bytes.
    /// </summary>
    public static void Save(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = Order(path, tensors);
        var header = BuildHeader(list, metadata);
        AtomicFile.Write(path, fs =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            fs.Write(len);
            fs.Write(header);
            foreach (var (_, t) in list)
            {
                using var scope = torch.NewDisposeScope();
                var c = t.device_type == DeviceType.CPU ? t.contiguous() : t.to(CPU).contiguous();
                TensorBytes.Write(fs, c);
            }
        });
    }

    /// <summary>The bytes a tensor occupies in a safetensors file (for shard planning).</summary>
    public static long ByteSize(Tensor t) => t.numel() * TensorDTypes.ElementSize(t.dtype);

    private static List<(string Name, Tensor Tensor)> Order(string path, IEnumerable<(string Name, Tensor Tensor)> tensors)
    {
        var list = tensors.ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, t) in list)
        {
            if (name == "__metadata__") throw new HiciException($"{path}: '__metadata__' cannot be a tensor name");
            if (!seen.Add(name)) throw new HiciException($"{path}: tensor name '{name}' given twice");
            _ = SafeName(path, name, t.dtype);
        }
        return list
            .OrderByDescending(x => TensorDTypes.ElementSize(x.Tensor.dtype))
            .ThenBy(x => x.Name, StringComparer.Ordinal)
            .ToList();
    }

    private static string SafeName(string path, string name, ScalarType dt)
    {
        try { return TensorDTypes.SafeTensorsName(dt); }
        catch (HiciException e) { throw new HiciException($"{path}: tensor '{name}': {e.Message}"); }
    }

    private static byte[] BuildHeader(List<(string Name, Tensor Tensor)> list, IReadOnlyDictionary<string, string>? metadata)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var kv in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(kv.Key, kv.Value);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in list)
            {
                long n = ByteSize(t);
                w.WriteStartObject(name);
                w.WriteString("dtype", TensorDTypes.SafeTensorsName(t.dtype));
                w.WriteStartArray("shape");
                foreach (var d in t.shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + n);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += n;
            }
            w.WriteEndObject();
        }
        int pad = (int)((8 - ms.Length % 8) % 8);
        for (int i = 0; i < pad; i++) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }
}
