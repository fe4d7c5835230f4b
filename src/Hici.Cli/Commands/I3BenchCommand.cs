using System.CommandLine;
namespace Hici.Cli.Commands;
public static class I3BenchCommand { public static Command Build() => new("bench", "todo"); }
