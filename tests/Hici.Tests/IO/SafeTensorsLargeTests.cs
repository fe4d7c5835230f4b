using System.Buffers.Binary;
using System.Text;
using Hici.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.IO;

/// <summary>Tensors bigger than one 64 MB copy chunk, on both the memory-mapped and the positioned-read path.</summary>
public class SafeTensorsLargeTests
{
    private const long N = 17_000_000; // 68 MB of float32

    [Fact]
    public void MultiChunkWriteAndMappedRead()
    {
        var path = Path.Combine(IoFixtures.TempDir(), "big.safetensors");
        using var t = torch.arange(N, ScalarType.Float32);
        SafeTensorsWriter.Save(path, new[] { ("big", t) });
        using var src = SafeTensorsWeightSource.Open(path);
        using var back = src.Load("big");
        Assert.True(IoFixtures.Same(t, back));
        File.Delete(path);
    }

    [Fact]
    public void MultiChunkUnalignedRead()
    {
        var path = Path.Combine(IoFixtures.TempDir(), "unaligned-big.safetensors");
        using var t = torch.arange(N, ScalarType.Float32);
        var header = $"{{\"pad\":{{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}},\"big\":{{\"dtype\":\"F32\",\"shape\":[{N}],\"data_offsets\":[1,{1 + 4 * N}]}}}}";
        var hb = Encoding.UTF8.GetBytes(header);
        using (var fs = File.Create(path))
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)hb.Length);
            fs.Write(len);
            fs.Write(hb);
            fs.WriteByte(7);
            var buf = new byte[4 << 20];
            for (long i = 0; i < N;)
            {
                int k = (int)Math.Min(buf.Length / 4, N - i);
                for (int j = 0; j < k; j++) BinaryPrimitives.WriteSingleLittleEndian(buf.AsSpan(4 * j), i + j);
                fs.Write(buf, 0, 4 * k);
                i += k;
            }
        }
        using var src = SafeTensorsWeightSource.Open(path);
        using var back = src.Load("big");
        Assert.True(IoFixtures.Same(t, back));
        using var pad = src.Load("pad");
        Assert.Equal((byte)7, pad.data<byte>()[0]);
        File.Delete(path);
    }
}
