using System.CommandLine;
using Hici.I3;

namespace Hici.Cli.Commands;

public static class I3TokenizerCommand
{
    public static Command Build()
    {
        var train = new Command("train", "Train a byte-level BPE tokenizer (i3 special tokens at ids 0–12, bytes at 13–268) and write tokenizer.json");
        var vocab = new Option<int>("--vocab") { Description = "Vocabulary size including the 13 special tokens and 256 bytes (≥ 269)", Required = true };
        var input = new Option<string[]>("--input") { Description = "Text files or folders", Required = true, AllowMultipleArgumentsPerToken = true };
        var output = new Option<string>("--output") { Description = "Output folder (tokenizer.json, tokenizer_config.json)", Required = true };
        var minFreq = new Option<int>("--min-frequency") { Description = "Stop when the best pair occurs fewer times than this", DefaultValueFactory = _ => 2 };
        var format = I3Command.Format();
        train.Options.Add(vocab); train.Options.Add(input); train.Options.Add(output); train.Options.Add(minFreq); train.Options.Add(format);
        train.SetAction(pr => Common.Run(pr, () =>
        {
            var files = I3Corpus.Files(pr.GetValue(input)!, I3Corpus.ParseFormat(pr.GetValue(format)!));
            var result = Train(files, I3Corpus.ParseFormat(pr.GetValue(format)!), pr.GetValue(vocab), pr.GetValue(minFreq));
            BpeTrainer.Save(result, pr.GetValue(output)!);
            pr.InvocationConfiguration.Output.WriteLine($"tokenizer: {result.VocabSize} tokens ({result.Merges.Count} merges) from {files.Count} files → {Path.Combine(pr.GetValue(output)!, "tokenizer.json")}");
            return 0;
        }));
        var cmd = new Command("tokenizer", "i3 tokenizer tools");
        cmd.Subcommands.Add(train);
        return cmd;
    }

    /// <summary>Counts words streaming over the files, then learns merges; both with a progress bar.</summary>
    public static BpeTrainer.Result Train(IReadOnlyList<string> files, CorpusFormat format, int vocab, int minFrequency)
    {
        if (vocab < I3Tokenizer.FirstMergeId) throw new HiciException($"--vocab {vocab}: must be at least {I3Tokenizer.FirstMergeId}");
        if (minFrequency < 1) throw new HiciException($"--min-frequency {minFrequency}: must be at least 1");
        var trainer = new BpeTrainer();
        long total = files.Sum(f => new FileInfo(f).Length), done = 0;
        Progress.Run("counting words", report =>
        {
            foreach (var f in files)
            {
                if (format == CorpusFormat.Brown) trainer.Add(I3Corpus.ReadDocument(f, format));
                else trainer.AddFile(f, progress: b => report?.Invoke((int)((done + b) >> 10), (int)(total >> 10)));
                done += new FileInfo(f).Length;
                report?.Invoke((int)(done >> 10), (int)(total >> 10));
            }
            return 0;
        });
        return Progress.Run("learning merges", report => trainer.Train(vocab, minFrequency, report));
    }
}
