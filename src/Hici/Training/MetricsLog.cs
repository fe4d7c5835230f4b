using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hici.IO;

namespace Hici.Training;

/// <summary>
/// OUTPUT/metrics.jsonl — one {"step", "loss", "lr", "hici_lr", "grad_norm", "hici_grad_norm", "tokens_per_s"}
/// per optimizer step, flushed each line — and TensorBoard event files in OUTPUT/runs (TorchSharp's
/// SummaryWriter). A resumed run first drops the lines after its checkpoint's step, so the file reads as one run.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    public const string FileName = "metrics.jsonl";
    /// <summary>Our lines are ~200 bytes; a longer one is not ours.</summary>
    public const long MaxLineBytes = 1L << 20;
    private readonly StreamWriter _w;
    private readonly TorchSharp.Modules.SummaryWriter? _tb;

    public string Path { get; }

    public MetricsLog(string outputDir, long resumedAtStep = 0, bool tensorBoard = true)
    {
        Directory.CreateDirectory(outputDir);
        Path = System.IO.Path.Combine(outputDir, FileName);
        var keep = new List<string>();
        if (resumedAtStep > 0 && File.Exists(Path))
            foreach (var (_, line) in InputFiles.ReadLines(Path, MaxLineBytes))
                if (StepOf(line) is { } s && s <= resumedAtStep) keep.Add(line);
        if (resumedAtStep > 0) File.WriteAllLines(Path, keep);
        else File.WriteAllText(Path, "");
        _w = new StreamWriter(new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
        if (tensorBoard) _tb = TorchSharp.torch.utils.tensorboard.SummaryWriter(System.IO.Path.Combine(outputDir, "runs"), createRunName: false);
    }

    public void Add(StepMetrics m)
    {
        var o = new JsonObject
        {
            ["step"] = m.Step, ["loss"] = Num(m.Loss), ["lr"] = m.Lr, ["hici_lr"] = m.HiciLr, ["grad_norm"] = Num(m.GradNorm),
            ["hici_grad_norm"] = Num(m.HiciGradNorm), ["tokens_per_s"] = Math.Round(m.TokensPerSecond, 1),
        };
        _w.WriteLine(o.ToJsonString());
        if (_tb is not null)
        {
            int s = (int)m.Step;
            _tb.add_scalar("train/loss", (float)m.Loss, s);
            _tb.add_scalar("train/lr", (float)m.Lr, s);
            _tb.add_scalar("train/grad_norm", (float)m.GradNorm, s);
            _tb.add_scalar("train/tokens_per_s", (float)m.TokensPerSecond, s);
        }
    }

    /// <summary>(step, loss) of every line of a metrics.jsonl (for plots).</summary>
    public static List<(long Step, double Loss)> ReadLosses(string path)
    {
        var r = new List<(long, double)>();
        if (!File.Exists(path)) return r;
        foreach (var (_, line) in InputFiles.ReadLines(path, MaxLineBytes))
        {
            try
            {
                if (JsonNode.Parse(line) is JsonObject o && o["step"] is JsonValue s && s.TryGetValue<long>(out var sv) && o["loss"] is JsonValue l && l.TryGetValue<double>(out var lv))
                    r.Add((sv, lv));
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException) { }   // a damaged line is left out of the plot
        }
        return r;
    }

    private static JsonNode? Num(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;

    private static long? StepOf(string line)
    {
        try { return JsonNode.Parse(line)?["step"]?.GetValue<long>(); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException) { return null; }
    }

    public void Dispose() { _w.Dispose(); }
}
