using System.Text.Json;
using Hici.Evaluation;
using Hici.Hierarchical;
using Hici.IO;
using Hici.Tests.Cli;
using Hici.Tests.Models;
using Hici.Training;
using static Hici.Tests.Reliability.KillTest;

namespace Hici.Tests.Reliability;

// Kill tests of the single-output writes of the CLI (see KillTest). One class per command so they run in parallel.

static class KillFixtures
{
    /// <summary>A flat uint16 token file of <paramref name="n"/> ids under 256 with its metadata, as prepare-data writes it.</summary>
    public static string TokenData(string dir, int n = 600)
    {
        var bin = Path.Combine(dir, "tokens.bin");
        File.WriteAllBytes(bin, Enumerable.Range(0, n).SelectMany(i => BitConverter.GetBytes((ushort)((i * 37 + 11) % 256))).ToArray());
        new TokenFileInfo("test", "uint16", n, 1, VocabSize: 256).Save(bin);
        return bin;
    }

    /// <summary>Each output file is the old one (the text "old") or a complete new one.</summary>
    public static void OldOrComplete(string path, Func<bool> isComplete, int kill)
    {
        bool old = File.Exists(path) && File.ReadAllText(path) == "old";
        Assert.True(old || isComplete(), $"kill {kill} left a partial {path}");
    }

    /// <summary>A model folder whose config and every tensor load.</summary>
    public static bool ModelFolderLoads(string dir)
    {
        _ = HfConfigReader.Read(dir);
        using var w = SafeTensorsWeightSource.Open(dir);
        foreach (var k in w.Keys) { using var t = w.Load(k); }
        return w.Keys.Count > 0;
    }
}

public class ScoreOutKillTests
{
    [Fact]
    public void KilledScoreLeavesOldOrCompleteOutput()
    {
        using var dir = new TempDir();
        var ids = dir.Sub("ids.json");
        File.WriteAllText(ids, "[" + string.Join(",", Enumerable.Range(0, 1500).Select(i => i * 7 % 256)) + "]");
        var o = dir.Sub("out.json");
        AssertNeverPartial(["score", "--model", ModelFixtures.Dir("qwen3-gqa"), "--ids", ids, "--out", o, "--threads", "1"], o, Before.OldFile,
            isComplete: () =>
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(o));
                return doc.RootElement.GetProperty("logprobs").GetArrayLength() == 1499;
            },
            kills: 8, seed: 11, throttleMs: 25);
    }
}

public class ConvertTrainableKillTests
{
    [Fact]
    public void KilledConvertLeavesOldOrCompleteOutput()
    {
        using var dir = new TempDir();
        var input = Path.Combine(ModelFixtures.Root, "tests", "fixtures", "lora", "qwen3-gqa", "trainable_params.bin");
        int keys;
        using (var src = TrainableParams.Open(input)) keys = src.Keys.Count;
        var o = dir.Sub("trainable_params.bin");
        AssertNeverPartial(["convert-trainable", "--input", input, "--output", o], o, Before.OldFile,
            isComplete: () =>
            {
                using var src = TrainableParams.Open(o);
                foreach (var k in src.Keys) { using var t = src.Load(k); }
                return src.Keys.Count == keys;
            },
            kills: 8, seed: 12, throttleMs: 8);
    }
}

public class MergeKillTests
{
    [Fact]
    public void KilledMergeLeavesNoFolderOrACompleteOne()
    {
        using var dir = new TempDir();
        var adapter = Path.Combine(ModelFixtures.Root, "tests", "fixtures", "lora", "qwen3-gqa", "adapter");
        var o = dir.Sub("merged");
        AssertNeverPartial(["merge", "--model", ModelFixtures.Dir("qwen3-gqa"), "--adapter", adapter, "--output", o, "--max-shard-size", "100KB"], o,
            Before.Nothing, isComplete: () => KillFixtures.ModelFolderLoads(o), kills: 8, seed: 13, throttleMs: 4);
    }
}

public class EvalPplKillTests
{
    [Fact]
    public void KilledPerplexityLeavesOldOrCompleteResult()
    {
        using var dir = new TempDir();
        var data = KillFixtures.TokenData(dir.Path, 2000);
        var o = dir.Sub("ppl.json");
        AssertNeverPartial(["eval", "ppl", "--model", ModelFixtures.Dir("qwen3-gqa"), "--data", data, "--seq-len", "64", "--stride", "16",
                "--out", o, "--threads", "1"], o, Before.OldFile,
            isComplete: () => Perplexity.Read(o).Windows > 0, kills: 6, seed: 22, throttleMs: 20);
        Assert.False(File.Exists(o + ".partial.jsonl"));   // a complete run removes its partial results
    }
}

public class InitKillTests
{
    [Fact]
    public void KilledInitLeavesNoFolderOrACompleteOne()
    {
        using var m = new TinyModelWithTokenizer();
        using var dir = new TempDir();
        var o = dir.Sub("init");
        AssertNeverPartial(["init", "--config", Path.Combine(ModelFixtures.Dir("qwen3-gqa"), "config.json"), "--output", o, "--tokenizer", m.Dir], o,
            Before.Nothing, isComplete: () => KillFixtures.ModelFolderLoads(o) && File.Exists(Path.Combine(o, "tokenizer.json")),
            kills: 6, seed: 26, throttleMs: 4);
    }
}
