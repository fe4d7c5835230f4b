using System.Diagnostics;
using System.Text;

namespace Hici.Fuzz;

public sealed record FuzzOptions
{
    public int Iterations { get; init; } = 3000;
    public int Seed { get; init; } = 1;
    public int Start { get; init; }
    public TimeSpan CaseTimeLimit { get; init; } = TimeSpan.FromSeconds(20);
    public long MemoryLimitBytes { get; init; } = 4L << 30;
    /// <summary>Managed heap limit of the worker: also what <c>MemoryEstimate.Available</c> reports there.</summary>
    public long HeapLimitBytes { get; init; } = 2L << 30;
    public double ProcessShare { get; init; } = 0.01;
    public string? ReportPath { get; init; }
    /// <summary>Repository root for the seed fixtures (default: found above the harness).</summary>
    public string? Root { get; init; }
    /// <summary>Input kinds to draw from (default: all).</summary>
    public string[] Kinds { get; init; } = Cases.AllKinds;
}

/// <summary>
/// Runs the cases in a worker process and watches it from outside: a case running past the time limit is a
/// hang, a worker whose resident memory passes the limit is a memory runaway, a worker that dies is a fault.
/// In each event the worker is killed and a new one continues with the next case.
/// </summary>
public sealed class Supervisor(FuzzOptions o)
{
    readonly List<Outcome> _outcomes = new();

    public IReadOnlyList<Outcome> Outcomes => _outcomes;

    public int Run()
    {
        var sw = Stopwatch.StartNew();
        int next = o.Start, end = o.Start + o.Iterations;
        var scratch = Path.Combine(Path.GetTempPath(), $"hici-fuzz-{Environment.ProcessId}");
        try
        {
            while (next < end) next = RunWorker(next, end, scratch, sw);
        }
        finally
        {
            try { Directory.Delete(scratch, recursive: true); } catch (Exception) { }
        }
        var table = Table(sw.Elapsed);
        Console.WriteLine(table);
        if (o.ReportPath is { } rp) File.WriteAllText(rp, table);
        return _outcomes.Any(x => x.Verdict is Verdict.Fault or Verdict.Hang or Verdict.Memory) ? 1 : 0;
    }

