using System.IO.Compression;
using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.IO;

/// <summary>
/// Writes a state_dict as a PyTorch zip checkpoint that <c>torch.load</c> (also with <c>weights_only=True</c>)
/// and <see cref="TorchPickleWeightSource"/> read: <c>&lt;name&gt;/data.pkl</c>, <c>byteorder</c>,
/// <c>data/0..n-1</c> (stored, one contiguous storage per tensor) and <c>version</c>. Used for the
/// <c>reference</c> output format that the Python HiCI code loads.
/// </summary>
public static class TorchPickleWriter
{
    /// <summary>Zip timestamps are fixed so the same tensors always give the same file.</summary>
    private static readonly DateTimeOffset Stamp = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors) =>
        Save(path, tensors.Select(kv => (kv.Key, kv.Value)));

    /// <summary>Writes <paramref name="tensors"/> (in order) to <paramref name="path"/> atomically.</summary>
    public static void Save(string path, IEnumerable<(string Name, Tensor Tensor)> tensors)
    {
        var list = tensors.ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, t) in list)
        {
            if (!seen.Add(name)) throw new HiciException($"{path}: tensor name '{name}' given twice");
            if (!TorchPickler.StorageNames.ContainsKey(t.dtype))
                throw new HiciException($"{path}: tensor '{name}' has dtype {t.dtype}, which cannot be stored (supported: {string.Join(", ", TorchPickler.StorageNames.Keys)})");
        }
        var pickle = new TorchPickler().StateDict(list.Select(x => (x.Name, x.Tensor.dtype, x.Tensor.shape)).ToList());
        // torch names the top folder after the file (trainable_params.bin → trainable_params/…).
        var stem = Path.GetFileNameWithoutExtension(path);
        var root = Regex.IsMatch(stem, "^[A-Za-z0-9_.-]{1,100}$") ? stem : "archive";

        AtomicFile.Write(path, fs =>
        {
            using var zip = new ZipArchive(fs, ZipArchiveMode.Create, leaveOpen: true);
            Entry(zip, $"{root}/data.pkl", s => s.Write(pickle));
            Entry(zip, $"{root}/byteorder", s => s.Write("little"u8));
            for (int i = 0; i < list.Count; i++)
            {
                var t = list[i].Tensor;
                Entry(zip, $"{root}/data/{i}", s =>
                {
                    using var scope = torch.NewDisposeScope();
                    TensorBytes.Write(s, (t.device_type == DeviceType.CPU ? t : t.to(CPU)).contiguous());
                });
            }
            Entry(zip, $"{root}/version", s => s.Write("3\n"u8));
        });
    }

    private static void Entry(ZipArchive zip, string name, Action<Stream> write)
    {
        var e = zip.CreateEntry(name, CompressionLevel.NoCompression);
        e.LastWriteTime = Stamp;
        using var s = e.Open();
        write(s);
    }
}
