using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Hici.IO;

namespace Hici.Evaluation;

/// <summary>
/// The partial results of a long evaluation, kept in a side file (<c>OUT.partial.jsonl</c>) so an interrupted
/// run resumes where it stopped and ends with the same numbers. The first line names the run (task and
/// every setting that changes a result); a file from another run is refused rather than mixed in. Each later
/// line is one finished unit <c>{"key": ..., "value": ...}</c>. The whole file is rewritten to a temp file
/// and renamed (at most every <see cref="FlushEvery"/>, and on <see cref="Flush"/>), so a kill leaves the
/// previous complete state, never a torn line.
/// </summary>
public sealed class ResumeLog<T> where T : notnull
{
    private readonly string _path;
    private readonly string _run;
    private readonly Dictionary<string, T> _done = new(StringComparer.Ordinal);
    private readonly List<string> _order = new();
    private readonly Stopwatch _sinceFlush = Stopwatch.StartNew();
    private bool _dirty;

    public TimeSpan FlushEvery { get; init; } = TimeSpan.FromSeconds(5);
    public string Path => _path;
    public int Count => _done.Count;
    /// <summary>Units found in the file when it was opened (resumed, not recomputed).</summary>
    public int Resumed { get; }

    /// <param name="run">a one-line description of the run; resuming requires the same text</param>
    public ResumeLog(string path, string run)
    {
        _path = path;
        _run = run;
        if (!File.Exists(path)) return;
        bool first = true;
        foreach (var (lineNo, line) in Hici.IO.InputFiles.ReadLines(path, JsonLines.MaxLineBytes))
        {
            using var doc = Hici.IO.JsonFiles.ParseLine(path, lineNo, line);
            try
            {
                if (first)
                {
                    string? other = doc.RootElement.GetProperty("run").GetString();
                    if (other != run)
                        throw new HiciException($"{path}: partial results of another run ({other}); delete the file or use the same settings (this run: {run})");
                    first = false;
                    continue;
                }
                string key = doc.RootElement.GetProperty("key").GetString() ?? throw new JsonException("null key");
                var value = doc.RootElement.GetProperty("value").Deserialize<T>() ?? throw new JsonException("null value");
                if (_done.TryAdd(key, value)) _order.Add(key);
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new HiciException($"{path}:{lineNo}: not a partial-results line ({e.Message}); delete the file to start over");
            }
        }
        Resumed = _done.Count;
    }

    public bool TryGet(string key, out T value) => _done.TryGetValue(key, out value!);

    public IEnumerable<KeyValuePair<string, T>> Items => _order.Select(k => new KeyValuePair<string, T>(k, _done[k]));

    public void Add(string key, T value)
    {
        if (_done.TryAdd(key, value)) _order.Add(key); else _done[key] = value;
        _dirty = true;
        if (_sinceFlush.Elapsed >= FlushEvery) Flush();
    }

    public void Flush()
    {
        if (!_dirty) return;
        AtomicFile.Write(_path, s =>
        {
            using var w = new StreamWriter(s, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
            w.Write(JsonSerializer.Serialize(new { run = _run }));
            w.Write('\n');
            foreach (var k in _order)
            {
                w.Write(JsonSerializer.Serialize(new { key = k, value = _done[k] }));
                w.Write('\n');
            }
        });
        _dirty = false;
        _sinceFlush.Restart();
    }

    /// <summary>Removes the side file once the final result is written.</summary>
    public void Complete()
    {
        try { File.Delete(_path); } catch (IOException) { }
    }
}
