using System.CommandLine;
using Hici.Cli;
using Hici.Cli.Commands;

var root = new RootCommand("hici: load, run, fine-tune and evaluate long-context LLMs (Llama-2/3, Qwen3, HiCI) on TorchSharp");
root.Options.Add(Common.Verbose);
// One line per command; each command lives in Commands/<Name>Command.cs.
root.Subcommands.Add(DoctorCommand.Build());
root.Subcommands.Add(TokenizeCommand.Build());
return root.Parse(args).Invoke();
