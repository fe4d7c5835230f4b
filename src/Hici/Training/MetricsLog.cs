using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Hici.Training;

/// <summary>
/// OUTPUT/metrics.jsonl — one {"step", "loss", "lr", "hici_lr", "grad_norm", "hici_grad_norm", "tokens_per_s"}
/// per optimizer step, flushed each line — and TensorBoard event files in OUTPUT/runs (TorchSharp's
/// SummaryWriter). A resumed run first drops the lines after its checkpoint's step, so the file reads as one run.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    public const string FileName = "metrics.jsonl";
    private readonly StreamWriter _w;
    private readonly TorchSharp.Modules.SummaryWriter? _tb;

    public string Path { get; }

    public MetricsLog(string outputDir, long resumedAtStep = 0, bool tensorBoard = true)
    {
        Directory.CreateDirectory(outputDir);
        Path = System.IO.Path.Combine(outputDir, FileName);
        var keep = new List<string>();
        if (resumedAtStep > 0 && File.Exists(Path))
            foreach (var line in File.ReadLines(Path))
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
        foreach (var line in File.ReadLines(path))
        {
            try
            {
                if (JsonNode.Parse(line) is JsonObject o && o["step"] is { } s && o["loss"] is JsonValue l && l.TryGetValue<double>(out var lv))
                    r.Add((s.GetValue<long>(), lv));
            }
            catch (JsonException) { }
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
