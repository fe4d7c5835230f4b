using System.Diagnostics;
using Hici.Tests.Models;
using Xunit.Abstractions;

namespace Hici.Tests.Reliability;

/// <summary>
/// The CI-sized fuzz run: tests/Hici.Fuzz (built with the solution) mutates every input kind and runs it through the
/// library loaders and the hici command tree; any internal fault, hang or memory runaway fails the test and prints
/// the cases to replay. A fixed seed keeps CI reproducible; the long run (`--iterations 100000`) explores further.
/// </summary>
public class FuzzCiTests(ITestOutputHelper output)
{
    public const int Iterations = 2000;

    [Fact]
    public void CiSizedFuzzRunHasNoFaultsHangsOrRunaways()
    {
        var config = AppContext.BaseDirectory.Contains("/Debug/") ? "Debug" : "Release";
        var dll = Path.Combine(ModelFixtures.Root, "tests", "Hici.Fuzz", "bin", config, "net10.0", "Hici.Fuzz.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: build the solution (dotnet build HiCI.slnx -c {config})");
        var report = Path.Combine(Path.GetTempPath(), $"hici-fuzz-ci-{Guid.NewGuid():N}.md");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { dll, "--iterations", Iterations.ToString(), "--seed", "20261130", "--time-limit", "30", "--report", report })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(25)), "the fuzz run did not finish in 25 minutes");   // ~3 min on 2 idle cores
        output.WriteLine(stdout.Result);
        try { File.Delete(report); } catch (IOException) { }
        Assert.True(p.ExitCode == 0, $"fuzz run found problems (exit {p.ExitCode}):\n{stdout.Result}\n{stderr.Result}");
        Assert.Contains($"hici fuzz: {Iterations} cases", stdout.Result);
    }
}
