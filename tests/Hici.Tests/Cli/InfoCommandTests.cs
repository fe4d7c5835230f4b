using System.Text.Json;
using Hici.IO;
using Hici.Tests.Models;

namespace Hici.Tests.Cli;

[Collection("Console")]
public class InfoCommandTests
{
    [Fact]
    public void PrintsArchitectureCountsAndMemory()
    {
        var r = CliRunner.Run("info", "--model", ModelFixtures.Dir("qwen3-gqa"));
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("Qwen3ForCausalLM", r.Out);
        Assert.Contains("GQA ×2", r.Out);
        Assert.Contains("lm_head tied", r.Out);
        Assert.Contains("KV cache", r.Out);
    }

    [Theory]
    [InlineData("llama-mha-linear")]
    [InlineData("llama3-gqa-tied")]
    [InlineData("qwen3-gqa")]
    public void JsonCountsEqualTheCheckpoint(string name)
    {
        var r = CliRunner.Run("info", "--model", ModelFixtures.Dir(name), "--json", "--dtype", "bf16");
        Assert.True(r.Code == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        var p = doc.RootElement.GetProperty("parameters");
        using var src = SafeTensorsWeightSource.Open(ModelFixtures.Dir(name));
        long inFile = src.Keys.Sum(k => src.Shape(k).Aggregate(1L, (a, b) => a * b));
        Assert.Equal(inFile, p.GetProperty("total").GetInt64());
        Assert.Equal(inFile * 2, doc.RootElement.GetProperty("memory_bytes").GetProperty("weights").GetInt64());
        Assert.Equal(p.GetProperty("total").GetInt64(),
            p.GetProperty("embedding").GetInt64() + p.GetProperty("layers").GetInt64() + p.GetProperty("final_norm").GetInt64() + p.GetProperty("lm_head").GetInt64());
    }

    [Fact]
    public void WorksWithOnlyConfigJson()
    {
        var dir = CliRunner.TempDir();
        try
        {
            File.Copy(Path.Combine(ModelFixtures.Dir("llama3-gqa-tied"), "config.json"), Path.Combine(dir, "config.json"));
            var r = CliRunner.Run("info", "--model", dir);
            Assert.True(r.Code == 0, r.Err);
            Assert.Contains("none (config.json only)", r.Out);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void MissingFolderIsOneLine()
    {
        var line = CliRunner.AssertOneLineError(CliRunner.Run("info", "--model", "/nonexistent/model"));
        Assert.Contains("/nonexistent/model", line);
    }

    [Fact]
    public void BadConfigIsOneLine()
    {
        var dir = CliRunner.TempDir();
        try
        {
            File.WriteAllText(Path.Combine(dir, "config.json"), "{\"model_type\": \"llama\", \"hidden_size\": ");
            var line = CliRunner.AssertOneLineError(CliRunner.Run("info", "--model", dir));
            Assert.Contains("config.json", line);
        }
        finally { Directory.Delete(dir, true); }
    }
}
