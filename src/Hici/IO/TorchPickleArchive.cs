using System.IO.Compression;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.IO;

/// <summary>
/// A PyTorch zip checkpoint (<c>&lt;name&gt;/data.pkl</c>, <c>&lt;name&gt;/data/&lt;key&gt;</c>, <c>version</c>,
/// <c>byteorder</c>; the top folder is named after the saved file and varies). Parses the pickle with the
/// allow-list unpickler on open and reads storage bytes on demand.
/// </summary>
internal sealed class TorchPickleArchive : IDisposable
{
    public const long MaxPickleBytes = 64L << 20;
    public const int MaxEntries = 1_000_000;

    private readonly FileStream _file;
    private readonly ZipArchive _zip;
    private readonly string _prefix;
    private readonly Dictionary<string, StorageRef> _storages = new(StringComparer.Ordinal);

    public string Path { get; }
    /// <summary>Bytes of all distinct storages the pickle names; stored uncompressed, so never more than the file.</summary>
    public long StorageBytes { get; private set; }
    /// <summary>The unpickled top-level object (validated to be a str → tensor dict by the weight source).</summary>
    public object Root { get; }

    public TorchPickleArchive(string path)
    {
        Path = path;
        InputFiles.CheckRegularFile(path);
        try { _file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new HiciException($"{path}: cannot open ({e.Message})", e); }
        try
        {
            try { _zip = new ZipArchive(_file, ZipArchiveMode.Read, leaveOpen: true); }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
            { throw new HiciException($"{path}: not a PyTorch zip checkpoint ({e.Message}); legacy non-zip torch.save files are not supported", e); }
            if (_zip.Entries.Count > MaxEntries) throw new HiciException($"{path}: zip has {_zip.Entries.Count} entries (limit {MaxEntries})");
            var pkl = _zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal)
                                              && e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length).ToList();
            if (pkl.Count != 1)
                throw new HiciException($"{path}: expected one '<name>/data.pkl' in the zip, found {pkl.Count}");
            _prefix = pkl[0].FullName[..^"data.pkl".Length];
            CheckByteOrder();
            var bytes = ReadSmall(pkl[0], MaxPickleBytes);
            Root = new TorchUnpickler(bytes, $"{path}: {pkl[0].FullName}", PersistentLoad).Load();
        }
        catch (Exception e)
        {
            _zip?.Dispose();
            _file.Dispose();
            if (e is InvalidDataException or EndOfStreamException)
                throw new HiciException($"{path}: corrupt zip ({e.Message})", e);
            throw;
        }
    }

    private void CheckByteOrder()
    {
        var e = _zip.GetEntry(_prefix + "byteorder");
        if (e is null) return; // written since torch 2.1; older files are little-endian
        var order = System.Text.Encoding.ASCII.GetString(ReadSmall(e, 16)).Trim();
        if (order != "little") throw new HiciException($"{Path}: byteorder is '{order}'; only little-endian checkpoints are supported");
    }

    private byte[] ReadSmall(ZipArchiveEntry e, long max)
    {
        if (e.Length > max) throw new HiciException($"{Path}: {e.FullName} is {e.Length} bytes (limit {max})");
        var buf = new byte[e.Length];
        try
        {
            using var s = e.Open();
            s.ReadExactly(buf);
        }
        catch (EndOfStreamException) { throw new HiciException($"{Path}: {e.FullName} is truncated"); }
        catch (InvalidDataException x) { throw new HiciException($"{Path}: {e.FullName} is corrupt ({x.Message})"); }
        return buf;
    }

    /// <summary>('storage', torch.XStorage, key, location, numel) → a storage checked against its zip entry.</summary>
    private StorageRef PersistentLoad(object[] pid)
    {
        if (pid.Length != 5 || pid[0] is not "storage" || pid[1] is not PickleGlobal type || pid[2] is not string key
            || pid[3] is not string location || pid[4] is not long numel)
            throw new HiciException($"{Path}: persistent id is not ('storage', type, key, location, numel)");
        if (type.Module != "torch" || !TorchPickleAllowList.Storages.TryGetValue(type.Name, out var dtype))
            throw new HiciException($"{Path}: storage '{key}' has type {type}, which is not a tensor storage");
        if (_storages.TryGetValue(key, out var seen))
        {
            if (seen.DType != dtype || seen.Numel != numel)
                throw new HiciException($"{Path}: storage '{key}' is described twice, differently");
            return seen;
        }
        var entry = _zip.GetEntry(_prefix + "data/" + key)
                    ?? throw new HiciException($"{Path}: storage '{key}' has no zip entry {_prefix}data/{key}");
        long? bytes = numel < 0 ? null : TensorDTypes.ByteSize(new[] { numel }, TensorDTypes.ElementSize(dtype));
        if (bytes is null || bytes != entry.Length)
            throw new HiciException($"{Path}: storage '{key}' claims {numel} x {type.Name} but its entry holds {entry.Length} bytes");
        if (entry.CompressedLength != entry.Length)
            throw new HiciException($"{Path}: storage '{key}' is compressed; torch writes storages uncompressed");
        // Storages are stored uncompressed, so together they cannot exceed the file; zip headers claiming more
        // (overlapping entries, forged sizes) describe data that is not there.
        StorageBytes += bytes.Value;
        if (StorageBytes > _file.Length)
            throw new HiciException($"{Path}: its storages claim {StorageBytes} bytes in total but the file has {_file.Length}");
        var s = new StorageRef(dtype, key, location, numel);
        _storages[key] = s;
        return s;
    }

    /// <summary>Reads the elements [<paramref name="first"/>, <paramref name="first"/> + numel(<paramref name="into"/>)) of a storage.</summary>
    public void ReadRange(StorageRef s, long first, Tensor into, string tensorName)
    {
        var entry = _zip.GetEntry(_prefix + "data/" + s.Key)!;
        long skip = first * TensorDTypes.ElementSize(s.DType);
        lock (_zip)
        {
            try
            {
                using var stream = entry.Open();
                if (stream.CanSeek) stream.Seek(skip, SeekOrigin.Begin);
                else Skip(stream, skip);
                TensorBytes.Read(stream, into, () => $"{Path}: tensor '{tensorName}' (storage '{s.Key}')");
            }
            catch (InvalidDataException x) { throw new HiciException($"{Path}: tensor '{tensorName}': zip entry is corrupt ({x.Message})"); }
        }
    }

    private void Skip(Stream s, long n)
    {
        var buf = new byte[Math.Min(n, 1 << 20)];
        while (n > 0)
        {
            int r = s.Read(buf, 0, (int)Math.Min(buf.Length, n));
            if (r <= 0) throw new HiciException($"{Path}: storage entry ends early (truncated?)");
            n -= r;
        }
    }

    public void Dispose()
    {
        _zip.Dispose();
        _file.Dispose();
    }
}
