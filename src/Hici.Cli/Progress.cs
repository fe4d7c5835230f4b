using Spectre.Console;

namespace Hici.Cli;

/// <summary>
/// A progress bar on stderr for long work, shown only when stderr is a terminal (so pipes, files and tests
/// see clean output). stdout stays free for results.
/// </summary>
public static class Progress
{
    public static bool Interactive => !Console.IsErrorRedirected;

    /// <summary>Runs <paramref name="work"/> with a callback (done, total) that drives a bar titled <paramref name="title"/>.</summary>
    public static T Run<T>(string title, Func<Action<int, int>?, T> work)
    {
        if (!Interactive) return work(null);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        T result = default!;
        console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(title, maxValue: 1);
                result = work((done, total) => { task.MaxValue = Math.Max(total, 1); task.Value = done; });
                task.StopTask();
            });
        return result;
    }
}
