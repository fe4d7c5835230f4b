using Hici.Hierarchical;
using Hici.IO;
using Hici.Models;

namespace Hici.Tests.Hierarchical;

public class HiciConfigTests
{
    private static readonly ModelConfig Llama2_7B = new()
    {
        ModelType = "llama", VocabSize = 32000, HiddenSize = 4096, IntermediateSize = 11008, NumHiddenLayers = 32,
        NumAttentionHeads = 32, NumKeyValueHeads = 32, HeadDim = 128,
    };

    private static readonly ModelConfig Qwen3_8B = new()
    {
        ModelType = "qwen3", VocabSize = 151936, HiddenSize = 4096, IntermediateSize = 12288, NumHiddenLayers = 36,
        NumAttentionHeads = 32, NumKeyValueHeads = 8, HeadDim = 128,
    };

    /// <summary>M=8, K=4, h=8, β=512, C=128 (the published configuration).</summary>
    private static readonly HiciConfig Published = new() { LocalSlots = 8, GlobalSlots = 4, NumHeads = 8, BottleneckDim = 512, SharedCompressDim = 128 };

    [Fact]
    public void ParameterCountsOfThePublishedModels()
    {
        var llama = HiciParameterCount.For(Llama2_7B, Published);
        Assert.Equal(12_160_257, llama.PerLayer);
        Assert.Equal(389_128_224, llama.Total);
        Assert.Equal(6_738_415_616, llama.BaseParameters);
        Assert.Equal("5.46", (llama.ShareOfModel * 100).ToString("F2", System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("5.77", (llama.ShareOfBase * 100).ToString("F2", System.Globalization.CultureInfo.InvariantCulture));

        var qwen = HiciParameterCount.For(Qwen3_8B, Published);
        Assert.Equal(12_160_257, qwen.PerLayer);
        Assert.Equal(437_769_252, qwen.Total);
        Assert.Equal(8_190_735_360, qwen.BaseParameters);
        Assert.Equal("5.07", (qwen.ShareOfModel * 100).ToString("F2", System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains("12,160,257 per layer", qwen.ToString());
        Assert.Contains("437,769,252", qwen.ToString());
        Assert.Contains("(5.07%", qwen.ToString());

        // per-module figures of the reference's training logs
        Assert.Equal(8_421_376, Published.ExpectedShapes(4096).Where(e => e.Key.StartsWith("local_constructor.")).Sum(e => e.Shape.Aggregate(1L, (a, b) => a * b)));
        Assert.Equal(3_738_881, Published.ExpectedShapes(4096).Where(e => e.Key.StartsWith("global_integrator.")).Sum(e => e.Shape.Aggregate(1L, (a, b) => a * b)));
        Assert.Equal(8_421_376 + 13_638_657, (Published with { UseSharedCompressor = false, CompressDim = 512 }).ParametersPerLayer(4096));
    }

    [Theory]
    [InlineData("llama-2-7b.json", 389_128_224L, "5.46")]
    [InlineData("qwen3-8b.json", 437_769_252L, "5.07")]
    public void ParameterCountsFromRealConfigJson(string file, long total, string share)
    {
        var path = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Fixture.PathOf("x"))!, "..", "io", "configs", file));
        Assert.True(File.Exists(path), path);
        var c = HiciParameterCount.For(HfConfigReader.Read(path), Published);
        Assert.Equal(12_160_257, c.PerLayer);
        Assert.Equal(total, c.Total);
        Assert.Equal(share, (c.ShareOfModel * 100).ToString("F2", System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void JsonRoundTripAndDefaults()
    {
        var d = new HiciConfig();
        Assert.Equal((8, 4, 8, 512, 128), (d.LocalSlots, d.GlobalSlots, d.NumHeads, d.BottleneckDim, d.SharedCompressDim));
        Assert.Equal(0.25, d.SegmentRatio);
        Assert.Equal(512, d.GlobalWidth);
        var c = d with
        {
            CausalMode = HiciCausalMode.CausalShiftG, SegmentSize = 1024, MixedSegmentRatios = HiciConfig.DefaultMixedRatios,
            Forward = HiciForwardKind.Inference, UseSharedCompressor = false, CompressDim = 256,
        };
        var back = HiciConfig.FromJson(c.ToJson());
        Assert.Equal(c.ToJson(), back.ToJson());
        Assert.Equal(HiciCausalMode.CausalShiftG, back.CausalMode);
        Assert.Equal(1024, back.SegmentSize);
        Assert.Equal(new[] { 0.5, 0.25, 0.125 }, back.MixedSegmentRatios);
        Assert.Contains("\"causal_mode\": \"causal_shift_g\"", c.ToJson());

        var dir = Directory.CreateTempSubdirectory("hici-cfg").FullName;
        try
        {
            c.Save(dir);
            Assert.True(File.Exists(Path.Combine(dir, HiciConfig.FileName)));
            Assert.Equal(c.ToJson(), HiciConfig.Load(dir).ToJson());
        }
        finally { Directory.Delete(dir, true); }

        // partial files take the defaults; mixed_segment_ratios: true = {1/2, 1/4, 1/8}
        var p = HiciConfig.FromJson("{\"global_slots\": 2, \"mixed_segment_ratios\": true, \"causal_mode\": \"causal_gi\"}");
        Assert.Equal(2, p.GlobalSlots);
        Assert.Equal(8, p.LocalSlots);
        Assert.Equal(HiciConfig.DefaultMixedRatios, p.MixedSegmentRatios);
    }

    [Theory]
    [InlineData("{\"num_heads\": 7}", "bottleneck_dim 512 is not divisible by num_heads 7")]
    [InlineData("{\"causal_mode\": \"causal_g\"}", "unknown HiCI causal mode 'causal_g'")]
    [InlineData("{\"segment_ratio\": 0}", "segment_ratio must be in (0, 1]")]
    [InlineData("{\"segment_ratio\": 0.25, \"segment_size\": 1024}", "not both")]
    [InlineData("{\"num_local_slots\": \"8\"}", "'num_local_slots' must be an integer")]
    [InlineData("{\"num_local_slots\": 8.5}", "'num_local_slots' must be an integer")]
    [InlineData("{\"local_slot\": 8}", "unknown key 'local_slot'")]
    [InlineData("{\"use_local_constructor\": false}", "use_global_integrator needs use_local_constructor")]
    [InlineData("[1]", "expected a JSON object")]
    [InlineData("{", "not valid JSON")]
    [InlineData("{\"mixed_segment_ratios\": [0.5, 2]}", "mixed_segment_ratios entries must be in (0, 1]")]
    [InlineData("{\"forward\": \"eval\"}", "unknown HiCI forward 'eval'")]
    public void InvalidConfigsAreClearErrors(string json, string message)
    {
        var ex = Assert.Throws<HiciException>(() => HiciConfig.FromJson(json, "x/hici_config.json"));
        Assert.Contains(message, ex.Message);
        Assert.StartsWith("x/hici_config.json", ex.Message);
    }

    [Fact]
    public void HiddenSizeMustDivideByHeads()
    {
        var ex = Assert.Throws<HiciException>(() => new HiciConfig { NumHeads = 16 }.ValidateFor(4100));
        Assert.Contains("hidden size 4100 is not divisible by num_heads 16", ex.Message);
    }

    [Fact]
    public void ShapeCheckNamesTheTensorAndTheConfig()
    {
        var cfg = new HiciConfig();
        var shapes = cfg.ExpectedShapes(4096).ToDictionary(e => e.Key, e => e.Shape);
        Assert.Empty(cfg.CheckShapes(4096, k => shapes.GetValueOrDefault(k), "ckpt"));
        shapes["global_integrator.global_queries"] = new long[] { 5, 512 };
        var ex = Assert.Throws<HiciException>(() => cfg.CheckShapes(4096, k => shapes.GetValueOrDefault(k), "ckpt", "model.layers.3.self_attn."));
        Assert.Contains("'model.layers.3.self_attn.global_integrator.global_queries' has shape [5, 512]", ex.Message);
        Assert.Contains("expects [4, 512]", ex.Message);
        Assert.Contains("global_slots=4", ex.Message);
        shapes.Remove("global_integrator.global_queries");
        Assert.Equal(new[] { "global_integrator.global_queries" }, cfg.CheckShapes(4096, k => shapes.GetValueOrDefault(k), "ckpt"));
        // C >= β: no stat_expand, D = C
        var wide = cfg with { SharedCompressDim = 1024 };
        Assert.False(wide.HasStatExpand);
        Assert.Equal(1024, wide.GlobalWidth);
        Assert.DoesNotContain(wide.ExpectedShapes(4096), e => e.Key.Contains("stat_expand"));
    }

    [Fact]
    public void LegacyKeyNamesMapToCurrentOnes()
    {
        Assert.Equal("model.layers.0.self_attn.local_constructor.memory_slots",
            HiciKeys.CurrentName("model.layers.0.self_attn.global_memory.memory_slots"));
        Assert.Equal("model.layers.31.self_attn.global_integrator.shared_compressor.0.weight",
            HiciKeys.CurrentName("model.layers.31.self_attn.hierarchical_aggregator.shared_compressor.0.weight"));
        Assert.Equal("model.embed_tokens.weight", HiciKeys.CurrentName("model.embed_tokens.weight"));
    }
}
