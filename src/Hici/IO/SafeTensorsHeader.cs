using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using static TorchSharp.torch;

namespace Hici.IO;

/// <summary>One tensor's header entry; offsets are relative to the start of the data region.</summary>
public sealed record SafeTensorsEntry(string Name, ScalarType DType, long[] Shape, long Begin, long End);

/// <summary>
/// A parsed and fully validated safetensors header. Every check the data reader relies on happens here
/// (sizes, offsets, overlaps), so loading can trust the entries.
/// </summary>
public sealed class SafeTensorsHeader
{
    /// <summary>Headers beyond this are refused before allocating (the HF implementation also caps at 100 MB).</summary>
    public const long MaxHeaderBytes = 100L << 20;
    private const int MaxRank = 32;

    public required long DataStart { get; init; }
    public required IReadOnlyList<SafeTensorsEntry> Entries { get; init; }
    public required IReadOnlyDictionary<string, string> Metadata { get; init; }

    public static SafeTensorsHeader Read(string path, SafeFileHandle file, long fileLength)
    {
        if (fileLength < 8)
            throw new HiciException($"{path}: not a safetensors file ({fileLength} bytes, shorter than the 8-byte header length)");
        Span<byte> lenBytes = stackalloc byte[8];
        if (RandomAccess.Read(file, lenBytes, 0) != 8)
            throw new HiciException($"{path}: could not read the header length");
        ulong n = BitConverter.ToUInt64(lenBytes);
        if (n > MaxHeaderBytes)
            throw new HiciException($"{path}: header length {n} bytes exceeds the limit of {MaxHeaderBytes} bytes (corrupt or not safetensors)");
        if ((long)n > fileLength - 8)
            throw new HiciException($"{path}: header length {n} bytes runs past the end of the file ({fileLength} bytes; truncated?)");
        var json = new byte[n];
        int done = 0;
        while (done < json.Length)
        {
            int r = RandomAccess.Read(file, json.AsSpan(done), 8 + done);
            if (r <= 0) throw new HiciException($"{path}: file ends inside the header (truncated?)");
            done += r;
        }
        return Parse(path, json, fileLength - 8 - (long)n, 8 + (long)n);
    }

    internal static SafeTensorsHeader Parse(string path, byte[] json, long dataLength, long dataStart)
    {
        using (var doc = JsonFiles.Parse($"{path}: header", json, maxDepth: 16, strict: true))
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new HiciException($"{path}: header JSON must be an object, got {doc.RootElement.ValueKind}");
            var entries = new List<SafeTensorsEntry>();
            var metadata = new Dictionary<string, string>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(p.Name))
                    throw new HiciException($"{path}: header names '{p.Name}' twice");
                if (p.Name == "__metadata__") ReadMetadata(path, p.Value, metadata);
                else entries.Add(ReadEntry(path, p.Name, p.Value, dataLength));
            }
            CheckExactCover(path, entries, dataLength);
            return new SafeTensorsHeader { DataStart = dataStart, Entries = entries, Metadata = metadata };
        }
    }

    private static void ReadMetadata(string path, JsonElement v, Dictionary<string, string> into)
    {
        if (v.ValueKind != JsonValueKind.Object)
            throw new HiciException($"{path}: __metadata__ must be an object of strings, got {v.ValueKind}");
        foreach (var m in v.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
                throw new HiciException($"{path}: __metadata__ value '{m.Name}' must be a string, got {m.Value.ValueKind}");
            if (!into.TryAdd(m.Name, m.Value.GetString()!))
                throw new HiciException($"{path}: __metadata__ names '{m.Name}' twice");
        }
    }

    private static SafeTensorsEntry ReadEntry(string path, string name, JsonElement v, long dataLength)
    {
        string Where() => $"{path}: tensor '{name}'";
        if (v.ValueKind != JsonValueKind.Object)
            throw new HiciException($"{Where()}: entry must be an object, got {v.ValueKind}");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new HiciException($"{Where()}: missing or non-string 'dtype'");
        var dtName = dt.GetString()!;
        if (!TensorDTypes.TryParseSafeTensors(dtName, out var dtype))
            throw new HiciException($"{Where()}: unsupported dtype '{dtName}' (supported: {TensorDTypes.SupportedSafeTensorsNames})");
        var shape = ReadInts(v, "shape", Where, maxCount: MaxRank);
        var offs = ReadInts(v, "data_offsets", Where, maxCount: 2);
        if (offs.Length != 2)
            throw new HiciException($"{Where()}: 'data_offsets' must be [begin, end], got {offs.Length} numbers");
        long begin = offs[0], end = offs[1];
        if (end < begin)
            throw new HiciException($"{Where()}: data_offsets [{begin}, {end}] end before they begin");
        if (end > dataLength)
            throw new HiciException($"{Where()}: data_offsets [{begin}, {end}] lie past the end of the data region ({dataLength} bytes; truncated?)");
        long? need = TensorDTypes.ByteSize(shape, TensorDTypes.ElementSize(dtype));
        if (need is null)
            throw new HiciException($"{Where()}: shape [{string.Join(", ", shape)}] overflows");
        if (need != end - begin)
            throw new HiciException($"{Where()}: shape [{string.Join(", ", shape)}] of {dtName} needs {need} bytes but data_offsets [{begin}, {end}] hold {end - begin} (shape/size mismatch)");
        return new SafeTensorsEntry(name, dtype, shape, begin, end);
    }

    private static long[] ReadInts(JsonElement v, string field, Func<string> where, int maxCount)
    {
        if (!v.TryGetProperty(field, out var a) || a.ValueKind != JsonValueKind.Array)
            throw new HiciException($"{where()}: missing or non-array '{field}'");
        int count = a.GetArrayLength();
        if (count > maxCount)
            throw new HiciException($"{where()}: '{field}' has {count} entries (at most {maxCount})");
        var r = new long[count];
        int i = 0;
        foreach (var e in a.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out var x) || x < 0)
                throw new HiciException($"{where()}: '{field}' must hold non-negative integers, got {e.GetRawText()}");
            r[i++] = x;
        }
        return r;
    }

    /// <summary>
    /// The tensors must tile the data region exactly, from 0 to its end, as Hugging Face's reader requires
    /// (its "MetadataIncompleteBuffer"): a gap or trailing bytes mean a wrong header length or a damaged file, and
    /// loading such a file anyway read shifted bytes (NaN scores with exit 0).
    /// </summary>
    private static void CheckExactCover(string path, List<SafeTensorsEntry> entries, long dataLength)
    {
        var sorted = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long at = 0;
        SafeTensorsEntry? prev = null;
        foreach (var e in sorted)
        {
            if (e.Begin < at)
                throw new HiciException($"{path}: tensors '{prev!.Name}' [{prev.Begin}, {prev.End}) and '{e.Name}' [{e.Begin}, {e.End}) overlap");
            if (e.Begin > at)
                throw new HiciException($"{path}: bytes [{at}, {e.Begin}) of the data region belong to no tensor (before '{e.Name}'); the header or the data is damaged");
            at = e.End;
            prev = e;
        }
        if (at != dataLength)
            throw new HiciException($"{path}: the tensors end at byte {at} of the data region but it holds {dataLength} bytes (header length wrong, or bytes appended)");
    }
}
