using System.Diagnostics;

namespace Hici.Tests;

/// <summary>
/// Debian's python3-torch, when this machine has it (developer machines do; a fresh CI machine may not). Tests
/// use it only as an extra check beside their own assertions: real <c>torch.load</c> reading files we wrote.
/// Such a check is its own test marked <see cref="PythonTorchFactAttribute"/> / <see cref="PythonTorchTheoryAttribute"/>,
/// so without torch it is reported as skipped, not passed.
/// </summary>
internal static class PythonTorch
{
    private const string Python = "/usr/bin/python3";
    private static readonly Lazy<string?> Found = new(() =>
        File.Exists(Python) && Run(Python, "-c \"import torch\"").ExitCode == 0 ? Python : null);

    /// <summary>The interpreter path, or null when there is no python with torch.</summary>
    public static string? Path => Found.Value;

    public static (int ExitCode, string Output) Run(string exe, string args)
    {
        var psi = new ProcessStartInfo(exe, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment.Remove("PYTHONPATH");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr);
    }
}

/// <summary>A fact that needs <see cref="PythonTorch"/>; skipped (with the reason) where python3 has no torch.</summary>
public sealed class PythonTorchFactAttribute : FactAttribute
{
    public PythonTorchFactAttribute()
    {
        if (PythonTorch.Path is null) Skip = "needs /usr/bin/python3 with torch (Debian: apt-get install python3-torch)";
    }
}

/// <summary>A theory that needs <see cref="PythonTorch"/>; skipped (with the reason) where python3 has no torch.</summary>
public sealed class PythonTorchTheoryAttribute : TheoryAttribute
{
    public PythonTorchTheoryAttribute()
    {
        if (PythonTorch.Path is null) Skip = "needs /usr/bin/python3 with torch (Debian: apt-get install python3-torch)";
    }
}
