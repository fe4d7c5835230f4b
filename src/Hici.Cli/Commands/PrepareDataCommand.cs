using System.CommandLine;
using Hici.Text;
using Hici.Training;

namespace Hici.Cli.Commands;

/// <summary><c>hici prepare-data</c>: a corpus → a flat token file + FILE.bin.json (see <see cref="DataPreparer"/>).</summary>
public static class PrepareDataCommand
{
    public static Command Build()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "Folder with tokenizer.json (+ tokenizer_config.json), e.g. the model folder", Required = true };
        var input = new Option<string>("--input") { Description = "A file or a folder (read recursively, sorted): plain text (a file is a document), .jsonl with a \"text\" field, .json LongAlpaca-style array", Required = true };
        var output = new Option<string>("--output") { Description = "Token file to write (FILE.bin; metadata in FILE.bin.json); written to a temp name and renamed", Required = true };
        var format = new Option<string>("--format") { Description = "auto (by extension) | text | jsonl | alpaca", DefaultValueFactory = _ => "auto" };
        var pack = new Option<int?>("--reference-packing") { Description = "Pack as the reference's fine-tune_hici.py does for this --model-max-length: documents grouped to 200,000 characters, joined with the EOS string, one BOS per group, padded to a multiple of L" };
        var pad = new Option<int?>("--pad-id") { Description = "Pad id for --reference-packing (default: the tokenizer's pad token)" };
        var cmd = new Command("prepare-data", "Tokenize a corpus (text, JSONL, LongAlpaca JSON) into a token file for hici train (uint16 when the vocabulary fits, else uint32)");
        foreach (var o in new Option[] { tokenizer, input, output, format, pack, pad }) cmd.Options.Add(o);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            var fmt = pr.GetValue(format)!.ToLowerInvariant() switch
            {
                "auto" => CorpusFormat.Auto, "text" => CorpusFormat.Text, "jsonl" => CorpusFormat.Jsonl, "alpaca" => CorpusFormat.Alpaca,
                var s => throw new HiciException($"--format: '{s}' is not supported (auto, text, jsonl or alpaca)"),
            };
            string outPath = pr.GetValue(output)!;
            var outDir = Path.GetDirectoryName(Path.GetFullPath(outPath))!;
            if (!Directory.Exists(outDir)) throw new HiciException($"{outDir}: no such folder for --output");
            var tokDir = pr.GetValue(tokenizer)!;
            var tok = HfTokenizer.Load(tokDir);
            var files = CorpusDocuments.Files(pr.GetValue(input)!);
            int? padId = pr.GetValue(pad) ?? (tok.AddedTokens.FirstOrDefault(t => t.Content is "[PAD]" or "<pad>" or "<|endoftext|>") is { } pt ? pt.Id : null);
            var opt = new PrepareOptions(pr.GetValue(pack), padId);
            var info = Progress.Run("tokenizing", cb => DataPreparer.Prepare(files, fmt, tok, Path.GetFileName(Path.GetFullPath(tokDir)), outPath, opt,
                cb is null ? null : (done, total) => cb((int)(done >> 10), (int)Math.Max(1, total >> 10))));
            Console.WriteLine($"wrote {outPath}: {info.Tokens:N0} tokens ({info.DType}), {info.Documents:N0} documents from {files.Count} file(s)" +
                (info.ChunkLength is { } c ? $", reference packing: {info.Tokens / c:N0} chunks of {c} (pad id {info.PadId})" : ""));
            return 0;
        }));
        return cmd;
    }
}
