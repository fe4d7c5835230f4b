using System.IO.Compression;
using Hici.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.IO;

public class TorchPickleWriterTests
{
    private static readonly string Committed = IoFixtures.Path("pickle", "written_by_hici", "all_dtypes.bin");

    /// <summary>The python-produced all_dtypes.bin values, in file order, rewritten by our writer.</summary>
    private static string WriteAllDtypes(string path)
    {
        using var src = TorchPickleWeightSource.Open(IoFixtures.Path("pickle", "all_dtypes.bin"));
        var tensors = src.Keys.Select(k => (k, src.Load(k))).ToList();
        TorchPickleWriter.Save(path, tensors);
        foreach (var (_, t) in tensors) t.Dispose();
        return path;
    }

    [Fact]
    public void RoundTripsThroughOurReader()
    {
        var path = Path.Combine(IoFixtures.TempDir(), "trainable_params.bin");
        using var big = torch.randn(6, 4);
        var tensors = new List<(string, Tensor)>
        {
            ("f32", torch.randn(3, 2)), ("bf16", torch.randn(5).to(ScalarType.BFloat16)),
            ("f16", torch.randn(2, 2).to(ScalarType.Float16)), ("f64", torch.randn(2, ScalarType.Float64)),
            ("i64", torch.tensor(new long[] { long.MinValue, long.MaxValue, 3 })), ("i32", torch.tensor(new[] { int.MinValue, 1 })),
            ("i16", torch.ones(2, ScalarType.Int16)), ("i8", torch.full(2, -3, ScalarType.Int8)),
            ("u8", torch.full(2, 250, ScalarType.Byte)), ("bool", torch.tensor(new[] { true, false })),
            ("scalar", torch.tensor(1.25f)), ("empty", torch.empty(0, 3)),
            ("view", big.t().narrow(0, 1, 2)), // non-contiguous input is written as its values
            ("model.layers.0.self_attn.hierarchical_aggregator.weight", torch.randn(2, 3)),
        };
        TorchPickleWriter.Save(path, tensors);
        using (var z = ZipFile.OpenRead(path))
            Assert.Equal("trainable_params/data.pkl", z.Entries[0].FullName);
        using var src = TorchPickleWeightSource.Open(path);
        Assert.Equal(tensors.Select(x => x.Item1), src.Keys);
        foreach (var (name, t) in tensors)
        {
            using var back = src.Load(name);
            Assert.True(IoFixtures.Same(t, back), name);
            t.Dispose();
        }
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, "*.tmp-*"));
    }

    [Fact]
    public void RefusesUnstorableInput()
    {
        var path = Path.Combine(IoFixtures.TempDir(), "x.bin");
        using var t = torch.ones(1);
        using var c = torch.ones(1, ScalarType.ComplexFloat32);
        Assert.Contains("given twice", Assert.Throws<HiciException>(() => TorchPickleWriter.Save(path, new[] { ("a", t), ("a", t) })).Message);
        Assert.Contains("tensor 'c'", Assert.Throws<HiciException>(() => TorchPickleWriter.Save(path, new[] { ("c", c) })).Message);
        Assert.False(File.Exists(path));
    }

    /// <summary>
    /// tools/check_pickle_writer.py has verified the committed file with real torch.load(weights_only=True); this keeps
    /// that file equal (entry by entry) to what the writer produces now. HICI_UPDATE_FIXTURES=1 refreshes it.
    /// </summary>
    [Fact]
    public void CommittedWriterOutputIsCurrent()
    {
        var fresh = WriteAllDtypes(Path.Combine(IoFixtures.TempDir(), "all_dtypes.bin"));
        if (Environment.GetEnvironmentVariable("HICI_UPDATE_FIXTURES") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Committed)!);
            File.Copy(fresh, Committed, overwrite: true);
        }
        Assert.True(File.Exists(Committed), $"missing {Committed}: run the tests with HICI_UPDATE_FIXTURES=1, then tools/check_pickle_writer.py");
        Assert.Equal(Entries(Committed), Entries(fresh));
    }

    /// <summary>
    /// What torch.load needs from the writer. Without python (CI) it is still checked: the fresh output is entry for
    /// entry the committed file that tools/check_pickle_writer.py accepted, every entry is stored (torch's
    /// PyTorchStreamReader cannot read deflated records) and the records torch.load opens are there. With python
    /// and torch, real torch.load(weights_only=True) reads the fresh file as well.
    /// </summary>
    [Fact]
    public void TorchLoadAcceptsWriterOutput()
    {
        var fresh = WriteAllDtypes(Path.Combine(IoFixtures.TempDir(), "all_dtypes.bin"));
        Assert.True(File.Exists(Committed), $"missing {Committed}");
        Assert.Equal(Entries(Committed), Entries(fresh));
        using (var z = ZipFile.OpenRead(fresh))
        {
            Assert.All(z.Entries, e => Assert.Equal(e.Length, e.CompressedLength));
            var root = z.Entries[0].FullName.Split('/')[0];
            Assert.Equal($"{root}/data.pkl", z.Entries[0].FullName);
            var names = z.Entries.Select(e => e.FullName).ToHashSet();
            Assert.Contains($"{root}/byteorder", names);
            Assert.Contains($"{root}/version", names);
            Assert.Contains($"{root}/data/0", names);
        }

    }

    /// <summary>Real torch.load(weights_only=True) reads the fresh writer output (tools/check_pickle_writer.py).</summary>
    [PythonTorchFact]
    public void RealTorchLoadReadsWriterOutput()
    {
        var fresh = WriteAllDtypes(Path.Combine(IoFixtures.TempDir(), "all_dtypes.bin"));
        var r = PythonTorch.Run(PythonTorch.Path!, $"\"{Path.Combine(IoFixtures.RepoRoot, "tools", "check_pickle_writer.py")}\" \"{fresh}\"");
        Assert.True(r.ExitCode == 0, r.Output);
        Assert.Contains("ok:", r.Output);
    }

    private static List<(string, string)> Entries(string path)
    {
        using var z = ZipFile.OpenRead(path);
        return z.Entries.Select(e =>
        {
            using var s = e.Open();
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            return (e.FullName, Convert.ToHexString(ms.ToArray()));
        }).ToList();
    }
}
