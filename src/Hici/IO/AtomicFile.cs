namespace Hici.IO;

/// <summary>
/// Writes a file so readers see either the old file or the complete new one, never a half-written one
/// (a crash mid-save of a multi-GB checkpoint must not destroy the previous checkpoint).
/// </summary>
public static class AtomicFile
{
    /// <summary>Checks, before long work, that <paramref name="path"/> can be written as a file
    /// (<paramref name="option"/> names it in the error, e.g. "--out").</summary>
    public static void CheckTarget(string path, string option)
    {
        if (Directory.Exists(path)) throw new HiciException($"{option} {path}: is a folder; give a file name");
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(folder)) throw new HiciException($"{option} {path}: folder {folder} does not exist");
    }

    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var tmp = $"{full}.tmp-{Convert.ToHexString(Guid.NewGuid().ToByteArray(), 0, 6).ToLowerInvariant()}";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
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
}
