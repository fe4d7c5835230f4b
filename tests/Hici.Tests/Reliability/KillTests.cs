using System.Text.Json;
using Hici.Hierarchical;
using Hici.IO;
using Hici.Tests.Cli;
using Hici.Tests.Models;

namespace Hici.Tests.Reliability;

// Kill tests of every write the CLI does (see KillTest). One class per command so they run in parallel.

public class ScoreOutKillTests
{
    [Fact]
    public void KilledScoreLeavesOldOrCompleteOutput()
    {
        var dir = CliRunner.TempDir();
        var ids = Path.Combine(dir, "ids.json");
        File.WriteAllText(ids, "[" + string.Join(",", Enumerable.Range(0, 1500).Select(i => i * 7 % 256)) + "]");
        var o = Path.Combine(dir, "out.json");
        var r = KillTest.Run(["score", "--model", ModelFixtures.Dir("qwen3-gqa"), "--ids", ids, "--out", o, "--threads", "1"], o,
            resetOld: () => File.WriteAllText(o, "old"),
            isOld: () => File.ReadAllText(o) == "old",
            isComplete: () =>
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(o));
                return doc.RootElement.GetProperty("logprobs").GetArrayLength() == 1499;
            },
            kills: 8, seed: 11, throttleMs: 25);
        Assert.Equal(8, r.OldIntact + r.NewComplete);
        Directory.Delete(dir, true);
    }
}

public class ConvertTrainableKillTests
{
    [Fact]
    public void KilledConvertLeavesOldOrCompleteOutput()
    {
        var dir = CliRunner.TempDir();
        var input = Path.Combine(ModelFixtures.Root, "tests", "fixtures", "lora", "qwen3-gqa", "trainable_params.bin");
        int keys;
        using (var src = TrainableParams.Open(input)) keys = src.Keys.Count;
        var o = Path.Combine(dir, "trainable_params.bin");
        var r = KillTest.Run(["convert-trainable", "--input", input, "--output", o], o,
            resetOld: () => File.WriteAllText(o, "old"),
            isOld: () => File.ReadAllText(o) == "old",
            isComplete: () =>
            {
                using var src = TrainableParams.Open(o);
                foreach (var k in src.Keys) { using var t = src.Load(k); }
                return src.Keys.Count == keys;
            },
            kills: 8, seed: 12, throttleMs: 8);
        Assert.Equal(8, r.OldIntact + r.NewComplete);
        Directory.Delete(dir, true);
    }
}

public class MergeKillTests
{
    [Fact]
    public void KilledMergeLeavesNoFolderOrACompleteOne()
    {
        var dir = CliRunner.TempDir();
        var adapter = Path.Combine(ModelFixtures.Root, "tests", "fixtures", "lora", "qwen3-gqa", "adapter");
        var o = Path.Combine(dir, "merged");
        var r = KillTest.Run(["merge", "--model", ModelFixtures.Dir("qwen3-gqa"), "--adapter", adapter, "--output", o, "--max-shard-size", "100KB"], o,
            resetOld: () => { if (Directory.Exists(o)) Directory.Delete(o, true); },
            isOld: () => !Directory.Exists(o),
            isComplete: () =>
            {
                _ = HfConfigReader.Read(o);
                using var w = SafeTensorsWeightSource.Open(o);
                foreach (var k in w.Keys) { using var t = w.Load(k); }
                return w.Keys.Count > 0;
            },
            kills: 8, seed: 13, throttleMs: 4);
        Assert.Equal(8, r.OldIntact + r.NewComplete);
        Directory.Delete(dir, true);
    }
}
