using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.IO;

/// <summary>
/// Moves raw bytes between files/streams and CPU tensor memory in bounded chunks: never a managed copy of a
/// whole tensor, and TorchSharp's byte spans are int-sized, so tensors over 2 GB must go piecewise anyway.
/// </summary>
internal static class TensorBytes
{
    private const long ChunkBytes = 64L << 20;

    /// <summary>Fills contiguous CPU tensor <paramref name="t"/> from <paramref name="file"/> at byte <paramref name="offset"/>.</summary>
    public static void Read(SafeFileHandle file, Tensor t, long offset, Func<string> what)
    {
        ForEachChunk(t, span =>
        {
            int done = 0;
            while (done < span.Length)
            {
                int n = RandomAccess.Read(file, span[done..], offset + done);
                if (n <= 0) throw new HiciException($"{what()}: file ends early (truncated?)");
                done += n;
            }
            offset += span.Length;
        });
    }

    /// <summary>Fills contiguous CPU tensor <paramref name="t"/> with the next bytes of <paramref name="stream"/>.</summary>
    public static void Read(Stream stream, Tensor t, Func<string> what)
    {
        ForEachChunk(t, span =>
        {
            int done = 0;
            while (done < span.Length)
            {
                int n = stream.Read(span[done..]);
                if (n <= 0) throw new HiciException($"{what()}: data ends early (truncated?)");
                done += n;
            }
        });
    }

    /// <summary>Writes the bytes of contiguous CPU tensor <paramref name="t"/> to <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, Tensor t) => ForEachChunk(t, span => stream.Write(span));

    private delegate void SpanAction(Span<byte> span);

    private static void ForEachChunk(Tensor t, SpanAction action)
    {
        if (t.device_type != DeviceType.CPU || !t.is_contiguous())
            throw new InvalidOperationException("raw byte access needs a contiguous CPU tensor");
        long numel = t.numel();
        if (numel == 0) return;
        using var flat = t.view(-1);
        long step = Math.Max(1, ChunkBytes / t.ElementSize);
        for (long i = 0; i < numel; i += step)
        {
            using var part = flat.narrow(0, i, Math.Min(step, numel - i));
            action(part.bytes);
        }
    }
}
