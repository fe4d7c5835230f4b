using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Hici.IO;

/// <summary>
/// Writes a file or a folder so readers see either the old output or the complete new one, never a half-written
/// one (a crash mid-save of a multi-GB checkpoint must not destroy the previous checkpoint). The new output is
/// written to a hidden sibling <c>.NAME.tmp-PID-RANDOM</c> and renamed into place; a temp entry whose writing
/// process no longer runs (it was killed) is removed by the next write of the same output.
/// </summary>
public static partial class AtomicFile
{
    /// <summary>Checks, before long work, that <paramref name="path"/> can be written as a file
    /// (<paramref name="option"/> names it in the error, e.g. "--out").</summary>
    public static void CheckTarget(string path, string option)
    {
        InputFiles.CheckPath(path, option);
        if (Directory.Exists(path)) throw new HiciException($"{option} {path}: is a folder; give a file name");
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(folder)) throw new HiciException($"{option} {path}: folder {folder} does not exist");
        CheckReplaceable(path, "regular file", option + " ");
    }

    /// <summary>
    /// The rename that makes a write atomic replaces whatever the name points at: run as root, `--out /dev/null`
    /// would swap the device for a regular file. So an existing target must be of the kind we write.
    /// </summary>
    public static void CheckReplaceable(string path, string kind, string prefix = "")
    {
        if (InputFiles.FileKind(path) is { } k && k != kind)
            throw new HiciException($"{prefix}{path}: is a {k}, not a {kind}; outputs are written to a temporary file and renamed over the target, which would replace it");
    }

    public static void Write(string path, Action<Stream> write)
    {
        var full = Full(path);
        CheckReplaceable(full, "regular file");
        RemoveStaleTemps(full);
        var tmp = TempName(full);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(ThrottleMs is { } ms ? new ThrottledStream(fs, ms) : fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch (Exception e)
        {
            try { File.Delete(tmp); } catch (IOException) { }
            if (e is IOException or UnauthorizedAccessException)
                throw new HiciException($"{path}: cannot write ({e.Message})", e);
            throw;
        }
    }

    /// <summary>
    /// <see cref="AtomicDirectory.Write"/> without replacing: <paramref name="folder"/> must not exist or be empty, and a
    /// failure of the file system is a one-line user error naming the folder.
    /// </summary>
    public static void WriteFolder(string folder, Action<string> write)
    {
        try { AtomicDirectory.Write(folder, write); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HiciException($"{folder}: cannot write ({e.Message})", e);
        }
    }

    /// <summary>
    /// Removes temp entries of <paramref name="path"/> left by processes that no longer run (kill -9, power loss).
    /// A temp of a live process is left alone: it may be a concurrent write.
    /// </summary>
    public static void RemoveStaleTemps(string path)
    {
        var full = Full(path);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) return;
        var name = Path.GetFileName(full);
        IEnumerable<string> candidates;
        try { candidates = Directory.EnumerateFileSystemEntries(dir, $".{name}.tmp-*").ToList(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return; }
        foreach (var entry in candidates)
        {
            var m = TempPattern().Match(Path.GetFileName(entry));
            if (!m.Success || m.Groups["name"].Value != name || IsRunning(int.Parse(m.Groups["pid"].Value))) continue;
            try
            {
                if (Directory.Exists(entry)) Directory.Delete(entry, recursive: true);
                else File.Delete(entry);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }   // best effort: not ours to fail on
        }
    }

    /// <summary>
    /// HICI_WRITE_THROTTLE_MS=N sleeps N ms per 4 KiB written, so kill tests can land a SIGKILL inside a write
    /// (a real checkpoint takes seconds to write; the tests' tiny files take microseconds). Unset in normal use.
    /// </summary>
    static readonly int? ThrottleMs = int.TryParse(Environment.GetEnvironmentVariable("HICI_WRITE_THROTTLE_MS"), out var t) && t > 0 ? t : null;

    sealed class ThrottledStream(Stream inner, int ms) : Stream
    {
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            for (int i = 0; i < buffer.Length; i += 4096)
            {
                inner.Write(buffer[i..Math.Min(buffer.Length, i + 4096)]);
                inner.Flush();
                Thread.Sleep(ms);
            }
        }
        public override void WriteByte(byte value) => inner.WriteByte(value);
        public override void Flush() => inner.Flush();
        public override bool CanRead => false;
        public override bool CanSeek => inner.CanSeek;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => inner.Position = value; }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void SetLength(long value) => inner.SetLength(value);
    }

    /// <summary>
    /// A temp name for a writer that streams into its own file (a token file grows for hours) and renames it to
    /// <paramref name="path"/> when done; stale temps of earlier killed runs are removed first.
    /// </summary>
    public static string NewTemp(string path)
    {
        var full = Full(path);
        RemoveStaleTemps(full);
        return TempName(full);
    }

    /// <summary>Whether <paramref name="path"/> is one of our temp entries (for tests and tools).</summary>
    public static bool IsTempName(string path) => TempPattern().IsMatch(Path.GetFileName(path));

    internal static string Full(string path) => Path.GetFullPath(InputFiles.CheckPath(path, "output")).TrimEnd(Path.DirectorySeparatorChar) is { Length: > 0 } f ? f : "/";

    static string TempName(string full) =>
        Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Convert.ToHexString(Guid.NewGuid().ToByteArray(), 0, 4).ToLowerInvariant()}");

    static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        if (OperatingSystem.IsLinux()) return Directory.Exists($"/proc/{pid}");
        try { using var p = Process.GetProcessById(pid); return !p.HasExited; }
        catch (Exception) { return false; }
    }

    [GeneratedRegex(@"^\.(?<name>.+)\.tmp-(?<pid>\d{1,9})-[0-9a-f]{8}$")]
    private static partial Regex TempPattern();
}
