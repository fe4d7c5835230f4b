using Hici.IO;
using Hici.Models;
using Hici.Tests.Lora;
using Hici.Tests.Models;

namespace Hici.Tests.Cli;

[Collection("Console")]
public class MergeCommandTests
{
    [Fact]
    public void MergesThePublishedLayout()
    {
        using var tmp = new TempDir();
        var dir = LoraFixtures.Dir("qwen3-gqa");
        var outDir = tmp.Sub("merged");
        var r = CliRunner.Run("merge", "--model", ModelFixtures.Dir("qwen3-gqa"), "--adapter", Path.Combine(dir, "adapter-hici"),
            "--trainable", Path.Combine(dir, "trainable_params.bin"), "--output", outDir, "--context-size", "200", "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("loaded LoRA for 8 modules", r.Out);
        Assert.Contains("LoRA merged into 16 projections", r.Out);
        Assert.Contains("factor 1.5625", r.Out);
        Assert.Equal(new RopeScaling("linear", 1.5625), HfConfigReader.Read(outDir).RopeScaling);
        Assert.True(File.Exists(Path.Combine(outDir, "hici.safetensors")));
    }

    [Fact]
    public void UserErrorsAreOneLine()
    {
        using var tmp = new TempDir();
        var a = CliRunner.AssertOneLineError(CliRunner.Run("merge", "--model", ModelFixtures.Dir("qwen3-gqa"), "--adapter", tmp.Path, "--output", tmp.Sub("o")));
        Assert.Contains("adapter_config.json: no such file", a);
        var b = CliRunner.AssertOneLineError(CliRunner.Run("merge", "--model", ModelFixtures.Dir("qwen3-gqa"), "--adapter", LoraFixtures.Adapter("qwen3-gqa"),
            "--output", tmp.Sub("o"), "--max-shard-size", "lots"));
        Assert.Contains("--max-shard-size: 'lots' is not a size", b);
        Assert.False(Directory.Exists(tmp.Sub("o")));
    }

    [Theory]
    [InlineData("5GB", 5_000_000_000)]
    [InlineData("500MB", 500_000_000)]
    [InlineData("1.5KB", 1_500)]
    [InlineData("4096", 4096)]
    public void ShardSizes(string s, long bytes) => Assert.Equal(bytes, Hici.Cli.Commands.MergeCommand.ParseSize(s));
}
