using System.Text.Json;
using System.Text.Json.Nodes;

namespace Hici.IO;

/// <summary>
/// Writes a folder so readers see either no folder or the complete one: <paramref name="fill"/> writes into a
/// temporary sibling, which is then renamed (replacing an existing folder of that name when
/// <paramref name="replace"/>). A crash or an exception leaves no half-written folder.
/// </summary>
public static class AtomicDirectory
{
    public static string Write(string dir, Action<string> fill, bool replace = false)
    {
        var full = AtomicFile.Full(dir);   // checked, without a trailing separator (the temp sibling is named after it)
        AtomicFile.CheckReplaceable(full, "folder");
        var tmp = AtomicFile.NewTemp(full);   // hidden, named with our PID: the next write removes it if this process is killed
        Directory.CreateDirectory(tmp);
        try
        {
            fill(tmp);
            if (Directory.Exists(full))
            {
                if (!replace && Directory.EnumerateFileSystemEntries(full).Any()) throw new HiciException($"{dir}: exists and is not empty");
                Directory.Delete(full, recursive: true);
            }
            Directory.Move(tmp, full);
            return full;
        }
        catch
        {
            try { Directory.Delete(tmp, recursive: true); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Indented JSON plus a newline, written with <see cref="AtomicFile"/>.</summary>
    public static void WriteJson(string path, JsonNode node)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        AtomicFile.Write(path, s => s.Write(bytes));
    }
}
