using System.Runtime.InteropServices;
using System.Text;

namespace Hici.IO;

/// <summary>
/// The one way input files are opened: the path must name a regular file (a FIFO would block the open,
/// /dev/zero or /dev/urandom never end), and no more than a limit fitting the kind of file is read — the
/// reported length is not trusted, the read itself stops at the limit. Text must be valid UTF-8.
/// </summary>
public static class InputFiles
{
    /// <summary>An empty or blank path is a user error (.NET's own message for it is an internal-looking ArgumentException).</summary>
    public static string CheckPath(string? path, string what)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new HiciException($"{what}: the path is empty");
        if (path.IndexOf('\0') >= 0) throw new HiciException($"{what}: the path contains a NUL character");
        return path;
    }

    /// <summary>Refuses anything but an existing regular file (symbolic links are followed), without opening it.</summary>
    public static void CheckRegularFile(string path)
    {
        CheckPath(path, "input file");
        if (Directory.Exists(path)) throw new HiciException($"{path}: is a folder, not a file");
        if (!File.Exists(path)) throw new HiciException($"{path}: no such file");
        if (FileKind(path) is { } kind && kind != "regular file")
            throw new HiciException($"{path}: is a {kind}, not a regular file");
    }

    /// <summary>Reads at most <paramref name="maxBytes"/> bytes; a longer file is refused, whatever its reported length.</summary>
    public static byte[] ReadBytes(string path, long maxBytes)
    {
        CheckRegularFile(path);
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            long reported = fs.Length;
            if (reported > maxBytes) throw TooLarge(path, reported, maxBytes);
            var buf = new byte[Math.Min(reported, maxBytes) + 1];   // +1: notices a file that grew past the limit
            int n = 0;
            while (true)
            {
                if (n == buf.Length)
                {
                    if (buf.Length > maxBytes) throw TooLarge(path, buf.Length, maxBytes);
                    Array.Resize(ref buf, (int)Math.Min(Math.Max(buf.Length * 2L, 4096), maxBytes + 1));
                }
                int r = fs.Read(buf, n, buf.Length - n);
                if (r <= 0) break;
                n += r;
            }
            if (n > maxBytes) throw TooLarge(path, n, maxBytes);
            if (n != buf.Length) Array.Resize(ref buf, n);
            return buf;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new HiciException($"{path}: cannot read ({e.Message})", e); }
    }

    /// <summary>Tokenizer and config files copied beside an output: the largest of them (tokenizer.json) is at most this.</summary>
    public const long MaxCopiedInputBytes = 512L << 20;

    /// <summary>Copies an input file (a regular file, at most <paramref name="maxBytes"/>) to <paramref name="to"/>, atomically.</summary>
    public static void Copy(string from, string to, long maxBytes = MaxCopiedInputBytes)
    {
        var bytes = ReadBytes(from, maxBytes);
        AtomicFile.Write(to, s => s.Write(bytes));
    }

    /// <summary>The file as text: strict UTF-8 (the first bad byte is named), a leading BOM dropped.</summary>
    public static string ReadText(string path, long maxBytes) => DecodeUtf8(ReadBytes(path, maxBytes), path);

    public static string DecodeUtf8(ReadOnlySpan<byte> bytes, string origin)
    {
        CheckUtf8(bytes, origin);
        if (bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) bytes = bytes[3..];
        return Strict.GetString(bytes);
    }

    /// <summary>Refuses bytes that are not UTF-8, naming the line and column of the first bad byte.</summary>
    public static void CheckUtf8(ReadOnlySpan<byte> bytes, string origin)
    {
        if (System.Text.Unicode.Utf8.IsValid(bytes)) return;
        long at = Math.Max(FirstInvalidUtf8(bytes), 0);
        var (line, col) = LineColumn(bytes, (int)at);
        throw new HiciException($"{origin}: not valid UTF-8 (line {line}, column {col}, byte offset {at})");
    }

    /// <summary>
    /// The non-blank lines of a UTF-8 file, each at most <paramref name="maxLineBytes"/>, streamed (the file can be
    /// larger than memory). Line numbers are 1-based.
    /// </summary>
    /// <param name="keepBlank">also yield blank lines (a format whose line count matters); a final newline still ends the file, as File.ReadLines has it</param>
    public static IEnumerable<(int LineNo, string Text)> ReadLines(string path, long maxLineBytes, bool keepBlank = false)
    {
        CheckRegularFile(path);
        FileStream fs;
        try { fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new HiciException($"{path}: cannot read ({e.Message})", e); }
        using (fs)
        {
            var line = new MemoryStream();
            var buf = new byte[1 << 16];
            int lineNo = 1;
            while (true)
            {
                int r;
                try { r = fs.Read(buf, 0, buf.Length); }
                catch (IOException e) { throw new HiciException($"{path}: cannot read ({e.Message})", e); }
                if (r <= 0) break;
                int start = 0;
                for (int i = 0; i < r; i++)
                {
                    if (buf[i] != (byte)'\n') continue;
                    line.Write(buf, start, i - start);
                    if (LineText(path, lineNo, line, maxLineBytes, keepBlank) is { } t) yield return (lineNo, t);
                    line.SetLength(0);
                    lineNo++;
                    start = i + 1;
                }
                line.Write(buf, start, r - start);
                if (line.Length > maxLineBytes)
                    throw new HiciException($"{path}:{lineNo}: line is longer than {maxLineBytes} bytes");
            }
            if (line.Length > 0 && LineText(path, lineNo, line, maxLineBytes, keepBlank) is { } last) yield return (lineNo, last);
        }
    }

    private static string? LineText(string path, int lineNo, MemoryStream line, long maxLineBytes, bool keepBlank)
    {
        if (line.Length > maxLineBytes) throw new HiciException($"{path}:{lineNo}: line is longer than {maxLineBytes} bytes");
        var bytes = line.GetBuffer().AsSpan(0, (int)line.Length);
        if (lineNo == 1 && bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) bytes = bytes[3..];
        if (bytes.Length > 0 && bytes[^1] == (byte)'\r') bytes = bytes[..^1];
        string text;
        try { text = Strict.GetString(bytes); }
        catch (DecoderFallbackException) { throw new HiciException($"{path}:{lineNo}: not valid UTF-8 (byte {FirstInvalidUtf8(bytes) + 1} of the line)"); }
        return !keepBlank && string.IsNullOrWhiteSpace(text) ? null : text;
    }

    /// <summary>1-based line and column (in characters) of a byte offset; for error messages.</summary>
    public static (long Line, long Column) LineColumn(ReadOnlySpan<byte> bytes, int offset)
    {
        offset = Math.Clamp(offset, 0, bytes.Length);
        var before = bytes[..offset];
        long line = before.Count((byte)'\n') + 1;
        int lineStart = before.LastIndexOf((byte)'\n') + 1;
        var col = bytes[lineStart..offset];
        long chars = 0;
        foreach (var b in col) if ((b & 0xC0) != 0x80) chars++;   // count UTF-8 lead bytes: one per code point
        return (line, chars + 1);
    }

    static long FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        var status = System.Text.Unicode.Utf8.ToUtf16(bytes, new char[bytes.Length], out int read, out _, replaceInvalidSequences: false);
        return status == System.Buffers.OperationStatus.Done ? -1 : read;
    }

    static HiciException TooLarge(string path, long seen, long max) => new(
        $"{path}: {(seen > max ? "more than" : "")} {Size(max)} is over the limit for this kind of file; is it the right file?");

    public static string Size(long bytes) => bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):0.#} GiB"
        : bytes >= 1L << 20 ? $"{bytes / (double)(1L << 20):0.#} MiB" : bytes >= 1 << 10 ? $"{bytes / 1024.0:0.#} KiB" : $"{bytes} bytes";

    static readonly UTF8Encoding Strict = new(false, throwOnInvalidBytes: true);

    // ---- file type without opening (statx has one layout on every Linux architecture) ----

    /// <summary>"regular file", "folder", "FIFO", "character device", …; null where it cannot be told (not Linux).</summary>
    public static string? FileKind(string path)
    {
        if (!OperatingSystem.IsLinux()) return null;
        Span<byte> buf = stackalloc byte[256];
        int rc;
        try { rc = Statx(AtFdCwd, path, 0, StatxType, ref MemoryMarshal.GetReference(buf)); }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return null; }
        if (rc != 0) return null;
        int mode = BitConverter.ToUInt16(buf[28..30]) & 0xF000;
        return mode switch
        {
            0x8000 => "regular file",
            0x4000 => "folder",
            0x1000 => "FIFO (named pipe)",
            0x2000 => "character device",
            0x6000 => "block device",
            0xC000 => "socket",
            0xA000 => "symbolic link",
            _ => "special file",
        };
    }

    const int AtFdCwd = -100;
    const uint StatxType = 1;

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    static extern int Statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, ref byte statxbuf);
}
