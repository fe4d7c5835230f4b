namespace Hici.Generation;

/// <summary>
/// Watches the decoded text as it streams and says when a stop string appears. Text that could still
/// be the start of a stop string is held back, so a stop string is never printed in part.
/// </summary>
public sealed class StopStringMatcher
{
    readonly string[] _stops;
    readonly System.Text.StringBuilder _pending = new();

    public StopStringMatcher(IEnumerable<string> stops) => _stops = stops.Where(s => s.Length > 0).ToArray();

    public bool Stopped { get; private set; }

    /// <summary>Feeds newly decoded text; returns the part that is safe to emit now.</summary>
    public string Push(string text)
    {
        if (Stopped) return "";
        _pending.Append(text);
        var s = _pending.ToString();
        int cut = -1;
        foreach (var stop in _stops)
        {
            int i = s.IndexOf(stop, StringComparison.Ordinal);
            if (i >= 0 && (cut < 0 || i < cut)) cut = i;
        }
        if (cut >= 0)
        {
            Stopped = true;
            _pending.Clear();
            return s[..cut];
        }
        int hold = 0;
        foreach (var stop in _stops)
            for (int k = Math.Min(stop.Length - 1, s.Length); k > hold; k--)
                if (s.EndsWith(stop[..k], StringComparison.Ordinal)) { hold = k; break; }
        _pending.Clear();
        _pending.Append(s[^hold..]);
        return s[..^hold];
    }

    /// <summary>At the end of generation: whatever was held back (no stop string completed).</summary>
    public string Flush()
    {
        var s = Stopped ? "" : _pending.ToString();
        _pending.Clear();
        return s;
    }
}
