using Hici.IO;
using Hici.Tests.Cli;
using static TorchSharp.torch;

namespace Hici.Tests.Training;

[Collection("Console")]
public class InitCommandTests
{
    [Fact]
    public void InitWritesHfInitialisation()
    {
        using var dir = new TempDir();
        var cfg = Path.Combine(dir.Path, "config.json");
        File.WriteAllText(cfg, """{"model_type":"llama","vocab_size":512,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"max_position_embeddings":128,"initializer_range":0.05}""");
        var outDir = Path.Combine(dir.Path, "m");
        var r = CliRunner.Run("init", "--config", cfg, "--output", outDir, "--seed", "4");
        Assert.True(r.Code == 0, r.Err);
        using var w = SafeTensorsWeightSource.Open(outDir);
        Assert.Equal(2 * 9 + 3, w.Keys.Count);                    // 9 per layer, embed, norm, lm_head
        foreach (var k in w.Keys)
        {
            using var t = w.Load(k, ScalarType.Float32);
            if (k.EndsWith("norm.weight")) Assert.Equal(1.0, t.min().item<float>());
            else
            {
                // N(0, 0.05²): the sample std of ≥ 4096 draws is within 5 % of 0.05, the mean near 0
                Assert.InRange(t.std().item<float>(), 0.0475, 0.0525);
                Assert.InRange(t.mean().item<float>(), -0.005, 0.005);
            }
        }
        Assert.True(File.Exists(Path.Combine(outDir, "config.json")));
        Assert.Contains("exists and is not empty", CliRunner.AssertOneLineError(CliRunner.Run("init", "--config", cfg, "--output", outDir)));
    }
}
