using System.Text.Json;
using System.Text.Json.Nodes;
using Hici.IO;

namespace Hici.Training;

/// <summary>One optimizer step as metrics.jsonl and trainer_state.json record it.</summary>
public sealed record StepMetrics(long Step, double Loss, double Lr, double HiciLr, double GradNorm, double HiciGradNorm, double TokensPerSecond, double Seconds);

/// <summary>
/// trainer_state.json: where the run stands (the optimizer step, the data position, the random states) and
/// what it has logged, so <c>--resume</c> continues exactly. The torch generator state is stored as base64
/// of its bytes (libtorch's own layout).
/// </summary>
public sealed record TrainerState
{
    public const string FileName = "trainer_state.json";
    public required long GlobalStep { get; init; }
    public required int MaxSteps { get; init; }
    public required SamplerState Data { get; init; }
    public required string TorchRngBase64 { get; init; }
    /// <summary>State of HiCI's mixed-segment-ratio draw (null when the run has none).</summary>
    public string? SegmenterState { get; init; }
    public required long Seed { get; init; }
    public required string Kind { get; init; }          // "pretrain" | "sft"
    public IReadOnlyList<StepMetrics> LogHistory { get; init; } = Array.Empty<StepMetrics>();

    public JsonObject ToJson()
    {
        return new JsonObject
        {
            ["global_step"] = GlobalStep, ["max_steps"] = MaxSteps, ["kind"] = Kind, ["seed"] = Seed,
            ["data"] = new JsonObject { ["epoch"] = Data.Epoch, ["cursor"] = Data.Cursor },
            ["torch_rng_state"] = TorchRngBase64,
            ["segmenter_state"] = SegmenterState,
            ["log_history"] = new JsonArray(LogHistory.Select(m => (JsonNode)new JsonObject
            {
                ["step"] = m.Step, ["loss"] = m.Loss, ["lr"] = m.Lr, ["grad_norm"] = m.GradNorm,
            }).ToArray()),
        };
    }

    /// <summary>The state of a checkpoint that <c>--resume</c> may continue as a run of <paramref name="kind"/>.</summary>
    public static TrainerState ForResume(string dir, string kind)
    {
        var st = Load(dir);
        if (st.Kind != kind) throw new HiciException($"{dir}: a {st.Kind} checkpoint; --resume continues a run of the same kind (use --init-from to start {kind} from it)");
        return st;
    }

    /// <summary>The log history grows a line per logged step: 64 MiB is hundreds of thousands of steps.</summary>
    public const long MaxBytes = 64L << 20;

    public static TrainerState Load(string dir)
    {
        var path = Path.Combine(dir, FileName);
        if (!File.Exists(path)) throw new HiciException($"{dir}: no {FileName} (not a checkpoint of ours)");
        var o = JsonFiles.ReadObject(path, MaxBytes);
        try
        {
            T Req<T>(JsonNode? n, string what) => n is null ? throw new HiciException($"{path}: no \"{what}\"") : n.GetValue<T>();
            var d = o["data"] as JsonObject ?? throw new HiciException($"{path}: no \"data\"");
            var hist = (o["log_history"] as JsonArray ?? new JsonArray()).OfType<JsonObject>()
                .Select(m => new StepMetrics(Req<long>(m["step"], "step"), Req<double>(m["loss"], "loss"), Req<double>(m["lr"], "lr"), 0, Req<double>(m["grad_norm"], "grad_norm"), 0, 0, 0)).ToList();
            // A hostile or damaged state must not steer the run: a negative step would train ~2^63 steps.
            long NonNegative(JsonNode? n, string what) => Req<long>(n, what) is var v && v >= 0 ? v
                : throw new HiciException($"{path}: \"{what}\" must be ≥ 0 (got {v})");
            return new TrainerState
            {
                GlobalStep = NonNegative(o["global_step"], "global_step"),
                MaxSteps = (int)NonNegative(o["max_steps"], "max_steps"),
                Kind = Req<string>(o["kind"], "kind"),
                Seed = Req<long>(o["seed"], "seed"),
                Data = new SamplerState(NonNegative(d["epoch"], "data.epoch"), NonNegative(d["cursor"], "data.cursor")),
                TorchRngBase64 = Req<string>(o["torch_rng_state"], "torch_rng_state"),
                SegmenterState = o["segmenter_state"]?.GetValue<string>(),
                LogHistory = hist,
            };
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {   // a field of the wrong type or out of range
            throw new HiciException($"{path}: not a valid trainer state ({e.Message})");
        }
    }
}
