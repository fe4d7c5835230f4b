using System.CommandLine;

namespace Hici.Cli.Commands;

/// <summary>`hici i3 …`: the i3 hybrid model (RWKV-4 + attention with latent context compression). See docs/i3.md.</summary>
public static class I3Command
{
    public static Command Build()
    {
        var cmd = new Command("i3", "i3 hybrid model (RWKV-4 + attention over compressed history): info, tokenizer train, train, eval-history, bench");
        cmd.Subcommands.Add(I3InfoCommand.Build());
        cmd.Subcommands.Add(I3TokenizerCommand.Build());
        cmd.Subcommands.Add(I3TrainCommand.Build());
        cmd.Subcommands.Add(I3EvalHistoryCommand.Build());
        cmd.Subcommands.Add(I3BenchCommand.Build());
        return cmd;
    }

    public static Option<string> Preset(bool required = false) => new("--preset")
    {
        Description = "Model configuration: full (the card's i3-4096ctx, 343.8M), small (d 128, 512-token chunks, 8-chunk history) or tiny (tests)",
        Required = required,
    };

    public static Option<string> Format() => new("--format")
    {
        Description = "Input text format: text (UTF-8, one document per file) or brown (the Brown corpus' word/TAG files; tags stripped)",
        DefaultValueFactory = _ => "text",
    };
}
