using System.Buffers.Binary;
using System.Text;

namespace Hici.IO;

/// <summary>
/// A minimal pickle VM for PyTorch weight files. It knows only the opcodes torch.save emits (protocol 2, plus
/// the protocol 3–5 forms of the same operations) and builds only the objects in TorchPickleObjects.cs:
/// any global outside <see cref="TorchPickleAllowList"/> is refused when named, before anything could call it.
/// </summary>
internal sealed class TorchUnpickler
{
    private const int MaxMemo = 1 << 20;
    private const int MaxMarks = 1000;
    private const int MaxStack = 1 << 22;

    private readonly byte[] _p;
    private readonly string _origin;
    private readonly Func<object[], StorageRef> _persistentLoad;
    private readonly List<object> _stack = new();
    private readonly Stack<int> _marks = new();
    private readonly Dictionary<long, object> _memo = new();
    private int _pos;

    public TorchUnpickler(byte[] pickle, string origin, Func<object[], StorageRef> persistentLoad)
    {
        _p = pickle;
        _origin = origin;
        _persistentLoad = persistentLoad;
    }

    public HiciException Error(string problem) => new($"{_origin}: {problem}");

    public object Load()
    {
        while (true)
        {
            int at = _pos;
            byte op = U8();
            switch (op)
            {
                case 0x80: if (U8() > 5) throw Error("pickle protocol above 5"); break;           // PROTO
                case 0x95: Bytes(8); break;                                                       // FRAME (a hint only)
                case (byte)'.': return _stack.Count == 1 ? _stack[0] : throw Error($"pickle stops with {_stack.Count} values on the stack"); // STOP
                case (byte)'(':                                                                   // MARK
                    if (_marks.Count >= MaxMarks) throw Error($"pickle nests deeper than {MaxMarks} levels");
                    _marks.Push(_stack.Count); break;
                case (byte)'}': Push(new PickleDict()); break;                                    // EMPTY_DICT
                case (byte)']': Push(new List<object>()); break;                                  // EMPTY_LIST
                case (byte)')': Push(Array.Empty<object>()); break;                               // EMPTY_TUPLE
                case (byte)'t': Push(PopMark()); break;                                           // TUPLE
                case 0x85: Push(PopN(1)); break;                                                  // TUPLE1
                case 0x86: Push(PopN(2)); break;                                                  // TUPLE2
                case 0x87: Push(PopN(3)); break;                                                  // TUPLE3
                case (byte)'l': Push(PopMark().ToList()); break;                                  // LIST
                case (byte)'d': { var d = new PickleDict(); SetItems(d, PopMark()); Push(d); break; } // DICT
                case (byte)'s': { var kv = PopN(2); SetItems(Top<PickleDict>("SETITEM"), kv); break; }
                case (byte)'u': { var kv = PopMark(); SetItems(Top<PickleDict>("SETITEMS"), kv); break; }
                case (byte)'a': { var v = PopN(1); Top<List<object>>("APPEND").Add(v[0]); break; }
                case (byte)'e': { var v = PopMark(); Top<List<object>>("APPENDS").AddRange(v); break; }
                case (byte)'X': Push(Utf8(checked((int)Len(4)))); break;                          // BINUNICODE
                case 0x8c: Push(Utf8(U8())); break;                                               // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(checked((int)Len(8)))); break;                               // BINUNICODE8
                case (byte)'B': Push(Bytes(checked((int)Len(4))).ToArray()); break;               // BINBYTES
                case (byte)'C': Push(Bytes(U8()).ToArray()); break;                               // SHORT_BINBYTES
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Bytes(4))); break; // BININT
                case (byte)'K': Push((long)U8()); break;                                          // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2))); break; // BININT2
                case 0x8a: Push(Long1()); break;                                                  // LONG1
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Bytes(8))); break;      // BINFLOAT
                case (byte)'N': Push(PickleNone.Instance); break;                                 // NONE
                case 0x88: Push(true); break;                                                     // NEWTRUE
                case 0x89: Push(false); break;                                                    // NEWFALSE
                case (byte)'q': Memo(U8()); break;                                                // BINPUT
                case (byte)'r': Memo(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4))); break;   // LONG_BINPUT
                case 0x94: Memo(_memo.Count); break;                                              // MEMOIZE
                case (byte)'h': Push(Recall(U8())); break;                                        // BINGET
                case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)))); break; // LONG_BINGET
                case (byte)'c': Push(Global(Line(), Line())); break;                              // GLOBAL
                case 0x93:                                                                        // STACK_GLOBAL
                {
                    var mn = PopN(2);
                    if (mn[0] is not string m || mn[1] is not string n) throw Error("STACK_GLOBAL needs two strings");
                    Push(Global(m, n));
                    break;
                }
                case (byte)'R':                                                                   // REDUCE
                {
                    var fa = PopN(2);
                    if (fa[0] is not PickleGlobal g) throw Error($"REDUCE on {Describe(fa[0])}, which is not callable");
                    if (fa[1] is not object[] args) throw Error($"REDUCE of {g} without an argument tuple");
                    Push(TorchPickleAllowList.Call(g, args, Error));
                    break;
                }
                case (byte)'b':                                                                   // BUILD
                {
                    var state = PopN(1)[0];
                    // OrderedDict state_dicts carry their '_metadata' (module versions) as instance state: unused here.
                    if (Peek() is not PickleDict || state is not (PickleDict or PickleNone))
                        throw Error($"BUILD on {Describe(Peek())} is not supported");
                    break;
                }
                case (byte)'Q':                                                                   // BINPERSID
                {
                    var pid = PopN(1)[0];
                    Push(_persistentLoad(pid as object[] ?? throw Error($"persistent id is {Describe(pid)}, not a tuple")));
                    break;
                }
                default:
                    throw Error($"unsupported pickle opcode 0x{op:x2} ('{(op is >= 32 and < 127 ? (char)op : '?')}') at byte {at}");
            }
        }
    }

    private PickleGlobal Global(string module, string name)
    {
        if (!TorchPickleAllowList.IsAllowed(module, name))
            throw Error($"refusing global '{module}.{name}': not allowed in a weights file (allowed: {TorchPickleAllowList.Describe()})");
        return new PickleGlobal(module, name);
    }

    private void SetItems(PickleDict d, object[] kv)
    {
        if (kv.Length % 2 != 0) throw Error("SETITEMS with an odd number of values");
        for (int i = 0; i < kv.Length; i += 2)
        {
            if (kv[i] is not (string or long)) throw Error($"dict key {Describe(kv[i])} is not a str or int");
            d.Set(kv[i], kv[i + 1]);
        }
    }

    private void Push(object o)
    {
        if (_stack.Count >= MaxStack) throw Error("pickle stack too deep");
        _stack.Add(o);
    }

    private object Peek() => _stack.Count > 0 ? _stack[^1] : throw Error("pickle stack underflow");

    private T Top<T>(string op) where T : class =>
        Peek() as T ?? throw Error($"{op} on {Describe(Peek())}");

    private object[] PopN(int n)
    {
        int floor = _marks.Count > 0 ? _marks.Peek() : 0;
        if (_stack.Count - n < floor) throw Error("pickle stack underflow");
        var r = _stack.GetRange(_stack.Count - n, n).ToArray();
        _stack.RemoveRange(_stack.Count - n, n);
        return r;
    }

    private object[] PopMark()
    {
        if (_marks.Count == 0) throw Error("pickle uses a MARK that was never set");
        int m = _marks.Pop();
        var r = _stack.GetRange(m, _stack.Count - m).ToArray();
        _stack.RemoveRange(m, _stack.Count - m);
        return r;
    }

    private void Memo(long i)
    {
        if (_memo.Count >= MaxMemo && !_memo.ContainsKey(i)) throw Error($"pickle memo exceeds {MaxMemo} entries");
        _memo[i] = Peek();
    }

    private object Recall(long i) => _memo.TryGetValue(i, out var o) ? o : throw Error($"pickle reads memo {i}, which was never set");

    private byte U8() => _pos < _p.Length ? _p[_pos++] : throw Error("pickle ends before STOP (truncated?)");

    private ReadOnlySpan<byte> Bytes(int n)
    {
        if (n < 0 || n > _p.Length - _pos) throw Error("pickle ends inside a value (truncated?)");
        var r = _p.AsSpan(_pos, n);
        _pos += n;
        return r;
    }

    private long Len(int width)
    {
        var b = Bytes(width);
        ulong n = width == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(b) : BinaryPrimitives.ReadUInt64LittleEndian(b);
        if (n > (ulong)(_p.Length - _pos)) throw Error($"pickle value of {n} bytes runs past the end of the pickle");
        return (long)n;
    }

    private string Utf8(int n)
    {
        try { return new UTF8Encoding(false, true).GetString(Bytes(n)); }
        catch (DecoderFallbackException) { throw Error("pickle string is not valid UTF-8"); }
    }

    private long Long1()
    {
        int n = U8();
        if (n > 8) throw Error($"pickle integer of {n} bytes is too large");
        var b = Bytes(n);
        long v = 0;
        for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
        if (n > 0 && n < 8 && (b[n - 1] & 0x80) != 0) v -= 1L << (8 * n); // two's complement sign
        return v;
    }

    private string Line()
    {
        int end = Array.IndexOf(_p, (byte)'\n', _pos);
        if (end < 0 || end - _pos > 256) throw Error("GLOBAL name is unterminated or too long");
        var s = Utf8(end - _pos);
        _pos++;
        return s;
    }

    internal static string Describe(object o) => o switch
    {
        string s => $"str '{s}'",
        long l => $"int {l}",
        object[] t => $"tuple of {t.Length}",
        List<object> => "list",
        PickleDict => "dict",
        TensorRef => "tensor",
        StorageRef => "storage",
        PickleGlobal g => g.ToString(),
        _ => o.GetType().Name,
    };
}
