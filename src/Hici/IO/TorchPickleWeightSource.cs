using TorchSharp;
using static TorchSharp.torch;

namespace Hici.IO;

/// <summary>
/// Tensors from a PyTorch <c>torch.save</c> zip file holding a state_dict (dict or OrderedDict of str → tensor),
/// such as HiCI's <c>trainable_params.bin</c> or PEFT's <c>adapter_model.bin</c>. The pickle is run by an
/// allow-list unpickler that cannot execute code; views sharing a storage are materialised as separate tensors.
/// </summary>
public sealed class TorchPickleWeightSource : IWeightSource
{
    private readonly TorchPickleArchive _archive;
    private readonly Dictionary<string, TensorRef> _tensors = new(StringComparer.Ordinal);
    private readonly List<string> _keys = new();

    public string Origin => _archive.Path;

    private TorchPickleWeightSource(TorchPickleArchive archive) => _archive = archive;

    public static TorchPickleWeightSource Open(string path)
    {
        InputFiles.CheckRegularFile(path);
        var archive = new TorchPickleArchive(path);
        var src = new TorchPickleWeightSource(archive);
        try
        {
            if (archive.Root is not PickleDict dict)
                throw new HiciException($"{path}: holds a {TorchUnpickler.Describe(archive.Root)}, not a state_dict (dict of name → tensor)");
            foreach (var (k, v) in dict.Items)
            {
                if (k is not string key) throw new HiciException($"{path}: state_dict key {TorchUnpickler.Describe(k)} is not a string");
                if (v is not TensorRef t) throw new HiciException($"{path}: '{key}' is a {TorchUnpickler.Describe(v)}, not a tensor");
                src._tensors[key] = t;
                src._keys.Add(key);
            }
            CheckMaterialisedBytes(path, src._tensors.Values, archive.StorageBytes, Hici.Runtime.MemoryEstimate.Available);
            return src;
        }
        catch { src.Dispose(); throw; }
    }

    /// <summary>Expanded views beyond the file's storage bytes that a file may ask for in total (not per view).</summary>
    public const long ExpansionAllowanceBytes = 64L << 20;

    /// <summary>
    /// Loading materialises every key's view. Each view is bounded by its storage, but many views can share one
    /// small storage (stride-0 views: a 35 KB file once expanded to 13 GB), so the sum over all keys is bounded by
    /// the storage bytes: once for the tensors and once more for keys sharing them (tied embeddings are two keys on
    /// one storage), plus a fixed allowance for expanded views. The total must also fit in memory.
    /// </summary>
    internal static void CheckMaterialisedBytes(string path, IEnumerable<TensorRef> tensors, long storageBytes, long availableBytes)
    {
        long total = 0;
        foreach (var t in tensors)
            total = SaturatingAdd(total, SaturatingMul(t.Numel, TensorDTypes.ElementSize(t.Storage.DType)));
        long limit = SaturatingAdd(SaturatingMul(storageBytes, 2), ExpansionAllowanceBytes);
        if (total > limit)
            throw new HiciException($"{path}: its tensors expand to {InputFiles.Size(total)} from {InputFiles.Size(storageBytes)} of stored data " +
                                    $"(views repeating shared storage; at most {InputFiles.Size(limit)} is accepted)");
        if (total > availableBytes)
            throw new HiciException($"{path}: its tensors need {InputFiles.Size(total)}, more than the {InputFiles.Size(availableBytes)} of memory available");
    }

    static long SaturatingAdd(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;
    static long SaturatingMul(long a, long b) => b != 0 && a > long.MaxValue / b ? long.MaxValue : a * b;

    public IReadOnlyCollection<string> Keys => _keys.AsReadOnly();
    public bool Contains(string key) => _tensors.ContainsKey(key);
    public long[] Shape(string key) => (long[])Find(key).Size.Clone();
    public ScalarType DType(string key) => Find(key).Storage.DType;
    /// <summary>Whether the saved tensor was a Parameter with requires_grad (informational).</summary>
    public bool RequiresGrad(string key) => Find(key).RequiresGrad;

    public Tensor Load(string key, ScalarType? dtype = null, Device? device = null)
    {
        var t = Find(key);
        var stored = t.Storage.DType == ScalarType.Bool ? ScalarType.Byte : t.Storage.DType; // bytes → bool sanitises
        using var scope = torch.NewDisposeScope();
        Tensor r;
        if (t.IsContiguous)
        {
            r = torch.empty(t.Size, stored);
            _archive.ReadRange(t.Storage, t.Offset, r, key);
        }
        else
        {
            // Read only the span the view touches, then let torch apply the strides.
            using var span = torch.empty(t.Extent - t.Offset, stored);
            _archive.ReadRange(t.Storage, t.Offset, span, key);
            r = span.as_strided(t.Size, t.Stride, 0).contiguous();
        }
        if (t.Storage.DType == ScalarType.Bool) r = r.to(ScalarType.Bool);
        var target = dtype ?? t.Storage.DType;
        if (r.dtype != target) r = r.to(target);
        if (device is not null && device.type != DeviceType.CPU) r = r.to(device);
        return r.MoveToOuterDisposeScope();
    }

    private TensorRef Find(string key) =>
        _tensors.TryGetValue(key, out var t) ? t : throw new HiciException($"{Origin}: no tensor '{key}'");

    public void Dispose() => _archive.Dispose();
}
