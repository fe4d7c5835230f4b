using Hici.IO;
using Hici.Models;

namespace Hici.Tests.IO;

public class HfConfigReaderTests
{
    private static ModelConfig Fixture(string name) => HfConfigReader.Read(IoFixtures.Path("configs", name + ".json"));

    [Fact]
    public void Llama2_7B()
    {
        var c = Fixture("llama-2-7b");
        Assert.Equal("llama", c.ModelType);
        Assert.Equal((32000, 4096, 11008, 32, 32, 32, 128), (c.VocabSize, c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim));
        Assert.Equal(1e-5, c.RmsNormEps);
        Assert.Equal(10000.0, c.RopeTheta);
        Assert.Null(c.RopeScaling);
        Assert.Equal(4096, c.MaxPositionEmbeddings);
        Assert.False(c.TieWordEmbeddings);
        Assert.False(c.AttentionBias);
        Assert.Equal(1, c.BosTokenId);
        Assert.Equal(new[] { 2 }, c.EosTokenIds);
        Assert.Null(c.PadTokenId);
        Assert.Equal("float16", c.TorchDtype);
        Assert.False(c.UsesQkNorm);
    }

    [Fact]
    public void Llama2_LongLoraLinearScaling()
    {
        var c = Fixture("llama-2-7b-longlora-32k");
        Assert.Equal(new RopeScaling("linear", 8.0), c.RopeScaling);
        Assert.Equal(0, c.PadTokenId);
        Assert.Equal(32001, c.VocabSize);
    }

    [Fact]
    public void Llama3_8B()
    {
        var c = Fixture("llama-3-8b");
        Assert.Equal((128256, 14336, 8, 4, 128), (c.VocabSize, c.IntermediateSize, c.NumKeyValueHeads, c.NumKeyValueGroups, c.HeadDim));
        Assert.Equal(500000.0, c.RopeTheta);
        Assert.Null(c.RopeScaling);
        Assert.Equal(8192, c.MaxPositionEmbeddings);
        Assert.Equal(128000, c.BosTokenId);
        Assert.Equal(new[] { 128001 }, c.EosTokenIds);
        Assert.Equal("bfloat16", c.TorchDtype);
    }

    [Fact]
    public void Llama31_8B_Llama3RopeScaling()
    {
        var c = Fixture("llama-3.1-8b");
        Assert.Equal(new RopeScaling("llama3", 8.0, 8192, 1.0, 4.0), c.RopeScaling);
        Assert.Equal(131072, c.MaxPositionEmbeddings);
        Assert.Equal(new[] { 128001, 128008, 128009 }, Fixture("llama-3.1-8b-instruct").EosTokenIds);
    }

    [Fact]
    public void Qwen3_8B()
    {
        var c = Fixture("qwen3-8b");
        Assert.Equal("qwen3", c.ModelType);
        Assert.Equal((151936, 4096, 12288, 36, 32, 8, 128), (c.VocabSize, c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim));
        Assert.Equal(1e-6, c.RmsNormEps);
        Assert.Equal(1_000_000.0, c.RopeTheta);
        Assert.False(c.TieWordEmbeddings);
        Assert.Equal(40960, c.MaxPositionEmbeddings);
        Assert.Equal(new[] { 151645 }, c.EosTokenIds);
        Assert.True(c.UsesQkNorm);
    }

    [Fact]
    public void Qwen3_HeadDimIsItsOwn()
    {
        var c = Fixture("qwen3-0.6b");
        Assert.Equal((1024, 16, 128), (c.HiddenSize, c.NumAttentionHeads, c.HeadDim)); // 16 × 128 ≠ 1024
        Assert.True(c.TieWordEmbeddings);
    }

    [Fact]
    public void FolderPathReadsConfigJson()
    {
        var dir = IoFixtures.TempDir();
        File.Copy(IoFixtures.Path("configs", "qwen3-8b.json"), Path.Combine(dir, "config.json"));
        Assert.Equal(36, HfConfigReader.Read(dir).NumHiddenLayers);
    }

    private const string Base = """
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100
        """;

    private static string Cfg(string extra, string modelType = "llama") =>
        $"{{\"model_type\": \"{modelType}\", {Base}{(extra.Length > 0 ? ", " + extra : "")}}}";

    [Fact]
    public void Defaults()
    {
        var c = HfConfigReader.Parse(Cfg(""), "tiny/config.json");
        Assert.Equal((4, 16, 2048), (c.NumKeyValueHeads, c.HeadDim, c.MaxPositionEmbeddings));
        Assert.Equal(10000.0, c.RopeTheta);
        Assert.Null(c.RopeScaling);
        Assert.Empty(c.EosTokenIds);
        Assert.Equal("float32", c.TorchDtype);
    }

