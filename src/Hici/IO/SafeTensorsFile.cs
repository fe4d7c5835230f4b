using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.IO;

/// <summary>
/// One open safetensors file. Tensors whose data offset is a multiple of their element size (all files the
/// HF writer and ours produce) are read through a private memory map of the file, one map per dtype, because
/// TorchSharp's from_file has no byte offset; other tensors are read with positioned reads.
/// </summary>
internal sealed class SafeTensorsFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly long _length;
    private readonly Dictionary<ScalarType, Tensor?> _maps = new();
    private readonly object _lock = new();

    public string Path { get; }
    public SafeTensorsHeader Header { get; }
    public IReadOnlyDictionary<string, SafeTensorsEntry> ByName { get; }

    public SafeTensorsFile(string path)
    {
        if (!BitConverter.IsLittleEndian)
            throw new HiciException($"{path}: safetensors is little-endian; big-endian hosts are not supported");
        Path = path;
        InputFiles.CheckRegularFile(path);
        try { _handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new HiciException($"{path}: cannot open ({e.Message})", e); }
        try
        {
            _length = RandomAccess.GetLength(_handle);
            Header = SafeTensorsHeader.Read(path, _handle, _length);
            ByName = Header.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        }
        catch { _handle.Dispose(); throw; }
    }

    public Tensor Load(SafeTensorsEntry e, ScalarType? dtype, Device? device)
    {
        // BOOL is read as bytes and converted, which turns hostile non-0/1 bytes into valid booleans.
        var stored = e.DType == ScalarType.Bool ? ScalarType.Byte : e.DType;
        int es = TensorDTypes.ElementSize(stored);
        long numel = (e.End - e.Begin) / es;
        long abs = Header.DataStart + e.Begin;
        var map = numel > 0 && abs % es == 0 ? Map(stored) : null;

        using var scope = torch.NewDisposeScope();
        Tensor t;
        bool owned;
        if (numel == 0) { t = torch.empty(e.Shape, stored); owned = true; }
        else if (map is not null) { t = map.narrow(0, abs / es, numel).view(e.Shape); owned = false; }
        else
        {
            t = torch.empty(e.Shape, stored);
            TensorBytes.Read(_handle, t, abs, () => $"{Path}: tensor '{e.Name}'");
            owned = true;
        }
        if (e.DType == ScalarType.Bool) { t = t.to(ScalarType.Bool); owned = true; }
        var target = dtype ?? e.DType;
        if (t.dtype != target) { t = t.to(target); owned = true; }
        if (!owned) t = t.clone();
        if (device is not null && device.type != DeviceType.CPU) t = t.to(device);
        return t.MoveToOuterDisposeScope();
    }

    private Tensor? Map(ScalarType stored)
    {
        lock (_lock)
        {
            if (_maps.TryGetValue(stored, out var m)) return m;
            try
            {
                m = torch.from_file(Path, shared: false, size: _length / TensorDTypes.ElementSize(stored), dtype: stored);
                m.DetachFromDisposeScope();
            }
            catch (Exception) { m = null; } // e.g. a file system without mmap: positioned reads still work
            _maps[stored] = m;
            return m;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var m in _maps.Values) m?.Dispose();
            _maps.Clear();
        }
        _handle.Dispose();
    }
}
