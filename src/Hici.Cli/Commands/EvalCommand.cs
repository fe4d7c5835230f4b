using System.CommandLine;

namespace Hici.Cli.Commands;

/// <summary><c>hici eval &lt;task&gt;</c>: the reference's evaluation protocols (docs/evaluation.md).</summary>
public static class EvalCommand
{
    public static Command Build()
    {
        var cmd = new Command("eval", "Evaluations with the reference's protocols: ppl, passkey, topics, lines, longbench, attention-stats");
        cmd.Subcommands.Add(EvalPplCommand.Build());
        cmd.Subcommands.Add(EvalPplCommand.BuildMerge());
        cmd.Subcommands.Add(EvalPasskeyCommand.Build());
        cmd.Subcommands.Add(EvalLongEvalCommand.Build("topics"));
        cmd.Subcommands.Add(EvalLongEvalCommand.Build("lines"));
        cmd.Subcommands.Add(EvalLongBenchCommand.Build());
        cmd.Subcommands.Add(EvalAttentionStatsCommand.Build());
        return cmd;
    }
}
