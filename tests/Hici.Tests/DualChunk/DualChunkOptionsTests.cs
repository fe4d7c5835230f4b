using Hici.DualChunk;
using Hici.Tests.Models;

namespace Hici.Tests.DualChunk;

public class DualChunkOptionsTests
{
    [Fact]
    public void DefaultsFollowTheReference()
    {
        // replace_with_chunkllama(4096): chunk 3072, local window 512; replace_with_chunkqwen3(40960): 30720, 2560
        var llama = new DualChunkOptions { PretrainingLength = 4096 }.Resolve(ModelFixtures.Config("llama-mha-linear"));
        Assert.Equal((3072, 512, 2560), (llama.ChunkSize, llama.LocalWindow, llama.ChunkLen));
        Assert.True(llama.Bf16MergeWeights);
        Assert.Equal(DualChunkMscale.Sticky, llama.Mscale);
        Assert.Equal(2.0, llama.ScalingFactor);                     // the config's rope_scaling factor
        var qwen = new DualChunkOptions { PretrainingLength = 40960 }.Resolve(ModelFixtures.Config("qwen3-gqa"));
        Assert.Equal((30720, 2560, 28160), (qwen.ChunkSize, qwen.LocalWindow, qwen.ChunkLen));
        Assert.False(qwen.Bf16MergeWeights);
        Assert.Equal(DualChunkMscale.Off, qwen.Mscale);
        Assert.Equal(1.0, qwen.ScalingFactor);
        // the HiCI repo's ppl scripts: replace_with_chunkllama(8192, 8192 // 4)
        var l3 = new DualChunkOptions { PretrainingLength = 8192, LocalWindow = 2048 }.Resolve(ModelFixtures.Config("llama3-gqa-tied"));
        Assert.Equal((6144, 2048, 4096), (l3.ChunkSize, l3.LocalWindow, l3.ChunkLen));
        // no --pretraining-length: max_position_embeddings
        Assert.Equal(64, new DualChunkOptions().Resolve(ModelFixtures.Config("llama-mha-linear")).PretrainingLength);
    }

    [Fact]
    public void MscaleRule()
    {
        var s = new DualChunkOptions { PretrainingLength = 8192 }.Resolve(ModelFixtures.Config("llama3-gqa-tied") with { MaxPositionEmbeddings = 8192 });
        Assert.Equal(1.0, s.MscaleAt(8192));
        Assert.Equal(0.05 * Math.Log(4) + 1, s.MscaleAt(32768), 12);   // Llama-3 at 32K: 1.069
    }

    [Theory]
    [InlineData(1, null, "--pretraining-length 1")]
    [InlineData(16, 12, "--local-window 12")]
    [InlineData(16, 0, "--local-window 0")]
    public void BadOptionsAreNamed(int length, int? window, string expected)
    {
        var e = Assert.Throws<HiciException>(() => new DualChunkOptions { PretrainingLength = length, LocalWindow = window }.Resolve(ModelFixtures.Config("qwen3-gqa")));
        Assert.Contains(expected, e.Message);
    }
}
