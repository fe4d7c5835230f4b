using Hici.Evaluation;
using Hici.IO;
using Hici.Lora;
using Hici.Tests.Cli;
using Hici.Tests.Models;
using Hici.Training;

namespace Hici.Tests.Reliability;

// Kill tests of the outputs that need more than one check per kill: training checkpoints (resumed after each kill),
// passkey results with their heatmap, LongBench predictions and prepared token files (see KillTest).

public class TrainCheckpointKillTests
{
    /// <summary>Everything a checkpoint holds loads, and its trainer state names its step.</summary>
    static void AssertComplete(string ckpt)
    {
        long step = long.Parse(Path.GetFileName(ckpt)["checkpoint-".Length..]);
        Assert.Equal(step, TrainerState.Load(ckpt).GlobalStep);
        using (var ad = PeftAdapter.Open(ckpt))
            foreach (var k in ad.Weights.Keys) { using var t = ad.Weights.Load(k); }
        using (var tr = SafeTensorsWeightSource.Open(Path.Combine(ckpt, TrainingCheckpoint.TrainableName)))
            foreach (var k in tr.Keys) { using var t = tr.Load(k); }
        Assert.True(new FileInfo(Path.Combine(ckpt, TrainingCheckpoint.OptimizerName)).Length > 0);
        foreach (var json in new[] { TrainingCheckpoint.SchedulerName, TrainingCheckpoint.ArgsName })
            using (JsonFiles.Read(Path.Combine(ckpt, json), 1 << 20)) { }
    }

    static List<string> Checkpoints(string run) => Directory.Exists(run)
        ? Directory.GetDirectories(run, "checkpoint-*").Where(d => !AtomicFile.IsTempName(d))
            .OrderBy(d => long.Parse(Path.GetFileName(d)["checkpoint-".Length..])).ToList()
        : [];

    [Fact]
    public void KilledTrainingLeavesWholeCheckpointsAndResumesFromTheNewest()
    {
        using var dir = new TempDir();
        var data = KillFixtures.TokenData(dir.Path);
        var run = dir.Sub("run");
        const int steps = 5;
        string[] args = ["train", "--data", data, "--model", ModelFixtures.Dir("qwen3-gqa"), "--output", run, "--model-max-length", "32",
            "--max-steps", steps.ToString(), "--save-steps", "1", "--lora-rank", "2", "--warmup-steps", "0", "--threads", "1"];
        bool Finished()
        {
            var c = Checkpoints(run);
            c.ForEach(AssertComplete);
            return c.Count == steps && c[^1].EndsWith($"checkpoint-{steps}", StringComparison.Ordinal);
        }
        int resumed = 0;
        KillTest.KillRepeatedly(args, kills: 6, seed: 21, throttleMs: 2,
            prepare: () => { if (Directory.Exists(run)) Directory.Delete(run, true); },
            isComplete: Finished,
            afterKill: (k, at, _) =>
            {
                var done = Checkpoints(run);
                done.ForEach(AssertComplete);   // every checkpoint-N folder there is whole; an interrupted one is a hidden temp
                // The next run (a resume from the newest, or a fresh start) finishes and leaves no temp entry behind.
                var again = done.Count > 0 ? [.. args, "--resume", done[^1]] : args;
                var (code, err) = KillTest.RunToEnd(again, 0);
                Assert.True(code == 0, $"kill {k} at {at.TotalMilliseconds:F0} ms: the next run failed (exit {code}): {err}");
                Assert.True(Finished(), $"kill {k}: the next run did not write every checkpoint");
                KillTest.AssertNoTempEntries(run);
                if (done.Count > 0) resumed++;
            }, from: 0.3, span: 0.7);
        Assert.True(resumed > 0, "no kill landed after the first checkpoint: nothing was resumed");
    }
}

