using Hici.IO;

namespace Hici.Tests.IO;

/// <summary>Broken files from tools/make_io_fixtures.py: each must be refused with a message naming file and problem.</summary>
public class SafeTensorsHostileTests
{
    [Theory]
    [InlineData("truncated.safetensors", "past the end of the data region")]
    [InlineData("tiny.safetensors", "shorter than the 8-byte header length")]
    [InlineData("header_too_big.safetensors", "exceeds the limit")]
    [InlineData("header_past_eof.safetensors", "runs past the end of the file")]
    [InlineData("bad_json.safetensors", "not valid JSON")]
    [InlineData("not_object.safetensors", "must be an object")]
    [InlineData("bad_utf8.safetensors", "not valid UTF-8")]
    [InlineData("overlap.safetensors", "overlap")]
    [InlineData("shape_mismatch.safetensors", "shape/size mismatch")]
    [InlineData("unknown_dtype.safetensors", "unsupported dtype 'Q4_K'")]
    [InlineData("negative_shape.safetensors", "non-negative integers")]
    [InlineData("shape_overflow.safetensors", "overflows")]
    [InlineData("offsets_reversed.safetensors", "end before they begin")]
    [InlineData("offsets_past_end.safetensors", "past the end of the data region")]
    [InlineData("metadata_not_string.safetensors", "__metadata__ value 'step' must be a string")]
    [InlineData("float_offsets.safetensors", "non-negative integers")]
    [InlineData("duplicate_name.safetensors", "names 'a' twice")]
    [InlineData("index_missing_shard", "model-00009-of-00009.safetensors', which does not exist")]
    [InlineData("index_traversal", "not a plain file name")]
    [InlineData("index_wrong_key", "'lm_head.weight' to shard 'model-00001-of-00001.safetensors', which has no such tensor")]
    [InlineData("index_bad_json", "not valid JSON")]
    [InlineData("duplicate_across_files", "must not share names")]
    public void RefusesWithAClearMessage(string fixture, string problem)
    {
        var path = IoFixtures.Path("safetensors", "hostile", fixture);
        var e = Assert.Throws<HiciException>(() => SafeTensorsWeightSource.Open(path).Dispose());
        Assert.Contains(problem, e.Message);
        Assert.Contains(fixture, e.Message);
    }

    [Fact]
    public void NamesTheTensorAtFault()
    {
        var e = Assert.Throws<HiciException>(() =>
            SafeTensorsWeightSource.Open(IoFixtures.Path("safetensors", "hostile", "shape_mismatch.safetensors")).Dispose());
        Assert.Contains("tensor 'a'", e.Message);
    }

    [Fact]
    public void MissingPathIsAClearError()
    {
        var e = Assert.Throws<HiciException>(() => SafeTensorsWeightSource.Open("/nonexistent/model.safetensors"));
        Assert.Contains("no such file or folder", e.Message);
    }

    [Fact]
    public void FileTruncatedAfterOpenFailsOnLoadNotCrash()
    {
        var dir = IoFixtures.TempDir();
        var path = Path.Combine(dir, "x.safetensors");
        File.Copy(IoFixtures.Path("safetensors", "unaligned.safetensors"), path);
        using var src = SafeTensorsWeightSource.Open(path);
        using (var fs = new FileStream(path, FileMode.Open)) fs.SetLength(fs.Length - 20);
        var e = Assert.Throws<HiciException>(() => src.Load("i64").Dispose());
        Assert.Contains("truncated", e.Message);
        Assert.Contains("'i64'", e.Message);
    }
}
