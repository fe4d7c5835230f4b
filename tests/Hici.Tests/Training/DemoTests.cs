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
            Hidden = 32, Layers = 1, Heads = 2, Intermediate = 64, ShortContext = 32, LongContext = 512,
            PretrainSteps = 3, PretrainBatch = 2, ExtendSteps = 2, ExtendAccum = 1, EvalTokens = 512, EvalLengths = new[] { 32, 64, 128, 256 },
            PasskeyInterval = 512, PasskeyTests = 1, PasskeyDepthBins = 2,
        };
        var outDir = Path.Combine(dir.Path, "demo");
        Assert.Equal(0, DemoCommand.Run(outDir, Path.Combine(TestData.RepoRoot, ".data", "npm"), recipe, quick: true, threads: 2));
        var report = File.ReadAllText(Path.Combine(outDir, "report.md"));
        Assert.Contains("| model | 32 | 64 | 128 | 256 |", report);
        Assert.Contains("| base (trained at 32), full attention |", report);
        Assert.Contains("HiCI causal_shift |", report);
        Assert.Matches(@"remapped to [\d,]+: those that occur in the training split, plus <unk>", report);
        Assert.Contains("## Passkey retrieval (extended model, full attention)", report);
        Assert.Contains("| 512 |", report[report.IndexOf("## Passkey", StringComparison.Ordinal)..]);
        Assert.Contains("## HiCI attention statistics (extended model, causal_shift)", report);
        Assert.Matches(@"\| 0 \| 0\.\d{3} \| 0\.\d{3} \| [01]\.\d{3} \|", report);
        Assert.Contains("| passkey + attention statistics |", report);
        // the compact vocabulary: every model id maps to a distinct Llama-2 id; the token files hold compact ids
        var map = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "work", "extended", VocabRemap.FileName)))
            .RootElement.GetProperty("original").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(new[] { 0, 1, 2 }, map[..3]);
        Assert.True(map.Zip(map.Skip(1)).All(p => p.First < p.Second) && map[^1] < 32000 && map.Length is > 1000 and < 32000);
        Assert.Contains($"\"vocab_size\":{map.Length}", File.ReadAllText(Path.Combine(outDir, "work", "base", "config.json")).Replace(" ", ""));
        foreach (var png in new[] { "ppl_vs_length.png", "loss_pretrain.png", "loss_extend.png", "passkey_heatmap.png", "attention_stats.png", "attention_stats.heatmap.png" })
            Assert.True(new FileInfo(Path.Combine(outDir, png)).Length > 1000, png);
        // a second run reuses the folder (marked), a foreign non-empty folder is refused
        File.WriteAllText(Path.Combine(dir.Path, "x"), "");
        Assert.Throws<HiciException>(() => DemoCommand.Run(dir.Path, Path.Combine(TestData.RepoRoot, ".data", "npm"), recipe, true, 2));
    }
}
