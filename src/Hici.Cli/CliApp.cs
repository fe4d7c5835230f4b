using System.CommandLine;
using System.CommandLine.Invocation;
using System.Text.RegularExpressions;
using Hici.Cli.Commands;

namespace Hici.Cli;

/// <summary>The whole `hici` command tree; Program.cs and the in-process CLI tests both build it here.</summary>
public static class CliApp
{
    public static RootCommand Build()
    {
        var root = new RootCommand("hici: load, score, generate with and merge long-context LLMs (Llama-2/3, Qwen3; full or HiCI attention) on TorchSharp");
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
        root.Subcommands.Add(PrepareDataCommand.Build());
        root.Subcommands.Add(InitCommand.Build());
        root.Subcommands.Add(TrainCommand.Build());
        root.Subcommands.Add(SftCommand.Build());
        root.Subcommands.Add(DemoCommand.Build());
        root.Subcommands.Add(EvalCommand.Build());
        root.Subcommands.Add(I3Command.Build());
        root.Subcommands.Add(ProfileCommand.Build());
        return root;
    }

    /// <summary>
    /// The tree, built once per process: the options shared by many commands are static, and System.CommandLine
    /// records every command an option is added to, so each new tree made those lists longer and every later
    /// build slower (quadratic; an in-process run of 2,000 commands spent most of its time there).
    /// </summary>
    static readonly Lazy<RootCommand> Root = new(Build);

    // No response files: System.CommandLine would replace any argument starting with '@' (a prompt "@user", a
    // --top-p "@/") by the contents of the file it names, reading folders and devices before any of our checks.
    static readonly ParserConfiguration Parsing = new() { ResponseFileTokenReplacer = null };

    /// <summary>
    /// Parses and runs. A command-line error (unknown flag, missing required flag, a value of the wrong type) is
    /// one line <c>hici: error: …</c> on stderr and exit 1, like every other user error — not System.CommandLine's
    /// error list followed by the whole help text.
    /// </summary>
    public static int Run(string[] args)
    {
        var root = Root.Value;
        if (args.Length == 0)
        {
            root.Parse(new[] { "--help" }, Parsing).Invoke();   // a bare `hici` asks what there is: show it
            return 1;
        }
        var pr = root.Parse(args, Parsing);
        if (pr.Action is ParseErrorAction && pr.Errors.Count > 0)
        {
            string cmd = pr.CommandResult.Command == root ? "hici" : $"hici {pr.CommandResult.Command.Name}";
            // "Required command was not provided" comes first for `hici typo`; the unrecognised word says more.
            var error = pr.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? pr.Errors[0];
            Console.Error.WriteLine($"hici: error: {Describe(error.Message)} (see {cmd} --help)");
            return 1;
        }
        return pr.Invoke();
    }

    // "Cannot parse argument 'x' for option '--n' as expected type 'System.Nullable`1[System.Int32]'." → "... (expected an integer)"
    private static string Describe(string message)
    {
        var m = Regex.Match(message, @"^Cannot parse argument '(.*)' for option '(.*)' as expected type '(?:System\.Nullable`1\[)?System\.(\w+)\]?'\.?$");
        if (!m.Success) return message.TrimEnd('.');
        string what = m.Groups[3].Value switch
        {
            "Int32" => "an integer between -2147483648 and 2147483647",
            "Int64" => "an integer",
            "Double" or "Single" => "a number",
            "Boolean" => "true or false",
            var t => t,
        };
        return $"{m.Groups[2].Value} '{m.Groups[1].Value}': expected {what}";
    }
}
