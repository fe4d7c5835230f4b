using System.Diagnostics;
using Hici.IO;
using Hici.Tests.Models;

namespace Hici.Tests.Reliability;

public sealed record KillTestResult(int Kills, int OldIntact, int NewComplete, TimeSpan FullRun);

/// <summary>
/// Kill tests for anything that writes output: runs the real <c>hici</c> process, kills it with SIGKILL at seeded
/// random moments (mostly late, where the write happens; writes are slowed by HICI_WRITE_THROTTLE_MS so a kill can
/// land inside one), and checks after every kill that the output is the old one or the complete new one — never
/// partial — and that the next complete run leaves no temp entry beside it. Reusable for any command (training
/// checkpoints: pass the trainer's arguments and a completeness check of the checkpoint folder).
/// </summary>
public static class KillTest
{
    public static string HiciDll
    {
        get
        {
            var config = AppContext.BaseDirectory.Contains("/Debug/") ? "Debug" : "Release";
            var dll = Path.Combine(ModelFixtures.Root, "src", "Hici.Cli", "bin", config, "net10.0", "hici.dll");
            Assert.True(File.Exists(dll), $"{dll} is missing: build the solution first");
            return dll;
        }
    }

    /// <param name="args">the hici command line</param>
    /// <param name="output">the file or folder the command writes</param>
    /// <param name="resetOld">puts the old output (or its absence) in place before each run</param>
    /// <param name="isOld">whether the output is exactly the old one</param>
    /// <param name="isComplete">whether the output is a complete new one (loads, has everything)</param>
    public static KillTestResult Run(string[] args, string output, Action resetOld, Func<bool> isOld, Func<bool> isComplete,
        int kills = 8, int seed = 1, int throttleMs = 3)
    {
        int oldIntact = 0, complete = 0;
        var full = KillRepeatedly(args, kills, seed, throttleMs, resetOld, isComplete, (k, at, fullRun) =>
        {
            bool old = isOld(), done = !old && isComplete();
            Assert.True(old || done, $"kill {k} at {at.TotalMilliseconds:F0} ms of {fullRun.TotalMilliseconds:F0} ms left a partial output at {output}");
            if (old) oldIntact++; else complete++;
        });

        // The next complete run removes what the killed ones left behind.
        resetOld();
        var (code, err) = RunToEnd(args, throttleMs);
        Assert.True(code == 0, $"the run after the kills failed (exit {code}): {err}");
        Assert.True(isComplete());
        AssertNoTempEntries(Path.GetDirectoryName(Path.GetFullPath(output).TrimEnd('/'))!);
        return new KillTestResult(kills, oldIntact, complete, full);
    }

    /// <summary>What stands at the output path before each killed run.</summary>
    public enum Before { OldFile, Nothing }

    /// <summary>
    /// <see cref="Run"/> with the usual old output — the text "old" in the file, or nothing at the path — asserting that
    /// every kill left the old output or a complete new one.
    /// </summary>
    public static void AssertNeverPartial(string[] args, string output, Before before, Func<bool> isComplete, int kills, int seed, int throttleMs)
    {
        Action reset = before == Before.OldFile
            ? () => File.WriteAllText(output, "old")
            : () => { if (Directory.Exists(output)) Directory.Delete(output, true); else File.Delete(output); };
        Func<bool> isOld = before == Before.OldFile ? () => File.ReadAllText(output) == "old" : () => !Path.Exists(output);
        var r = Run(args, output, reset, isOld, isComplete, kills, seed, throttleMs);
        Assert.Equal(kills, r.OldIntact + r.NewComplete);
    }

    /// <summary>
    /// Runs <paramref name="args"/> once to the end (its time sets the kill points; <paramref name="isComplete"/> must
    /// hold after it), then <paramref name="kills"/> times: <paramref name="prepare"/>, start, SIGKILL at a seeded
    /// moment in [<paramref name="from"/>, <paramref name="from"/> + <paramref name="span"/>] of the full run's time,
    /// and <paramref name="afterKill"/>(kill, moment, full run time). Returns the full run's time.
    /// </summary>
    public static TimeSpan KillRepeatedly(string[] args, int kills, int seed, int throttleMs, Action prepare, Func<bool> isComplete,
        Action<int, TimeSpan, TimeSpan> afterKill, double from = 0.45, double span = 0.65)
    {
        prepare();
        var full = Stopwatch.StartNew();
        var (code, err) = RunToEnd(args, throttleMs);
        full.Stop();
        Assert.True(code == 0, $"the full run failed (exit {code}): {err}");
        Assert.True(isComplete(), "the full run's output is not complete");
        var rng = new Random(seed);
        for (int k = 0; k < kills; k++)
        {
            prepare();
            // Most of a run is start-up; by default kill points are spread over its second half, where the writing is.
            var at = full.Elapsed * (from + span * rng.NextDouble());
            using (var p = Start(args, throttleMs))
            {
                if (!p.WaitForExit(at)) p.Kill(entireProcessTree: true);
                p.WaitForExit();
            }
            afterKill(k, at, full.Elapsed);
        }
        return full.Elapsed;
    }

    /// <summary>No temp entry of ours in <paramref name="folder"/> or below.</summary>
    public static void AssertNoTempEntries(string folder)
    {
        var left = Directory.EnumerateFileSystemEntries(folder, "*", SearchOption.AllDirectories).Where(AtomicFile.IsTempName).ToList();
        Assert.True(left.Count == 0, "temp entries left after a complete run: " + string.Join(", ", left));
    }

    static ProcessStartInfo Hici(string[] args, int throttleMs)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(HiciDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["HICI_WRITE_THROTTLE_MS"] = throttleMs.ToString();
        return psi;
    }

    static Process Start(string[] args, int throttleMs)
    {
        var p = Process.Start(Hici(args, throttleMs))!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    public static (int Code, string Err) RunToEnd(string[] args, int throttleMs)
    {
        using var p = Process.Start(Hici(args, throttleMs))!;
        var err = p.StandardError.ReadToEndAsync();
        _ = p.StandardOutput.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(3)), "hici did not finish in 3 minutes");
        return (p.ExitCode, err.Result);
    }
}
