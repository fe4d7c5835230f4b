using System.CommandLine;
using Hici.Cli;
using Hici.Cli.Commands;

namespace Hici.Tests.Cli;

/// <summary>Console output is process-global, so tests that capture it run one at a time.</summary>
[CollectionDefinition("Console", DisableParallelization = true)]
public sealed class ConsoleCollection;

public static class CliRunner
{
    private static readonly object Gate = new();

    /// <summary>Runs hici in-process (the real command tree); returns exit code, stdout and stderr.</summary>
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        lock (Gate)
        {
            var (oldOut, oldErr) = (Console.Out, Console.Error);
            var (o, e) = (new StringWriter(), new StringWriter());
            Console.SetOut(o);
            Console.SetError(e);
            try
            {
                int code = CliApp.Run(args);
                return (code, o.ToString(), e.ToString());
            }
            finally
            {
                Console.SetOut(oldOut);
                Console.SetError(oldErr);
            }
        }
    }

    /// <summary>A user error: non-zero exit and exactly one line on stderr, saying hici: error: ….</summary>
    public static string AssertOneLineError((int Code, string Out, string Err) r)
    {
        Assert.NotEqual(0, r.Code);
        var lines = r.Err.TrimEnd('\n', '\r').Split('\n');
        Assert.True(lines.Length == 1, "expected one line on stderr, got:\n" + r.Err);
        Assert.StartsWith("hici: error: ", lines[0]);
        return lines[0];
    }

    public static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "hici-test-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(d);
        return d;
    }
}
