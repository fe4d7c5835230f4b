using Hici.Tests.Cli;

namespace Hici.Tests.Hierarchical;

/// <summary><c>hici info</c> on the real Llama-2-7B / Qwen3-8B configs (a folder with config.json only).</summary>
[Collection("Console")]
public class InfoCommandTests
{
    [Theory]
    [InlineData("llama-2-7b.json", "389,128,224 (5.46%")]
    [InlineData("qwen3-8b.json", "437,769,252 (5.07%")]
    public void PrintsThePublishedCounts(string file, string total)
    {
        var dir = CliRunner.TempDir();
        try
        {
            File.Copy(Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Fixture.PathOf("x"))!, "..", "io", "configs", file)), Path.Combine(dir, "config.json"));
            var r = CliRunner.Run("info", "--model", dir, "--local-slots", "8", "--global-slots", "4", "--hici-heads", "8",
                "--bottleneck", "512", "--shared-compress-dim", "128");
            Assert.True(r.Code == 0, r.Err);
            Assert.Contains("HiCI per layer   12,160,257", r.Out);
            Assert.Contains(total, r.Out);
        }
        finally { Directory.Delete(dir, true); }
    }
}
