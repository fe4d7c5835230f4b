using Hici.Cli.Commands;
using Hici.Cli.Demo;
using Hici.Tests.Text;

namespace Hici.Tests.Training;

/// <summary>`hici demo` end to end with a micro recipe (same code path, tiny sizes): every phase runs and the report holds the table.</summary>
[Collection("Console")]
public class DemoTests
{
    [Fact]
    public void MicroDemoWritesTheReport()
    {
        TestData.TokenizerDir("llama2");   // skips-by-failing clearly when setup has not fetched the data
        using var dir = new TempDir();
        var recipe = new DemoRecipe
        {
            Hidden = 32, Layers = 1, Heads = 2, Intermediate = 64, ShortContext = 32, LongContext = 256,
            PretrainSteps = 3, PretrainBatch = 2, ExtendSteps = 2, ExtendAccum = 1, EvalTokens = 512, EvalLengths = new[] { 32, 64, 128, 256 },
        };
        var outDir = Path.Combine(dir.Path, "demo");
        Assert.Equal(0, DemoCommand.Run(outDir, Path.Combine(TestData.RepoRoot, ".data", "npm"), recipe, quick: true, threads: 2));
        var report = File.ReadAllText(Path.Combine(outDir, "report.md"));
        Assert.Contains("| model | 32 | 64 | 128 | 256 |", report);
        Assert.Contains("| base (trained at 32), full attention |", report);
        Assert.Contains("HiCI causal_shift |", report);
        foreach (var png in new[] { "ppl_vs_length.png", "loss_pretrain.png", "loss_extend.png" })
            Assert.True(new FileInfo(Path.Combine(outDir, png)).Length > 1000, png);
        // a second run reuses the folder (marked), a foreign non-empty folder is refused
        File.WriteAllText(Path.Combine(dir.Path, "x"), "");
        Assert.Throws<HiciException>(() => DemoCommand.Run(dir.Path, Path.Combine(TestData.RepoRoot, ".data", "npm"), recipe, true, 2));
    }
}