public class EvalPasskeyKillTests
{
    [Fact]
    public void KilledPasskeyLeavesOldOrCompleteResultAndHeatmap()
    {
        using var m = new TinyModelWithTokenizer();
        using var dir = new TempDir();
        var o = dir.Sub("passkey.json");
        var png = dir.Sub("passkey.png");
        string[] args = ["eval", "passkey", "--model", m.Dir, "--max-tokens", "600", "--interval", "300", "--num-tests", "2",
            "--context-size", "300", "--out", o, "--threads", "1"];
        bool JsonComplete() { using var d = JsonFiles.Read(o, 1 << 24); return d.RootElement.GetProperty("trials").GetArrayLength() == 4; }
        bool PngComplete() { var b = File.ReadAllBytes(png); return b.Length > 8 && b[..4].SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47 }) && b[^8..^4].SequenceEqual("IEND"u8.ToArray()); }
        void Reset() { File.WriteAllText(o, "old"); File.WriteAllText(png, "old"); if (File.Exists(o + ".partial.jsonl")) File.Delete(o + ".partial.jsonl"); }
        KillTest.KillRepeatedly(args, kills: 6, seed: 23, throttleMs: 20,
            prepare: Reset, isComplete: () => JsonComplete() && PngComplete(),
            afterKill: (k, _, _) => { KillFixtures.OldOrComplete(o, JsonComplete, k); KillFixtures.OldOrComplete(png, PngComplete, k); });
        Reset();
        var (code, err) = KillTest.RunToEnd(args, 0);
        Assert.True(code == 0, err);
        KillTest.AssertNoTempEntries(dir.Path);
    }
}

public class EvalLongBenchKillTests
{
    [Fact]
    public void KilledLongBenchPredictLeavesNoOrCompletePredictions()
    {
        using var m = new TinyModelWithTokenizer();
        using var dir = new TempDir();
        var data = dir.Sub("data");
        Directory.CreateDirectory(data);
        File.WriteAllLines(Path.Combine(data, "trec.jsonl"), Enumerable.Range(0, 6).Select(i =>
            $"{{\"input\": \"What is {i}?\", \"context\": \"Question: Who is he?\\nType: Human\", \"answers\": [\"Description\"], \"all_classes\": [\"Description\", \"Human\"], \"length\": 10}}"));
        var pred = dir.Sub("pred");
        var file = Path.Combine(pred, "trec.jsonl");
        var r = KillTest.Run(["eval", "longbench", "predict", "--model", m.Dir, "--data", data, "--datasets", "trec", "--out", pred, "--max-length", "40", "--threads", "1"],
            file,
            resetOld: () => { if (Directory.Exists(pred)) Directory.Delete(pred, true); },
            isOld: () => !File.Exists(file),
            isComplete: () => LongBench.ReadPredictions(file).Count == 6,
            kills: 6, seed: 24, throttleMs: 20);
        Assert.Equal(6, r.OldIntact + r.NewComplete);
    }
}

public class PrepareDataKillTests
{
    [Fact]
    public void KilledPrepareDataLeavesNoOrACompleteTokenFile()
    {
        using var m = new TinyModelWithTokenizer();
        using var dir = new TempDir();
        var text = dir.Sub("corpus.txt");
        File.WriteAllText(text, string.Concat(Enumerable.Range(0, 4000).Select(i => $"Sentence {i} says something about item {i * 7 % 13}.\n")));
        var bin = dir.Sub("out.bin");
        var r = KillTest.Run(["prepare-data", "--tokenizer", m.Dir, "--input", text, "--output", bin], bin,
            resetOld: () => { File.Delete(bin); File.Delete(bin + TokenFileInfo.Suffix); },
            isOld: () => !File.Exists(bin),
            isComplete: () =>
            {
                using var f = TokenFile.Open(bin, m.Config.VocabSize);
                return f.Info.Tokens == f.Length && f.Length > 0;   // the metadata beside it is this file's
            },
            kills: 6, seed: 25, throttleMs: 5);
        Assert.Equal(6, r.OldIntact + r.NewComplete);
    }
}
