using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.IO;

/// <summary>Locates committed fixtures (tests/fixtures/io) and compares tensors with python-written expectations.</summary>
internal static class IoFixtures
{
    public static string RepoRoot { get; } = FindRoot();

    public static string Path(params string[] parts) =>
        System.IO.Path.Combine([RepoRoot, "tests", "fixtures", "io", .. parts]);

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(System.IO.Path.Combine(d.FullName, "HiCI.slnx"))) return d.FullName;
        throw new InvalidOperationException("cannot find the repository root (HiCI.slnx) above " + AppContext.BaseDirectory);
    }

    public static string TempDir()
    {
        var d = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "hici-io-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>Same dtype, shape and values (exact).</summary>
    public static bool Same(Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype || !a.shape.SequenceEqual(b.shape)) return false;
        if (a.numel() == 0) return true;
        using var eq = a.eq(b);
        using var all = eq.all();
        return all.item<bool>();
    }

    /// <summary>Asserts <paramref name="t"/> has exactly the shape and values python wrote in <paramref name="exp"/>.</summary>
    public static void AssertMatches(JsonElement exp, Tensor t, string what)
    {
        var shape = exp.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        Assert.True(shape.SequenceEqual(t.shape), $"{what}: shape [{string.Join(",", t.shape)}] != [{string.Join(",", shape)}]");
        var values = exp.GetProperty("values").EnumerateArray().ToList();
        if (t.dtype is ScalarType.Int64 or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte)
        {
            using var l = t.to(ScalarType.Int64).reshape(-1);
            var got = l.data<long>().ToArray();
            Assert.Equal(values.Select(v => v.GetInt64()).ToArray(), got);
        }
        else if (t.dtype == ScalarType.Bool)
        {
            using var l = t.reshape(-1);
            Assert.Equal(values.Select(v => v.GetBoolean()).ToArray(), l.data<bool>().ToArray());
        }
        else
        {
            using var d = t.to(ScalarType.Float64).reshape(-1);
            var got = d.data<double>().ToArray();
            var want = values.Select(v => v.GetDouble()).ToArray();
            Assert.Equal(want.Length, got.Length);
            for (int i = 0; i < want.Length; i++)
                Assert.True(want[i].Equals(got[i]), $"{what}[{i}]: {got[i]:R} != {want[i]:R}");
        }
    }
}
