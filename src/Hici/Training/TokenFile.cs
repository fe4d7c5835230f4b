using System.IO.MemoryMappedFiles;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hici.IO;

namespace Hici.Training;

/// <summary>
/// <c>FILE.bin.json</c> beside a flat token file: which tokenizer made it, the element type, how many tokens
/// and documents it holds, and — for the reference packing — the fixed chunk length and the pad id whose
/// positions carry no loss.
/// </summary>
public sealed record TokenFileInfo(string Tokenizer, string DType, long Tokens, long Documents, int? ChunkLength = null, int? PadId = null, int? VocabSize = null)
{
    public const string Suffix = ".json";
    public const long MaxBytes = 1L << 20;
    public int BytesPerToken => DType == "uint16" ? 2 : 4;

    /// <summary>uint16 when every id fits (vocabulary ≤ 65,536), else uint32 — the rule a bare .bin is read by too.</summary>
    public static string DTypeFor(int vocabSize) => vocabSize <= 65536 ? "uint16" : "uint32";

    public void Save(string binPath)
    {
        var o = new JsonObject
        {
            ["tokenizer"] = Tokenizer, ["dtype"] = DType, ["tokens"] = Tokens, ["documents"] = Documents,
        };
        if (VocabSize is { } v) o["vocab_size"] = v;
        if (ChunkLength is { } c) o["chunk_length"] = c;
        if (PadId is { } p) o["pad_id"] = p;
        AtomicDirectory.WriteJson(binPath + Suffix, o);
    }

    /// <summary>The metadata beside <paramref name="binPath"/>, or null when there is none.</summary>
    public static TokenFileInfo? Load(string binPath)
    {
        var path = binPath + Suffix;
        if (!File.Exists(path)) return null;
        var o = JsonFiles.ReadObject(path, MaxBytes);
        try
        {
            string dtype = o["dtype"]?.GetValue<string>() ?? throw new HiciException($"{path}: no \"dtype\"");
            if (dtype is not ("uint16" or "uint32")) throw new HiciException($"{path}: dtype '{dtype}' (expected uint16 or uint32)");
            var info = new TokenFileInfo(o["tokenizer"]?.GetValue<string>() ?? "", dtype,
                o["tokens"]?.GetValue<long>() ?? -1, o["documents"]?.GetValue<long>() ?? -1,
                o["chunk_length"]?.GetValue<int>(), o["pad_id"]?.GetValue<int>(), o["vocab_size"]?.GetValue<int>());
            if (info.ChunkLength is <= 0) throw new HiciException($"{path}: chunk_length {info.ChunkLength} must be positive");
            return info;
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {   // a field of the wrong type or range ("tokens": "x", "pad_id": 1e99)
            throw new HiciException($"{path}: not token-file metadata ({e.Message})");
        }
    }
}

/// <summary>Appends token ids to a flat little-endian file (written to a temp name, renamed on Commit).</summary>
public sealed class TokenFileWriter : IDisposable
{
    private readonly string _path, _tmp;
    private readonly FileStream _fs;
    private readonly BufferedStream _out;
    private readonly bool _u16;
    private readonly int _limit;
    private bool _done;

    public long Tokens { get; private set; }
    public long Documents { get; private set; }

    public TokenFileWriter(string path, string dtype)
    {
        _path = Path.GetFullPath(path);
        AtomicFile.CheckReplaceable(_path, "regular file");
        _tmp = AtomicFile.NewTemp(_path);   // hidden, and removed by the next run if this one is killed
        _u16 = dtype == "uint16";
        _limit = _u16 ? 65536 : int.MaxValue;
        _fs = new FileStream(_tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        _out = new BufferedStream(_fs, 1 << 20);
    }

    public void Add(ReadOnlySpan<int> ids, bool endsDocument = true)
    {
        Span<byte> b = stackalloc byte[4];
        foreach (int id in ids)
        {
            if (id < 0 || id >= _limit) throw new HiciException($"{_path}: token id {id} does not fit {(_u16 ? "uint16" : "uint32")}");
            if (_u16) { b[0] = (byte)id; b[1] = (byte)(id >> 8); _out.Write(b[..2]); }
            else { System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(b, id); _out.Write(b); }
        }
        Tokens += ids.Length;
        if (endsDocument) Documents++;
    }

    public void Commit()
    {
        _out.Flush();
        _fs.Flush(flushToDisk: true);
        _out.Dispose();
        File.Move(_tmp, _path, overwrite: true);
        _done = true;
    }

    public void Dispose()
    {
        if (_done) return;
        _out.Dispose();
        try { File.Delete(_tmp); } catch (IOException) { }
    }
}

/// <summary>
/// A flat token file, memory-mapped (a multi-GB corpus is never read into memory). The element type comes
/// from FILE.bin.json, or — without it — from the vocabulary-size rule of <see cref="TokenFileInfo.DTypeFor"/>.
/// </summary>
public sealed class TokenFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    public string Path { get; }
    public TokenFileInfo Info { get; }
    public long Length { get; }

    private TokenFile(string path, TokenFileInfo info, long length, MemoryMappedFile? map, MemoryMappedViewAccessor? view)
    { Path = path; Info = info; Length = length; _map = map; _view = view; }

    /// <param name="vocabSize">the model's vocabulary: decides the dtype of a bare .bin and bounds every id</param>
    public static TokenFile Open(string path, int vocabSize)
    {
        InputFiles.CheckRegularFile(path);   // a FIFO or device would be mapped as an empty or endless file
        var info = TokenFileInfo.Load(path) ?? new TokenFileInfo("", TokenFileInfo.DTypeFor(vocabSize), -1, -1);
        long bytes = new FileInfo(path).Length;
        if (bytes % info.BytesPerToken != 0) throw new HiciException($"{path}: {bytes} bytes is not a whole number of {info.DType} tokens (truncated?)");
        long n = bytes / info.BytesPerToken;
        if (info.Tokens >= 0 && info.Tokens != n) throw new HiciException($"{path}: holds {n} tokens, its {System.IO.Path.GetFileName(path)}.json says {info.Tokens} (truncated or replaced?)");
        if (info.VocabSize is { } v && v > vocabSize) throw new HiciException($"{path}: made with a vocabulary of {v}, the model has {vocabSize}");
        if (n == 0) return new TokenFile(path, info, 0, null, null);
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        var tf = new TokenFile(path, info, n, map, view) { _vocab = vocabSize };
        return tf;
    }

    private int _vocab = int.MaxValue;

    /// <summary>Tokens [start, start + count) as int64 ids, each checked against the vocabulary.</summary>
    public long[] Read(long start, int count)
    {
        if (start < 0 || count < 0 || start + count > Length) throw new HiciException($"{Path}: read [{start}, {start + count}) outside 0..{Length}");
        var r = new long[count];
        if (Info.BytesPerToken == 2)
        {
            var buf = new ushort[count];
            _view!.ReadArray(start * 2, buf, 0, count);
            for (int i = 0; i < count; i++) r[i] = buf[i];
        }
        else
        {
            var buf = new uint[count];
            _view!.ReadArray(start * 4, buf, 0, count);
            for (int i = 0; i < count; i++) r[i] = buf[i];
        }
        foreach (var id in r) if (id >= _vocab) throw new HiciException($"{Path}: token id {id} at or after {start} is outside the model's vocabulary ({_vocab})");
        return r;
    }

    public void Dispose() { _view?.Dispose(); _map?.Dispose(); }
}