    /// <summary>Runs cases [from, end) until done or the worker has to be killed; returns the next case to run.</summary>
    int RunWorker(int from, int end, string scratch, Stopwatch total)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = false, UseShellExecute = false,
        };
        psi.ArgumentList.Add(typeof(Supervisor).Assembly.Location);
        foreach (var a in new[] { "--worker", "--seed", o.Seed.ToString(), "--start", from.ToString(), "--iterations", (end - from).ToString(),
                                  "--process-share", o.ProcessShare.ToString(System.Globalization.CultureInfo.InvariantCulture), "--scratch", scratch })
            psi.ArgumentList.Add(a);
        if (o.Root is not null) { psi.ArgumentList.Add("--root"); psi.ArgumentList.Add(o.Root); }
        psi.ArgumentList.Add("--kinds");
        psi.ArgumentList.Add(string.Join(',', o.Kinds));
        psi.Environment["DOTNET_GCHeapHardLimit"] = "0x" + o.HeapLimitBytes.ToString("X");
        Directory.CreateDirectory(scratch);
        psi.WorkingDirectory = scratch;   // relative paths among the fuzzed flags land in the scratch folder
        using var p = Process.Start(psi)!;
        var stderr = new Queue<string>();
        p.ErrorDataReceived += (_, e) =>   // drained (native code may write there); the tail explains a crash
        {
            if (e.Data is null) return;
            lock (stderr) { stderr.Enqueue(e.Data); if (stderr.Count > 40) stderr.Dequeue(); }
        };
        p.BeginErrorReadLine();
        int current = from;
        var caseStart = Stopwatch.StartNew();
        double caseCpu = 0;
        var lines = new System.Collections.Concurrent.BlockingCollection<string?>();
        var reader = Task.Run(() =>
        {
            string? l;
            while ((l = p.StandardOutput.ReadLine()) is not null) lines.Add(l);
            lines.Add(null);
        });
        while (true)
        {
            if (lines.TryTake(out var line, 50))
            {
                if (line is null) break;
                if (line.StartsWith("@@START ", StringComparison.Ordinal)) { current = int.Parse(line[8..]); caseStart.Restart(); caseCpu = CpuSeconds(p.Id); }
                else if (line.StartsWith("@@DONE ", StringComparison.Ordinal))
                {
                    var f = line[7..].Split('\t');
                    Add(new Outcome(int.Parse(f[0]), f[1], f[2], Enum.Parse<Verdict>(f[3]), f.Length > 7 ? f[7] : "")
                        { Milliseconds = double.Parse(f[4]), CpuMilliseconds = double.Parse(f[5]), SetupMilliseconds = double.Parse(f[6]) });
                    current = int.Parse(f[0]) + 1;
                    if (_outcomes.Count % 2000 == 0 && o.ReportPath is { } rp)
                        File.WriteAllText(rp, "(partial)\n" + Table(total.Elapsed));
                    if (_outcomes.Count % 500 == 0)
                        Console.Error.WriteLine($"[fuzz] {_outcomes.Count} cases, {total.Elapsed.TotalSeconds:F0} s, " +
                                                $"{_outcomes.Count(x => x.Verdict is Verdict.Fault or Verdict.Hang or Verdict.Memory)} problems");
                }
                continue;
            }
            // CPU time, not wall time, decides: on a shared machine a starved case is slow, not hung (wall time
            // still bounds a case that blocks without using CPU).
            double cpu = CpuSeconds(p.Id) - caseCpu;
            if (cpu > o.CaseTimeLimit.TotalSeconds || caseStart.Elapsed > o.CaseTimeLimit * 10)
                return Kill(p, current, Verdict.Hang, $"ran {cpu:F0} s of CPU, {caseStart.Elapsed.TotalSeconds:F0} s of wall time (limits {o.CaseTimeLimit.TotalSeconds:F0} s, {o.CaseTimeLimit.TotalSeconds * 10:F0} s)");
            if (Rss(p.Id) is var rss && rss > o.MemoryLimitBytes)
                return Kill(p, current, Verdict.Memory, $"worker RSS {rss >> 20} MiB passed the {o.MemoryLimitBytes >> 20} MiB limit");
        }
        p.WaitForExit();
        if (current < end && p.ExitCode != 0)
        {
            string tail;
            lock (stderr) tail = string.Join(" | ", stderr.Where(l => l.Trim().Length > 0).Take(6));
            Add(new Outcome(current, Cases.KindOf(o.Seed, current, o.Kinds), "?", Verdict.Fault, $"worker died with exit code {p.ExitCode}: {Cases.Short(tail)}"));
            return current + 1;
        }
        return Math.Max(current, end);
    }

    void Add(Outcome x)
    {
        _outcomes.Add(x);
        if (x.Verdict is Verdict.Fault or Verdict.Hang or Verdict.Memory)
            Console.Error.WriteLine($"[fuzz] case {x.Case} {x.Kind}/{x.Target}: {x.Verdict}: {x.Detail}");
    }

    int Kill(Process p, int current, Verdict v, string detail)
    {
        try { p.Kill(entireProcessTree: true); p.WaitForExit(); } catch (Exception) { }
        Add(new Outcome(current, Cases.KindOf(o.Seed, current, o.Kinds), "?", v, detail));
        return current + 1;
    }

    /// <summary>User + system CPU seconds of a process so far (0 where /proc is not available).</summary>
    public static double CpuSeconds(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');   // fields from 3 (state) on; utime is 14, stime 15
            return (long.Parse(f[11]) + long.Parse(f[12])) / 100.0;     // USER_HZ is 100 on Linux
        }
        catch (Exception) { return 0; }
    }

    /// <summary>Resident set size of a process in bytes (0 where /proc is not available).</summary>
    public static long Rss(int pid)
    {
        try
        {
            foreach (var l in File.ReadLines($"/proc/{pid}/status"))
                if (l.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(l[6..].Trim().Split(' ')[0]) * 1024;
        }
        catch (Exception) { }
        return 0;
    }

    public string Table(TimeSpan elapsed)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"hici fuzz: {_outcomes.Count} cases (seed {o.Seed}, cases {o.Start}..{o.Start + o.Iterations - 1}{(o.Kinds.Length < Cases.AllKinds.Length ? $", kinds {string.Join(',', o.Kinds)}" : "")}) in {elapsed.TotalSeconds:F0} s; " +
                      $"limits {o.CaseTimeLimit.TotalSeconds:F0} s per case, {o.MemoryLimitBytes >> 20} MiB RSS, {o.HeapLimitBytes >> 20} MiB managed heap");
        sb.AppendLine();
        sb.AppendLine("| input kind | target | cases | clean error | success | internal fault | hang | memory | mean ms | max ms | mean CPU ms | mean setup ms |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var g in _outcomes.GroupBy(x => (x.Kind, x.Target)).OrderBy(g => Array.IndexOf(Cases.AllKinds, g.Key.Kind)).ThenBy(g => g.Key.Target))
            sb.AppendLine(Row(g.Key.Kind, g.Key.Target, g.ToList()));
        sb.AppendLine(Row("**all**", "", _outcomes));
        sb.AppendLine();
        sb.AppendLine("Slowest: " + string.Join(", ", _outcomes.OrderByDescending(x => x.Milliseconds).Take(5).Select(x => $"case {x.Case} {x.Kind}/{x.Target} {x.Milliseconds:F0} ms")));
        var bad = _outcomes.Where(x => x.Verdict is Verdict.Fault or Verdict.Hang or Verdict.Memory).ToList();
        if (bad.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine($"Problems (replay one with --replay N --seed {o.Seed}):");
            foreach (var b in bad.Take(40)) sb.AppendLine($"- case {b.Case} {b.Kind}/{b.Target}: {b.Verdict}: {b.Detail}");
            if (bad.Count > 40) sb.AppendLine($"- … {bad.Count - 40} more");
        }
        return sb.ToString();
    }

    static string Row(string kind, string target, List<Outcome> xs) =>
        $"| {kind} | {target} | {xs.Count} | {xs.Count(x => x.Verdict == Verdict.Clean)} | {xs.Count(x => x.Verdict == Verdict.Success)} | " +
        $"{xs.Count(x => x.Verdict == Verdict.Fault)} | {xs.Count(x => x.Verdict == Verdict.Hang)} | {xs.Count(x => x.Verdict == Verdict.Memory)} | " +
        $"{Mean(xs, x => x.Milliseconds):F0} | {(xs.Count > 0 ? xs.Max(x => x.Milliseconds) : 0):F0} | " +
        $"{Mean(xs, x => x.CpuMilliseconds):F1} | {Mean(xs, x => x.SetupMilliseconds):F1} |";

    static double Mean(List<Outcome> xs, Func<Outcome, double> f) => xs.Count > 0 ? xs.Average(f) : 0;
}
