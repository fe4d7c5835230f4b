using static TorchSharp.torch;

namespace Hici.IO;

// The only values the allow-list unpickler can build. Python objects outside these never exist here, so no
// pickle can make the reader run code: a global that is not allowed is refused when it is named.

/// <summary>Python's None.</summary>
internal sealed class PickleNone
{
    public static readonly PickleNone Instance = new();
    public override string ToString() => "None";
}

/// <summary>A module-level name the pickle refers to (already checked against the allow-list).</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>A dict or OrderedDict; keeps insertion order, keys are str or int.</summary>
internal sealed class PickleDict
{
    private readonly Dictionary<object, int> _index = new();
    public List<KeyValuePair<object, object>> Items { get; } = new();

    public void Set(object key, object value)
    {
        if (_index.TryGetValue(key, out var i)) Items[i] = new(key, value);
        else { _index[key] = Items.Count; Items.Add(new(key, value)); }
    }
}

/// <summary>A storage named by a persistent id: the zip entry <c>data/Key</c> holding <c>Numel</c> elements.</summary>
internal sealed record StorageRef(ScalarType DType, string Key, string Location, long Numel);

/// <summary>A tensor view onto a storage (<c>torch._utils._rebuild_tensor_v2</c>); extent already checked.</summary>
internal sealed record TensorRef(StorageRef Storage, long Offset, long[] Size, long[] Stride, bool RequiresGrad)
{
    public long Numel => Size.Aggregate(1L, (a, b) => a * b);

    /// <summary>One past the last storage element the view touches (its offset when empty).</summary>
    public long Extent => Numel == 0 ? Offset : Offset + 1 + Size.Zip(Stride, (s, st) => (s - 1) * st).Sum();

    public bool IsContiguous
    {
        get
        {
            long expect = 1;
            for (int i = Size.Length - 1; i >= 0; i--)
            {
                if (Size[i] != 1 && Stride[i] != expect) return false;
                expect *= Size[i];
            }
            return true;
        }
    }
}
