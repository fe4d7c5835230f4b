using Hici.IO;

namespace Hici.Tests.IO;

/// <summary>
/// Randomly corrupted copies of valid fixtures: opening and loading may succeed (data bytes carry no structure)
/// or fail, but only with a HiciException, never another exception type or a crash.
/// </summary>
public class IoFuzzTests
{
    [Theory]
    [InlineData("safetensors", "all_dtypes.safetensors", 300)]
    [InlineData("safetensors", "unaligned.safetensors", 200)]
    [InlineData("pickle", "state_dict.bin", 300)]
    [InlineData("pickle", "protocol4.bin", 200)]
    public void CorruptFilesFailCleanly(string kind, string fixture, int rounds)
    {
        var original = File.ReadAllBytes(IoFixtures.Path(kind, fixture));
        var dir = IoFixtures.TempDir();
        var rng = new Random(fixture.Length * 7919 + rounds);
        rounds *= int.TryParse(Environment.GetEnvironmentVariable("HICI_FUZZ_SCALE"), out var sc) ? sc : 1;
        for (int round = 0; round < rounds; round++)
        {
            var bytes = (byte[])original.Clone();
            int edits = 1 + rng.Next(4);
            for (int k = 0; k < edits; k++)
            {
                int at = rng.Next(bytes.Length);
                switch (rng.Next(3))
                {
                    case 0: bytes[at] = (byte)rng.Next(256); break;
                    case 1: bytes[at] ^= (byte)(1 << rng.Next(8)); break;
                    default: Array.Resize(ref bytes, Math.Max(1, at)); break;
                }
            }
            var path = Path.Combine(dir, $"{round}{Path.GetExtension(fixture)}");
            File.WriteAllBytes(path, bytes);
            try
            {
                using IWeightSource src = kind == "safetensors" ? SafeTensorsWeightSource.Open(path) : TorchPickleWeightSource.Open(path);
                foreach (var key in src.Keys) src.Load(key).Dispose();
            }
            catch (HiciException) { }
            catch (Exception e)
            {
                Assert.Fail($"round {round}: {e.GetType().Name}: {e.Message}");
            }
            File.Delete(path);
        }
    }
}
