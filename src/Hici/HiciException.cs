using System.Text;

namespace Hici;

/// <summary>
/// An error caused by the user's input (a bad file, flag or shape). The CLI prints its message as one
/// line, without a stack trace; the message names the file and the problem. Control characters in it (a value
/// quoted from a hostile file may hold a newline) are shown as escapes, so the message stays one line.
/// </summary>
public class HiciException : Exception
{
    public HiciException(string message) : base(OneLine(message)) { }
    public HiciException(string message, Exception inner) : base(OneLine(message), inner) { }

    /// <summary><paramref name="s"/> with every control character written as an escape (\n, \t, \u0001, …).</summary>
    public static string OneLine(string s)
    {
        if (!s.Any(char.IsControl)) return s;
        var b = new StringBuilder(s.Length + 8);
        foreach (var c in s)
            b.Append(c switch
            {
                '\n' => "\\n", '\r' => "\\r", '\t' => "\\t",
                _ when char.IsControl(c) => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        return b.ToString();
    }
}
