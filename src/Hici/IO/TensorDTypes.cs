using static TorchSharp.torch;

namespace Hici.IO;

/// <summary>The tensor element types HiCI.NET reads and writes, with their safetensors names.</summary>
public static class TensorDTypes
{
    private static readonly (string Name, ScalarType Type, int Size)[] Table =
    {
        ("F64", ScalarType.Float64, 8), ("I64", ScalarType.Int64, 8),
        ("F32", ScalarType.Float32, 4), ("I32", ScalarType.Int32, 4),
        ("BF16", ScalarType.BFloat16, 2), ("F16", ScalarType.Float16, 2), ("I16", ScalarType.Int16, 2),
        ("I8", ScalarType.Int8, 1), ("U8", ScalarType.Byte, 1), ("BOOL", ScalarType.Bool, 1),
    };

    public static string SupportedSafeTensorsNames => string.Join(", ", Table.Select(e => e.Name));

    public static bool TryParseSafeTensors(string name, out ScalarType type)
    {
        foreach (var e in Table)
            if (e.Name == name) { type = e.Type; return true; }
        type = default;
        return false;
    }

    public static string SafeTensorsName(ScalarType type)
    {
        foreach (var e in Table)
            if (e.Type == type) return e.Name;
        throw new HiciException($"dtype {type} cannot be stored (supported: {SupportedSafeTensorsNames})");
    }

    public static int ElementSize(ScalarType type)
    {
        foreach (var e in Table)
            if (e.Type == type) return e.Size;
        throw new HiciException($"dtype {type} is not supported (supported: {SupportedSafeTensorsNames})");
    }

    /// <summary>Product of <paramref name="shape"/> times the element size, or null on overflow or a negative dim.</summary>
    public static long? ByteSize(long[] shape, int elementSize)
    {
        try
        {
            long n = elementSize;
            foreach (var d in shape)
            {
                if (d < 0) return null;
                n = checked(n * d);
            }
            return n;
        }
        catch (OverflowException) { return null; }
    }
}
