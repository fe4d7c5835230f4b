namespace Hici;

/// <summary>
/// An error caused by the user's input (a bad file, flag or shape). The CLI prints its message as one
/// line, without a stack trace; the message names the file and the problem.
/// </summary>
public class HiciException : Exception
{
    public HiciException(string message) : base(message) { }
    public HiciException(string message, Exception inner) : base(message, inner) { }
}
