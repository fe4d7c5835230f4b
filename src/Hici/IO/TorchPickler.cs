using System.Buffers.Binary;
using System.Text;
using static TorchSharp.torch;

namespace Hici.IO;

/// <summary>
/// Emits the protocol-2 pickle of a state_dict exactly as torch.save structures it: an OrderedDict of
/// <c>_rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict())</c> — only globals that
/// <c>torch.load(weights_only=True)</c> and our own allow-list accept.
/// </summary>
internal sealed class TorchPickler
{
    private readonly MemoryStream _o = new();
    private readonly Dictionary<string, int> _memo = new(StringComparer.Ordinal);

    public static readonly IReadOnlyDictionary<ScalarType, string> StorageNames =
        TorchPickleAllowList.Storages.ToDictionary(kv => kv.Value, kv => kv.Key);

    /// <summary>Each tensor is its own contiguous storage, keyed "0", "1", … in order.</summary>
    public byte[] StateDict(IReadOnlyList<(string Name, ScalarType DType, long[] Shape)> tensors)
    {
        _o.Write([0x80, 2]);                                 // PROTO 2
        Global("collections", "OrderedDict");
        _o.WriteByte((byte)')'); _o.WriteByte((byte)'R');  // OrderedDict()
        for (int start = 0; start < tensors.Count; start += 1000) // batches like pickle's SETITEMS
        {
            _o.WriteByte((byte)'(');
            for (int i = start; i < Math.Min(start + 1000, tensors.Count); i++) Tensor(i, tensors[i]);
            _o.WriteByte((byte)'u');
        }
        _o.WriteByte((byte)'.');
        return _o.ToArray();
    }

    private void Tensor(int key, (string Name, ScalarType DType, long[] Shape) t)
    {
        Str(t.Name);
        Global("torch._utils", "_rebuild_tensor_v2");
        _o.WriteByte((byte)'(');
        _o.WriteByte((byte)'(');                            // persistent id tuple
        Str("storage");
        Global("torch", StorageNames[t.DType]);
        Str(key.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Str("cpu");
        Int(t.Shape.Aggregate(1L, (a, b) => a * b));
        _o.WriteByte((byte)'t');
        _o.WriteByte((byte)'Q');                            // BINPERSID
        Int(0);
        Tuple(t.Shape);
        var stride = new long[t.Shape.Length];
        for (long s = 1, i = t.Shape.Length - 1; i >= 0; s *= t.Shape[i], i--) stride[i] = s;
        Tuple(stride);
        _o.WriteByte(0x89);                                 // requires_grad False
        Global("collections", "OrderedDict");
        _o.WriteByte((byte)')'); _o.WriteByte((byte)'R');  // backward_hooks = OrderedDict()
        _o.WriteByte((byte)'t');
        _o.WriteByte((byte)'R');
    }

    private void Global(string module, string name)
    {
        if (Recall($"g:{module}.{name}")) return;
        _o.WriteByte((byte)'c');
        _o.Write(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
        Put($"g:{module}.{name}");
    }

    private void Str(string s)
    {
        if (Recall("s:" + s)) return;
        var b = Encoding.UTF8.GetBytes(s);
        _o.WriteByte((byte)'X');
        Span<byte> n = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(n, (uint)b.Length);
        _o.Write(n);
        _o.Write(b);
        if (s.Length < 64) Put("s:" + s); // short strings (names repeat: 'storage', 'cpu', dtypes)
    }

    private void Int(long v)
    {
        Span<byte> b = stackalloc byte[8];
        if (v is >= 0 and < 256) { _o.WriteByte((byte)'K'); _o.WriteByte((byte)v); }
        else if (v is >= 0 and < 65536) { _o.WriteByte((byte)'M'); BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)v); _o.Write(b[..2]); }
        else if (v is >= int.MinValue and <= int.MaxValue) { _o.WriteByte((byte)'J'); BinaryPrimitives.WriteInt32LittleEndian(b, (int)v); _o.Write(b[..4]); }
        else { _o.WriteByte(0x8a); _o.WriteByte(8); BinaryPrimitives.WriteInt64LittleEndian(b, v); _o.Write(b); }
    }

    private void Tuple(long[] items)
    {
        if (items.Length == 0) { _o.WriteByte((byte)')'); return; }
        if (items.Length > 3) _o.WriteByte((byte)'(');
        foreach (var x in items) Int(x);
        _o.WriteByte(items.Length switch { 1 => 0x85, 2 => 0x86, 3 => 0x87, _ => (byte)'t' });
    }

    private bool Recall(string what)
    {
        if (!_memo.TryGetValue(what, out var i)) return false;
        if (i < 256) { _o.WriteByte((byte)'h'); _o.WriteByte((byte)i); }
        else { _o.WriteByte((byte)'j'); Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32LittleEndian(b, i); _o.Write(b); }
        return true;
    }

    private void Put(string what)
    {
        int i = _memo.Count;
        _memo[what] = i;
        if (i < 256) { _o.WriteByte((byte)'q'); _o.WriteByte((byte)i); }
        else { _o.WriteByte((byte)'r'); Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32LittleEndian(b, i); _o.Write(b); }
    }
}
