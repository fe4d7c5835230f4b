using System.CommandLine;
namespace Hici.Cli.Commands;
public static class I3EvalHistoryCommand { public static Command Build() => new("eval-history", "todo"); }
