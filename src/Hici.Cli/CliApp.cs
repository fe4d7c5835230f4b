using System.CommandLine;
using Hici.Cli.Commands;

namespace Hici.Cli;

/// <summary>The whole `hici` command tree; Program.cs and the in-process CLI tests both build it here.</summary>
public static class CliApp
{
    public static RootCommand Build()
    {
        var root = new RootCommand("hici: load, run, fine-tune and evaluate long-context LLMs (Llama-2/3, Qwen3, HiCI) on TorchSharp");
        root.Options.Add(Common.Verbose);
        // One line per command; each command lives in Commands/<Name>Command.cs.
        root.Subcommands.Add(DoctorCommand.Build());
        root.Subcommands.Add(InfoCommand.Build());
        root.Subcommands.Add(ScoreCommand.Build());
        root.Subcommands.Add(TokenizeCommand.Build());
        root.Subcommands.Add(GenerateCommand.Build());
        root.Subcommands.Add(MergeCommand.Build());
        root.Subcommands.Add(ConvertTrainableCommand.Build());
        root.Subcommands.Add(AuditCausalityCommand.Build());
        return root;
    }
}
