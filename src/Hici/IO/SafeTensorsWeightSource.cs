using static TorchSharp.torch;

namespace Hici.IO;

/// <summary>
/// Tensors from a safetensors file or checkpoint folder. A folder is read through
/// <c>model.safetensors.index.json</c> if present, else <c>model.safetensors</c>, else every
/// <c>*.safetensors</c> in it (names must then be unique across files). Headers are validated on open;
/// data is read on <see cref="Load"/>. Not thread-safe for concurrent Dispose.
/// </summary>
public sealed class SafeTensorsWeightSource : IWeightSource
{
    private readonly List<SafeTensorsFile> _files = new();
    private readonly Dictionary<string, (SafeTensorsFile File, SafeTensorsEntry Entry)> _byKey = new(StringComparer.Ordinal);
    private readonly List<string> _keys = new();

    public string Origin { get; }
    /// <summary>The shard files opened, in order.</summary>
    public IReadOnlyList<string> Files => _files.Select(f => f.Path).ToList();
    /// <summary>The <c>__metadata__</c> of the first file (HF puts e.g. <c>format: pt</c> there).</summary>
    public IReadOnlyDictionary<string, string> Metadata =>
        _files.Count > 0 ? _files[0].Header.Metadata : new Dictionary<string, string>();

    private SafeTensorsWeightSource(string origin) => Origin = origin;

    public static SafeTensorsWeightSource Open(string path)
    {
        var src = new SafeTensorsWeightSource(path);
        try
        {
            if (Directory.Exists(path)) src.OpenFolder(path);
            else if (File.Exists(path))
            {
                if (Path.GetFileName(path).EndsWith(".index.json", StringComparison.Ordinal)) src.OpenIndex(path);
                else src.AddWholeFile(path);
            }
            else throw new HiciException($"{path}: no such file or folder");
            return src;
        }
        catch { src.Dispose(); throw; }
    }

    private void OpenFolder(string dir)
    {
        var index = Path.Combine(dir, SafeTensorsIndex.FileName);
        var single = Path.Combine(dir, "model.safetensors");
        if (File.Exists(index)) { OpenIndex(index); return; }
        if (File.Exists(single)) { AddWholeFile(single); return; }
        var all = Directory.GetFiles(dir, "*.safetensors").OrderBy(f => f, StringComparer.Ordinal).ToList();
        if (all.Count == 0)
            throw new HiciException($"{dir}: no {SafeTensorsIndex.FileName}, model.safetensors or *.safetensors in this folder");
        foreach (var f in all) AddWholeFile(f);
    }

    private void OpenIndex(string indexPath)
    {
        var index = SafeTensorsIndex.Read(indexPath);
        var dir = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var shards = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        foreach (var (key, shard) in index.WeightMap)
        {
            if (!shards.TryGetValue(shard, out var file))
            {
                var shardPath = Path.Combine(dir, shard);
                if (!File.Exists(shardPath))
                    throw new HiciException($"{indexPath}: weight_map sends '{key}' to shard '{shard}', which does not exist");
                file = new SafeTensorsFile(shardPath);
                _files.Add(file);
                shards[shard] = file;
            }
            if (!file.ByName.TryGetValue(key, out var entry))
                throw new HiciException($"{indexPath}: weight_map sends '{key}' to shard '{shard}', which has no such tensor");
            Add(key, file, entry);
        }
    }

    private void AddWholeFile(string path)
    {
        var file = new SafeTensorsFile(path);
        _files.Add(file);
        foreach (var e in file.Header.Entries)
        {
            if (_byKey.TryGetValue(e.Name, out var prev))
                throw new HiciException($"{path}: tensor '{e.Name}' is also in {prev.File.Path}; without an index.json the folder's files must not share names");
            Add(e.Name, file, e);
        }
    }

    private void Add(string key, SafeTensorsFile file, SafeTensorsEntry entry)
    {
        _byKey[key] = (file, entry);
        _keys.Add(key);
    }

    public IReadOnlyCollection<string> Keys => _keys.AsReadOnly();
    public bool Contains(string key) => _byKey.ContainsKey(key);
    public long[] Shape(string key) => (long[])Find(key).Entry.Shape.Clone();
    public ScalarType DType(string key) => Find(key).Entry.DType;
    /// <summary>The header entry (dtype, shape, offsets) behind <paramref name="key"/>.</summary>
    public SafeTensorsEntry Entry(string key) => Find(key).Entry;

    public Tensor Load(string key, ScalarType? dtype = null, Device? device = null)
    {
        var (file, entry) = Find(key);
        return file.Load(entry, dtype, device);
    }

    private (SafeTensorsFile File, SafeTensorsEntry Entry) Find(string key) =>
        _byKey.TryGetValue(key, out var r) ? r : throw new HiciException($"{Origin}: no tensor '{key}'");

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
    }
}