    [Theory]
    [InlineData("\"rope_scaling\": {\"rope_type\": \"default\"}", null)]
    [InlineData("\"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2.0}", "dynamic")]
    [InlineData("\"rope_scaling\": {\"type\": \"linear\", \"rope_type\": \"dynamic\", \"factor\": 2}", "dynamic")]
    [InlineData("\"pad_token_id\": -1, \"eos_token_id\": null, \"dtype\": \"bfloat16\"", null)]
    [InlineData("\"max_position_embeddings\": 8192.0", null)]
    public void AcceptsVariants(string extra, string? ropeType)
    {
        var c = HfConfigReader.Parse(Cfg(extra), "cfg.json");
        Assert.Equal(ropeType, c.RopeScaling?.Type);
        Assert.Null(c.PadTokenId);
    }

    [Theory]
    [InlineData("", "mistral", "model_type 'mistral' is not supported (supported: llama, qwen3)")]
    [InlineData("\"num_key_value_heads\": 3", "llama", "num_key_value_heads 3 does not divide num_attention_heads 4")]
    [InlineData("\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4}", "llama", "rope_scaling type 'yarn' is not supported")]
    [InlineData("\"rope_scaling\": {\"factor\": 4}", "llama", "rope_scaling has neither 'rope_type' nor 'type'")]
    [InlineData("\"rope_scaling\": {\"type\": \"linear\"}", "llama", "rope_scaling.factor is missing")]
    [InlineData("\"rope_scaling\": {\"type\": \"linear\", \"factor\": 0.5}", "llama", "rope_scaling.factor 0.5 must be at least 1")]
    [InlineData("\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1, \"high_freq_factor\": 4}", "llama", "rope_scaling.original_max_position_embeddings is missing")]
    [InlineData("\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 4, \"high_freq_factor\": 1, \"original_max_position_embeddings\": 8192}", "llama", "high_freq_factor 1 must be greater")]
    [InlineData("\"rope_scaling\": \"linear\"", "llama", "rope_scaling must be an object or null")]
    [InlineData("\"rms_norm_eps\": -1e-6", "llama", "rms_norm_eps must be positive")]
    [InlineData("\"rope_theta\": \"big\"", "llama", "rope_theta must be a number")]
    [InlineData("\"head_dim\": 0", "qwen3", "head_dim must be a positive integer, got 0")]
    [InlineData("\"eos_token_id\": [2, 100]", "llama", "eos_token_id 100 is outside the vocabulary [0, 100)")]
    [InlineData("\"eos_token_id\": [2, \"x\"]", "llama", "eos_token_id must hold integers")]
    [InlineData("\"bos_token_id\": 1.5", "llama", "bos_token_id must be an integer")]
    [InlineData("\"tie_word_embeddings\": \"no\"", "llama", "tie_word_embeddings must be true or false")]
    [InlineData("\"hidden_act\": \"gelu\"", "llama", "hidden_act 'gelu' is not supported")]
    [InlineData("\"mlp_bias\": true", "llama", "mlp_bias true is not supported")]
    [InlineData("\"use_sliding_window\": true", "qwen3", "use_sliding_window true is not supported")]
    [InlineData("\"torch_dtype\": \"int4\"", "llama", "torch_dtype 'int4' is not supported")]
    [InlineData("\"num_hidden_layers\": 99999999999", "llama", "num_hidden_layers must be a positive integer")]
    public void RefusesBadFields(string extra, string modelType, string problem)
    {
        var json = Cfg(extra, modelType).Replace("\"num_hidden_layers\": 2, ", extra.Contains("num_hidden_layers") ? "" : "\"num_hidden_layers\": 2, ");
        var e = Assert.Throws<HiciException>(() => HfConfigReader.Parse(json, "bad/config.json"));
        Assert.StartsWith("bad/config.json: ", e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Theory]
    [InlineData("{\"model_type\": \"llama\", \"hidden_size\": 64}", "num_attention_heads is missing")]
    [InlineData("{\"model_type\": \"llama\", \"hidden_size\": 66, \"num_attention_heads\": 4}", "hidden_size 66 is not divisible by num_attention_heads 4")]
    [InlineData("{\"hidden_size\": 64}", "model_type is missing")]
    [InlineData("[1, 2]", "config must be a JSON object")]
    [InlineData("{\"model_type\": \"llama\",", "not valid JSON")]
    public void RefusesBrokenFiles(string json, string problem)
    {
        var e = Assert.Throws<HiciException>(() => HfConfigReader.Parse(json, "x/config.json"));
        Assert.Contains("x/config.json", e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void RefusesHugeAndMissingFiles()
    {
        var dir = IoFixtures.TempDir();
        var big = Path.Combine(dir, "config.json");
        using (var fs = File.Create(big)) fs.SetLength(HfConfigReader.MaxBytes + 1);
        Assert.Contains("limit", Assert.Throws<HiciException>(() => HfConfigReader.Read(big)).Message);
        Assert.Contains("no such file", Assert.Throws<HiciException>(() => HfConfigReader.Read(Path.Combine(dir, "nope.json"))).Message);
    }
}
