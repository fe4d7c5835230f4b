using System.CommandLine;
using Hici.Cli.Training;
using Hici.Text;
using Hici.Training;

namespace Hici.Cli.Commands;

/// <summary><c>hici sft</c>: supervised fine-tuning on LongAlpaca-format JSON (fine-tune_hici_sft.py's recipe), loss on the response only.</summary>
public static class SftCommand
{
    public static Command Build()
    {
        var t = new TrainingOptions();
        var data = new Option<string>("--data") { Description = "LongAlpaca-format JSON: an array of {\"instruction\", \"input\"?, \"output\"}", Required = true };
        var format = new Option<string>("--format") { Description = "Prompt format: llama2 ([INST] … [/INST], <<SYS>> with an input) | qwen3 (ChatML)", DefaultValueFactory = _ => "llama2" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer folder (default: the model folder)" };
        var initFrom = new Option<string?>("--init-from") { Description = "Start from a checkpoint's weights (e.g. continued pre-training) with a fresh optimizer and schedule" };
        var cmd = new Command("sft", "Supervised fine-tuning (LoRA + HiCI) on LongAlpaca-format JSON, loss on the response only; --init-from a pre-training checkpoint, exact --resume");
        foreach (var o in new Option[] { data, format, tokenizer, initFrom }) cmd.Options.Add(o);
        t.AddTo(cmd);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            var o = (t.Build(pr) with { SftSegmentRule = true }).Validate();
            if (o.BatchSize != 1) throw new HiciException("--batch-size: sft trains one example per micro-batch; use --grad-accum");
            if (pr.GetValue(initFrom) is { } i && pr.GetValue(t.Resume) is not null) throw new HiciException("give --init-from or --resume, not both");
            var fmt = SftData.ParseFormat(pr.GetValue(format)!);
            if (pr.GetValue(t.Resume) is { } r) TrainerState.ForResume(r, "sft");
            Common.InitTorch(pr);
            var tok = HfTokenizer.Load(pr.GetValue(tokenizer) ?? o.ModelDir);
            var (examples, skipped) = SftData.Load(pr.GetValue(data)!, fmt, tok, o.ModelMaxLength);
            Console.Error.WriteLine($"sft: {examples.Count:N0} examples ({examples.Sum(e => e.Labels.Count(l => l != CausalLoss.IgnoreIndex)):N0} response tokens)" +
                (skipped > 0 ? $"; {skipped} skipped: their prompt fills --model-max-length {o.ModelMaxLength}" : ""));
            using var tm = TrainingModel.Build(o);
            return TrainingRunner.Run(o, tm, new SftBatches(examples, o.Seed), "sft", pr.GetValue(t.Resume), pr.GetValue(initFrom), "sft");
        }));
        return cmd;
    }
}
