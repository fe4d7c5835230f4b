using Hici.Text;

namespace Hici.Tests.Text;

/// <summary>The DecodeStream examples from HF tokenizers' own documentation (doc-tests in
/// tokenizers/src/tokenizer/mod.rs), rebuilt as tokenizer.json files.</summary>
public sealed class HfDocExampleTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("hici-doc-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    HfTokenizer Load(string json)
    {
        File.WriteAllText(Path.Combine(_dir, "tokenizer.json"), json);
        return HfTokenizer.Load(_dir);
    }

    /// <summary>"Single byte_fallback is valid utf-8" → " "; "Invalid utf-8" → None; then "é" for [1, 2].</summary>
    [Fact]
    public void ByteFallbackStreamHoldsIncompleteUtf8()
    {
        var tok = Load("""
            {"normalizer": {"type": "NFC"}, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
             "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
             "decoder": {"type": "ByteFallback"},
             "model": {"type": "BPE", "byte_fallback": true, "vocab": {"<0x20>": 0, "<0xC3>": 1, "<0xA9>": 2, " This": 3}, "merges": []}}
            """);
        var stream = tok.CreateStreamDecoder();
        Assert.Equal(" ", stream.Step(0));
        Assert.Null(stream.Step(1));
        Assert.Equal("é", stream.Step(2));
    }

    /// <summary>decode([0, 0]) = "This This", decode([0]) = "This", and the stream yields "This", " This".</summary>
    [Fact]
    public void MetaspaceStreamKeepsWordSpaces()
    {
        var tok = Load("""
            {"decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
             "model": {"type": "BPE", "byte_fallback": true, "vocab": {"▁This": 0}, "merges": []}}
            """);
        Assert.Equal("This This", tok.Decode([0, 0]));
        Assert.Equal("This", tok.Decode([0]));
        var stream = tok.CreateStreamDecoder();
        Assert.Equal("This", stream.Step(0));
        Assert.Equal(" This", stream.Step(0));
    }
}
