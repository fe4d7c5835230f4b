using static TorchSharp.torch;

namespace Hici.IO;

/// <summary>
/// The globals a PyTorch weights pickle may name, and what calling them builds. Mirrors the spirit of
/// <c>torch.load(weights_only=True)</c> but narrower: only what state_dict files contain.
/// </summary>
internal static class TorchPickleAllowList
{
    public static readonly IReadOnlyDictionary<string, ScalarType> Storages = new Dictionary<string, ScalarType>
    {
        ["FloatStorage"] = ScalarType.Float32, ["DoubleStorage"] = ScalarType.Float64,
        ["HalfStorage"] = ScalarType.Float16, ["BFloat16Storage"] = ScalarType.BFloat16,
        ["LongStorage"] = ScalarType.Int64, ["IntStorage"] = ScalarType.Int32,
        ["ShortStorage"] = ScalarType.Int16, ["CharStorage"] = ScalarType.Int8,
        ["ByteStorage"] = ScalarType.Byte, ["BoolStorage"] = ScalarType.Bool,
    };

    public const long MaxExpandedNumel = 1L << 24;

    public const string OrderedDict = "collections.OrderedDict";
    public const string RebuildTensorV2 = "torch._utils._rebuild_tensor_v2";
    public const string RebuildParameter = "torch._utils._rebuild_parameter";

    public static bool IsAllowed(string module, string name) =>
        $"{module}.{name}" is OrderedDict or RebuildTensorV2 or RebuildParameter
        || (module == "torch" && Storages.ContainsKey(name));

    public static string Describe() =>
        $"{OrderedDict}, {RebuildTensorV2}, {RebuildParameter}, torch.<Type>Storage";

    /// <summary>Applies REDUCE: <paramref name="callable"/>(*<paramref name="args"/>).</summary>
    public static object Call(PickleGlobal callable, object[] args, Func<string, HiciException> error)
    {
        switch (callable.ToString())
        {
            case OrderedDict:
                if (args.Length != 0) throw error($"{OrderedDict} called with {args.Length} arguments (expected none)");
                return new PickleDict();
            case RebuildTensorV2:
                return RebuildTensor(args, error);
            case RebuildParameter:
                if (args.Length != 3 || args[0] is not TensorRef t || args[1] is not bool rg || !IsEmptyDict(args[2]))
                    throw error($"{RebuildParameter} expects (tensor, requires_grad, no hooks)");
                return t with { RequiresGrad = rg };
            default:
                throw error($"{callable} cannot be called");
        }
    }

    private static TensorRef RebuildTensor(object[] a, Func<string, HiciException> error)
    {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        if (a.Length is < 6 or > 7 || a[0] is not StorageRef s || a[1] is not long offset
            || a[2] is not object[] sizeT || a[3] is not object[] strideT || a[4] is not bool rg || !IsEmptyDict(a[5])
            || (a.Length == 7 && a[6] is not PickleDict and not PickleNone))
            throw error($"{RebuildTensorV2} called with unexpected arguments");
        if (sizeT.Length != strideT.Length || sizeT.Length > 32)
            throw error($"tensor on storage '{s.Key}' has size of rank {sizeT.Length} but stride of rank {strideT.Length}");
        var size = new long[sizeT.Length];
        var stride = new long[strideT.Length];
        for (int i = 0; i < size.Length; i++)
        {
            if (sizeT[i] is not long n || n < 0 || strideT[i] is not long st || st < 0)
                throw error($"tensor on storage '{s.Key}' has a negative or non-integer size/stride");
            size[i] = n;
            stride[i] = st;
        }
        if (offset < 0) throw error($"tensor on storage '{s.Key}' has negative storage offset {offset}");
        var t = new TensorRef(s, offset, size, stride, rg);
        long extent;
        try
        {
            checked
            {
                long numel = 1, last = offset;
                for (int i = 0; i < size.Length; i++) { numel *= size[i]; if (size[i] > 0) last += (size[i] - 1) * stride[i]; }
                extent = numel == 0 ? offset : last + 1;
            }
        }
        catch (OverflowException) { throw error($"tensor on storage '{s.Key}' has a size/stride that overflows"); }
        if (extent > s.Numel)
            throw error($"tensor on storage '{s.Key}' reaches element {extent} but the storage holds {s.Numel}");
        // Loading materialises views, so a stride-0 view of a tiny storage could ask for terabytes.
        if (t.Numel > Math.Max(s.Numel, MaxExpandedNumel))
            throw error($"tensor on storage '{s.Key}' is a view of {t.Numel} elements over {s.Numel}; expanded views this large are refused");
        return t;
    }

    private static bool IsEmptyDict(object o) => o is PickleDict { Items.Count: 0 };
}
