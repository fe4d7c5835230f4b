using Hici.IO;

namespace Hici.Tests.IO;

/// <summary>Malicious and broken pickles: refused on open, naming the file and the problem (or the global).</summary>
public class TorchPickleHostileTests
{
    [Theory]
    [InlineData("evil_os_system.bin", "refusing global 'posix.system'")]
    [InlineData("evil_builtins_eval.bin", "refusing global 'builtins.eval'")]
    [InlineData("untyped_storage.bin", "refusing global 'torch.UntypedStorage'")]
    [InlineData("legacy_format.bin", "not a PyTorch zip checkpoint")]
    [InlineData("not_zip.bin", "not a PyTorch zip checkpoint")]
    [InlineData("storage_size_mismatch.bin", "storage '0' claims 10 x FloatStorage but its entry holds 16 bytes")]
    [InlineData("extent_past_storage.bin", "reaches element 6 but the storage holds 4")]
    [InlineData("expand_bomb.bin", "is a view of 1099511627776 elements over 4; expanded views this large are refused")]
    [InlineData("negative_stride.bin", "negative or non-integer size/stride")]
    [InlineData("missing_entry.bin", "storage '0' has no zip entry archive/data/0")]
    [InlineData("compressed_entry.bin", "compressed")]
    [InlineData("unknown_opcode.bin", "unsupported pickle opcode 0x69 ('i')")]
    [InlineData("truncated_pickle.bin", "truncated")]
    [InlineData("bad_memo.bin", "memo 5, which was never set")]
    [InlineData("deep_marks.bin", "nests deeper than")]
    [InlineData("not_dict.bin", "holds a list, not a state_dict")]
    [InlineData("non_tensor_value.bin", "'step' is a int 5, not a tensor")]
    [InlineData("hooks_not_empty.bin", "_rebuild_tensor_v2 called with unexpected arguments")]
    [InlineData("call_storage_class.bin", "torch.FloatStorage cannot be called")]
    [InlineData("two_pickles.bin", "expected one '<name>/data.pkl'")]
    [InlineData("big_endian.bin", "byteorder is 'big'")]
    public void Refuses(string fixture, string problem)
    {
        var e = Assert.Throws<HiciException>(() => TorchPickleWeightSource.Open(IoFixtures.Path("pickle", "hostile", fixture)).Dispose());
        Assert.Contains(problem, e.Message);
        Assert.Contains(fixture, e.Message);
    }

    [Fact]
    public void MissingFile()
    {
        var e = Assert.Throws<HiciException>(() => TorchPickleWeightSource.Open("/nonexistent/adapter_model.bin"));
        Assert.Contains("no such file", e.Message);
    }
}
