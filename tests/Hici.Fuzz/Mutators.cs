using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Hici.Fuzz;

/// <summary>
/// Structure-aware mutations: each input kind is changed where its parser makes decisions (JSON values and keys,
/// the safetensors header and its length field, pickle integers and zip entries), plus plain byte damage.
/// Everything is drawn from the given <see cref="Random"/>, so a case is reproducible from its seed.
/// </summary>
public static class Mutators
{
    static readonly byte[][] BadUtf8 =
    [
        [0xC3, 0x28], [0xFF], [0xFE, 0xFF], [0xED, 0xA0, 0x80], [0xED, 0xB2, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80],
        [0xC0, 0xAF], [0xE2, 0x82], [0xF4, 0x90, 0x80, 0x80], [0x00],
    ];

    static readonly string[] JsonTokens =
    [
        "{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "\\udc80", "\\ud800\\u0041", "1e999999", "-", "NaN", "null", "/*", "//",
    ];

    // ---- bytes ----

    public static byte[] Bytes(Random r, byte[] input, int maxOps = 4)
    {
        var b = new List<byte>(input);
        int ops = 1 + r.Next(maxOps);
        for (int k = 0; k < ops; k++)
        {
            int n = b.Count;
            switch (r.Next(10))
            {
                case 0 when n > 0: { int i = r.Next(n); b[i] ^= (byte)(1 << r.Next(8)); break; }
                case 1 when n > 0: { int i = r.Next(n); b[i] = (byte)new[] { 0, 0xFF, 0x7F, 0x80, '"', '{', '\\', '0', '9', ' ' }[r.Next(10)]; break; }
                case 2: { int i = r.Next(n + 1); b.InsertRange(i, RandomBytes(r, 1 + r.Next(16))); break; }
                case 3 when n > 0: { int i = r.Next(n); b.RemoveRange(i, Math.Min(n - i, 1 + r.Next(64))); break; }
                case 4 when n > 0: { int i = r.Next(n), len = Math.Min(n - i, 1 + r.Next(256)); b.InsertRange(r.Next(b.Count + 1), b.GetRange(i, len)); break; }
                case 5 when n > 0: { int i = r.Next(n); b.RemoveRange(i, n - i); break; }                  // truncate
                case 6: b.AddRange(RandomBytes(r, 1 + r.Next(r.Next(2) == 0 ? 8 : 4096))); break;          // append junk
                case 7: b.InsertRange(r.Next(n + 1), BadUtf8[r.Next(BadUtf8.Length)]); break;
                case 8: b.InsertRange(r.Next(n + 1), Encoding.UTF8.GetBytes(JsonTokens[r.Next(JsonTokens.Length)])); break;
                default: if (n > 0) { int i = r.Next(n); b[i] = (byte)r.Next(256); } break;
            }
        }
        return b.ToArray();
    }

    static byte[] RandomBytes(Random r, int n) { var x = new byte[n]; r.NextBytes(x); return x; }

    // ---- JSON ----

    /// <summary>Values that sit on the edges parsers decide on: int/long limits, floats, types, strings, nesting.</summary>
    static JsonNode? InterestingValue(Random r) => r.Next(24) switch
    {
        0 => 0, 1 => -1, 2 => 1, 3 => int.MaxValue, 4 => 2147483648L, 5 => int.MinValue, 6 => long.MaxValue,
        7 => JsonNode.Parse("1e308"), 8 => JsonNode.Parse("-1e308"), 9 => 1.5, 10 => 1e-30, 11 => "",
        12 => new string('a', 1 + r.Next(200_000)), 13 => null, 14 => true, 15 => new JsonArray(), 16 => new JsonObject(),
        17 => Deep(r.Next(10, 300)), 18 => "NaN", 19 => JsonNode.Parse("[0,1,2,3,1000000000,-5]"), 20 => 65536,
        21 => JsonNode.Parse("1e9"), 22 => "\u0000\u001f", _ => 1 << r.Next(31),
    };

    static JsonNode Deep(int depth)
    {
        JsonNode n = new JsonArray();
        for (int i = 0; i < depth; i++) n = new JsonArray(n);
        return n;
    }

    /// <summary>Parses, changes 1–3 values or keys, serialises; sometimes also breaks the syntax. Falls back to bytes.</summary>
    public static byte[] Json(Random r, byte[] input)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(input, documentOptions: new JsonDocumentOptions { MaxDepth = 512, AllowTrailingCommas = true }); }
        catch (Exception) { return Bytes(r, input); }
        if (root is null) return Bytes(r, input);
        int ops = 1 + r.Next(3);
        // A key twice in an object parses lazily and throws on first enumeration (an input earlier mutations made).
        try { for (int k = 0; k < ops; k++) root = MutateNode(r, root); }
        catch (ArgumentException) { return Bytes(r, input); }
        string text;
        try { text = root.ToJsonString(); }
        catch (Exception) { return Bytes(r, input); }
        // Lone surrogates cannot be written by the serializer: splice a raw escape into some string.
        if (r.Next(12) == 0 && text.IndexOf("\":\"", StringComparison.Ordinal) is var q and >= 0)
            text = text.Insert(q + 3, r.Next(2) == 0 ? "\\udc80" : "\\ud800");
        if (r.Next(10) == 0 && text.IndexOf("\":", StringComparison.Ordinal) is var d and > 0)
        {   // a duplicate key: copy the first "key": value pair
            int keyStart = text.LastIndexOf('"', d - 1);
            int comma = text.IndexOf(',', d);
            if (keyStart > 0 && comma > d) text = text.Insert(keyStart, text[keyStart..(comma + 1)]);
        }
        var bytes = Encoding.UTF8.GetBytes(text);
        return r.Next(6) == 0 ? Bytes(r, bytes, 2) : bytes;
    }

    static JsonNode MutateNode(Random r, JsonNode root)
    {
        var all = new List<JsonNode>();
        Collect(root, all, 0);
        var target = all[r.Next(all.Count)];
        switch (r.Next(6))
        {
            case 0 when target is JsonObject o && o.Count > 0:   // remove a key
                o.Remove(o.ElementAt(r.Next(o.Count)).Key);
                break;
            case 1 when target is JsonObject o:                  // add an unknown or a known key with a wild value
                o[o.Count > 0 && r.Next(2) == 0 ? o.ElementAt(r.Next(o.Count)).Key + "_x" : "fuzz"] = InterestingValue(r);
                break;
            case 2 when target is JsonArray a && a.Count > 0:    // duplicate / drop elements
                if (r.Next(2) == 0) a.RemoveAt(r.Next(a.Count));
                else a.Add(a[r.Next(a.Count)]?.DeepClone());
                break;
            default:
                if (target.Parent is JsonObject po)
                {
                    var key = po.First(kv => ReferenceEquals(kv.Value, target)).Key;
                    po[key] = InterestingValue(r);
                }
                else if (target.Parent is JsonArray pa) pa[pa.IndexOf(target)] = InterestingValue(r);
                else if (target is JsonObject ro && ro.Count > 0) ro[ro.ElementAt(r.Next(ro.Count)).Key] = InterestingValue(r);
                break;
        }
        return root;
    }

    static void Collect(JsonNode? n, List<JsonNode> into, int depth)
    {
        if (n is null || into.Count > 20_000 || depth > 64) return;
        into.Add(n);
        if (n is JsonObject o) foreach (var kv in o) Collect(kv.Value, into, depth + 1);
        else if (n is JsonArray a) foreach (var x in a) Collect(x, into, depth + 1);
    }

    // ---- safetensors ----

    /// <summary>Header JSON, its length field, and the data region (appended, cut, or damaged).</summary>
    public static byte[] SafeTensors(Random r, byte[] input)
    {
        if (input.Length < 8) return Bytes(r, input);
        long n = BitConverter.ToInt64(input, 0);
        if (n < 0 || n > input.Length - 8) return Bytes(r, input);
        var header = input.AsSpan(8, (int)n).ToArray();
        var data = input.AsSpan(8 + (int)n).ToArray();
        switch (r.Next(7))
        {
            case 0:
            case 1:
            case 2: header = Json(r, header); break;
            case 3: data = r.Next(2) == 0 ? data.Concat(RandomBytes(r, 1 + r.Next(64))).ToArray() : data[..r.Next(data.Length + 1)]; break;
            case 4: { var len = new long[] { n + 1, n - 1, n + 8, 0, long.MaxValue, 1L << 40, input.Length }[r.Next(7)]; return Join(len, header, data); }
            case 5: if (data.Length > 0) data[r.Next(data.Length)] ^= 0xFF; break;
            default: return Bytes(r, input);
        }
        return Join(header.Length, header, data);
    }

    static byte[] Join(long lengthField, byte[] header, byte[] data)
    {
        var o = new byte[8 + header.Length + data.Length];
        BitConverter.TryWriteBytes(o.AsSpan(0, 8), lengthField);
        header.CopyTo(o, 8);
        data.CopyTo(o, 8 + header.Length);
        return o;
    }

    // ---- PyTorch zip pickle ----

    /// <summary>
    /// Rebuilds the zip (stored entries, as torch writes) after changing the pickle's integers (sizes, strides,
    /// offsets, numels — where stride-0 views and huge declared storages come from), its bytes, or the entries.
    /// </summary>
    public static byte[] TorchZip(Random r, byte[] input)
    {
        List<(string Name, byte[] Data)> entries;
        try
        {
            using var zin = new ZipArchive(new MemoryStream(input), ZipArchiveMode.Read);
            entries = zin.Entries.Select(e =>
            {
                using var s = e.Open();
                var ms = new MemoryStream();
                s.CopyTo(ms);
                return (e.FullName, ms.ToArray());
            }).ToList();
        }
        catch (Exception) { return Bytes(r, input); }
        int pkl = entries.FindIndex(e => e.Name.EndsWith("/data.pkl", StringComparison.Ordinal));
        switch (r.Next(8))
        {
            case 0: case 1: case 2: case 3:
                if (pkl >= 0) entries[pkl] = (entries[pkl].Name, PickleInts(r, entries[pkl].Data));
                break;
            case 4:
                if (pkl >= 0) entries[pkl] = (entries[pkl].Name, Bytes(r, entries[pkl].Data, 2));
                break;
            case 5:
            {   // a storage entry grows, shrinks or disappears
                int i = r.Next(entries.Count);
                var d = entries[i].Data;
                if (r.Next(3) == 0) entries.RemoveAt(i);
                else entries[i] = (entries[i].Name, r.Next(2) == 0 ? d[..r.Next(d.Length + 1)] : d.Concat(new byte[1 + r.Next(64)]).ToArray());
                break;
            }
            case 6:
            {   // duplicate or rename an entry
                int i = r.Next(entries.Count);
                entries.Add((r.Next(2) == 0 ? entries[i].Name : entries[i].Name + "x", entries[i].Data));
                break;
            }
            default: return Bytes(r, input);
        }
        var o = new MemoryStream();
        using (var zout = new ZipArchive(o, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, data) in entries)
            {
                var e = zout.CreateEntry(name, CompressionLevel.NoCompression);
                using var s = e.Open();
                s.Write(data);
            }
        return o.ToArray();
    }

    /// <summary>Replaces the arguments of BININT1/BININT2/BININT (and LONG1) opcodes with edge values.</summary>
    static byte[] PickleInts(Random r, byte[] p)
    {
        var spots = new List<(int Pos, int Width)>();
        for (int i = 0; i + 1 < p.Length; i++)
        {
            if (p[i] == (byte)'K') spots.Add((i + 1, 1));
            else if (p[i] == (byte)'M' && i + 2 < p.Length) spots.Add((i + 1, 2));
            else if (p[i] == (byte)'J' && i + 4 < p.Length) spots.Add((i + 1, 4));
        }
        if (spots.Count == 0) return Bytes(r, p);
        var o = (byte[])p.Clone();
        int changes = 1 + r.Next(3);
        for (int k = 0; k < changes; k++)
        {
            var (pos, width) = spots[r.Next(spots.Count)];
            long v = new long[] { 0, 1, 255, 65535, int.MaxValue, -1, int.MinValue, 1 << 20, 1 << 24, 1 << 30 }[r.Next(10)];
            if (width == 1) o[pos] = (byte)v;
            else if (width == 2) BitConverter.TryWriteBytes(o.AsSpan(pos, 2), (ushort)v);
            else BitConverter.TryWriteBytes(o.AsSpan(pos, 4), (int)v);
        }
        return o;
    }

    // ---- text ----

    public static byte[] Text(Random r, byte[] input)
    {
        switch (r.Next(6))
        {
            case 0: return Encoding.UTF8.GetBytes(RandomUnicode(r, 1 + r.Next(2000)));
            case 1:
            {   // astral, combining, RTL, controls, NUL
                var s = new StringBuilder(Encoding.UTF8.GetString(input));
                string[] bits = ["\U0001D400", "\u0301", "\u202E", "\u0000", "\r\n", "\uFEFF", "\U00020000", "   \t", "'s", "1234567"];
                for (int k = 0; k < 1 + r.Next(20); k++) s.Insert(r.Next(s.Length + 1), bits[r.Next(bits.Length)]);
                return Encoding.UTF8.GetBytes(s.ToString());
            }
            case 2: return Encoding.UTF8.GetBytes(new string((char)('a' + r.Next(26)), 1 + r.Next(100_000)));
            default: return Bytes(r, input);
        }
    }

    public static string RandomUnicode(Random r, int n)
    {
        var sb = new StringBuilder(n);
        for (int i = 0; i < n; i++)
        {
            int cp = r.Next(4) switch { 0 => r.Next(0x20, 0x7F), 1 => r.Next(0xA0, 0x3000), 2 => r.Next(0x10000, 0x2FFFF), _ => r.Next(0x4E00, 0x9FFF) };
            sb.Append(char.ConvertFromUtf32(cp));
        }
        return sb.ToString();
    }
}
