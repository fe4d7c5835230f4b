namespace Hici.IO;

/// <summary>
/// Writes a file so readers see either the old file or the complete new one, never a half-written one
/// (a crash mid-save of a multi-GB checkpoint must not destroy the previous checkpoint).
/// </summary>
public static class AtomicFile
{
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
