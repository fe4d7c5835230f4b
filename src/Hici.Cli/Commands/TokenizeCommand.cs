using System.CommandLine;
using Hici.IO;
using System.Text;
using System.Text.Json;
using Hici.Text;

namespace Hici.Cli.Commands;

public static class TokenizeCommand
{
    public static Command Build()
    {
        var tokenizer = new Option<string>("--tokenizer")
        {
            Description = "Folder with tokenizer.json (+ tokenizer_config.json), or the tokenizer.json file",
            Required = true,
        };
        var text = new Option<string?>("--text") { Description = "Text to encode; prints its ids as a JSON array" };
        var input = new Option<string?>("--input-jsonl")
        {
            Description = "File with one {\"text\": ...} object per line; prints one {\"ids\": [...]} line each",
        };
        var addSpecial = new Option<bool>("--add-special-tokens")
        {
            Description = "Add the tokenizer's BOS/EOS as Hugging Face does (true|false)",
            DefaultValueFactory = _ => true,
        };
        var cmd = new Command("tokenize", "Encode text to token ids with a Hugging Face tokenizer (tokenizer.json)");
        cmd.Options.Add(tokenizer);
        cmd.Options.Add(text);
        cmd.Options.Add(input);
        cmd.Options.Add(addSpecial);
        cmd.SetAction(pr => Common.Run(pr, () =>
        {
            var t = pr.GetValue(text);
            var file = pr.GetValue(input);
            if ((t is null) == (file is null))
                throw new HiciException("tokenize: give exactly one of --text or --input-jsonl");
            var tok = HfTokenizer.Load(pr.GetValue(tokenizer)!);
            bool special = pr.GetValue(addSpecial);
            var output = pr.InvocationConfiguration.Output;
            if (t is not null)
            {
                output.WriteLine(JsonArray(tok.Encode(t, special)));
                return 0;
            }
            // Console.Out flushes every line; batching keeps large files from being syscall-bound.
            var batch = new StringBuilder();
            foreach (var line in ReadTexts(file!))
            {
                batch.Append("{\"ids\":").Append(JsonArray(tok.Encode(line, special))).Append('}').Append('\n');
                if (batch.Length > 1 << 16) { output.Write(batch.ToString()); batch.Clear(); }
            }
            output.Write(batch.ToString());
            return 0;
        }));
        return cmd;
    }

    static string JsonArray(int[] ids) => new StringBuilder(ids.Length * 6 + 2).Append('[').AppendJoin(',', ids).Append(']').ToString();

    /// <summary>The "text" of each non-blank line; a bad line stops with its file and line number.</summary>
    static IEnumerable<string> ReadTexts(string path)
    {
        foreach (var (lineNo, line) in InputFiles.ReadLines(path, MaxLineBytes))
        {
            string where = $"{path}:{lineNo}";
            using var doc = JsonFiles.Parse(where, System.Text.Encoding.UTF8.GetBytes(line));
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("text", out var v) || v.ValueKind != JsonValueKind.String)
                throw new HiciException($"{where}: expected an object with a string \"text\" field");
            yield return v.GetString()!;
        }
    }

    /// <summary>One JSONL record; a longer line is refused rather than read into memory whole.</summary>
    public const long MaxLineBytes = 256L << 20;
}
