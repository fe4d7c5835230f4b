using Hici.Cli.Commands;

namespace Hici.Tests.HiciAttention;

[CollectionDefinition("HiciConsole", DisableParallelization = true)]
public class HiciConsoleCollection { }

/// <summary><c>hici info</c> on the real Llama-2-7B / Qwen3-8B configs (a folder with config.json only).</summary>
[Collection("HiciConsole")]
public class InfoCommandTests
{
    [Theory]
    [InlineData("llama-2-7b.json", "389,128,224 (5.46%")]
    [InlineData("qwen3-8b.json", "437,769,252 (5.07%")]
    public void PrintsThePublishedCounts(string file, string total)
    {
        var dir = Directory.CreateTempSubdirectory("hici-info").FullName;
        var prev = Console.Out;
        var sw = new StringWriter();
        try
        {
            File.Copy(Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Fixture.PathOf("x"))!, "..", "io", "configs", file)), Path.Combine(dir, "config.json"));
            Console.SetOut(sw);
            int rc = InfoCommand.Build().Parse(new[] { "--model", dir, "--local-slots", "8", "--global-slots", "4", "--hici-heads", "8",
                "--bottleneck", "512", "--shared-compress-dim", "128" }).Invoke();
            Console.SetOut(prev);
            Assert.Equal(0, rc);
            var text = sw.ToString();
            Assert.Contains("HiCI per layer   12,160,257", text);
            Assert.Contains(total, text);
        }
        finally { Console.SetOut(prev); Directory.Delete(dir, true); }
    }
}
