using System.CommandLine;
using Hici.Cli.Training;
using Hici.Training;

namespace Hici.Cli.Commands;

/// <summary><c>hici train</c>: continued pre-training (LoRA + HiCI, the reference's fine-tune_hici.py recipe) on a token file.</summary>
public static class TrainCommand
{
    public static Command Build()
    {
        var t = new TrainingOptions();
        var data = new Option<string>("--data") { Description = "Token file from hici prepare-data (FILE.bin + FILE.bin.json)", Required = true };
        var cmd = new Command("train", "Continued pre-training with LoRA + HiCI (or full training with --lora-rank 0 --trainable all) on a token file; exact --resume");
        cmd.Options.Add(data);
        t.AddTo(cmd);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            var o = t.Build(pr);
            if (pr.GetValue(t.Resume) is { } r) TrainerState.ForResume(r, "pretrain");
            Common.InitTorch(pr);
            using var tm = TrainingModel.Build(o);
            using var file = TokenFile.Open(pr.GetValue(data)!, tm.Model.Config.VocabSize);
            var batches = new PretrainBatches(new TokenSampler(file, o.ModelMaxLength, o.Seed, o.Shuffle), file.Info.PadId);
            return TrainingRunner.Run(o, tm, batches, "pretrain", pr.GetValue(t.Resume), null, "train");
        }));
        return cmd;
    }
}
