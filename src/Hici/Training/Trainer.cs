using System.Diagnostics;
using Hici.Hierarchical;
using Hici.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Training;

/// <summary>How a run ended.</summary>
public sealed record TrainResult(long Steps, string? LastCheckpoint, string? StoppedBy, IReadOnlyList<StepMetrics> Metrics);

/// <summary>A non-finite loss or gradient: the run stops before the update; the last good checkpoint stays.</summary>
public sealed class TrainingDivergedException(string message) : HiciException(message);

/// <summary>
/// The training loop of the reference's LayeredLRTrainer (fine-tune_hici.py): AdamW with two parameter
/// groups (HiCI modules incl. their LoRA at --hici-lr, everything else at --lr), the HF schedule, gradient
/// accumulation (loss / accum per micro-batch), then — on the accumulated gradients, before the update — the
/// HiCI clip (a real one: the reference's was a no-op under DeepSpeed) and the global clip, then the step.
/// One dispose scope per micro-batch; nothing grows across steps.
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly TrainOptions _o;
    private readonly IBatchSource _data;
    private readonly string _kind;
    private readonly TrainingModel _tm;
    private readonly MasterWeights _masters;
    private readonly AdamW _opt;
    private readonly List<AdamW.ParamGroup> _groups = new();
    private readonly double[] _baseLr;
    private readonly bool[] _groupIsHici;
    private readonly List<Parameter> _hiciMasters = new();

    public LrSchedule Schedule { get; }
    public TrainingModel Model => _tm;
    /// <summary>The fp32 tensors the optimizer updates (masters of bf16 parameters, fp32 parameters themselves).</summary>
    public MasterWeights Masters => _masters;
    public AdamW Optimizer => _opt;
    /// <summary>Called after every optimizer step.</summary>
    public Action<StepMetrics>? OnStep { get; set; }
    public Action<string>? OnCheckpoint { get; set; }
    /// <summary>Set (e.g. from a signal handler) to stop after the current step with a checkpoint.</summary>
    public volatile string? StopRequested;

    public Trainer(TrainOptions o, TrainingModel tm, IBatchSource data, string kind)
    {
        _o = o.Validate();
        _tm = tm;
        _data = data;
        _kind = kind;
        _masters = new MasterWeights(tm.Trainable);
        var hici = _masters.Items.Where(i => TrainingModel.IsHiciParameter(i.Name)).Select(i => i.Master).ToList();
        var rest = _masters.Items.Where(i => !TrainingModel.IsHiciParameter(i.Name)).Select(i => i.Master).ToList();
        _hiciMasters.AddRange(hici);
        var groups = new List<AdamW.ParamGroup>();
        var isHici = new List<bool>();
        var lrs = new List<double>();
        if (rest.Count > 0) { groups.Add(Group(rest, o.LearningRate)); isHici.Add(false); lrs.Add(o.LearningRate); }
        if (hici.Count > 0) { double lr = o.HiciLearningRate ?? o.LearningRate; groups.Add(Group(hici, lr)); isHici.Add(true); lrs.Add(lr); }
        _opt = optim.AdamW(groups, o.LearningRate, TrainOptions.AdamBeta1, TrainOptions.AdamBeta2, TrainOptions.AdamEps, o.WeightDecay);
        _groups.AddRange(groups);
        _baseLr = lrs.ToArray();
        _groupIsHici = isHici.ToArray();
        Schedule = new LrSchedule(o.Scheduler, o.WarmupSteps, o.MaxSteps);
    }

    private AdamW.ParamGroup Group(IEnumerable<Parameter> ps, double lr) =>
        new(ps, lr, TrainOptions.AdamBeta1, TrainOptions.AdamBeta2, TrainOptions.AdamEps, _o.WeightDecay);

    public long TrainableParameterCount => _masters.Items.Sum(i => i.Master.numel());

    /// <summary>
    /// Runs until --max-steps (or a stop request). <paramref name="resumeDir"/> continues a run exactly
    /// (weights, optimizer, schedule, data position, random states); <paramref name="initFrom"/> takes only the
    /// weights of a checkpoint (fresh optimizer and schedule).
    /// </summary>
    public TrainResult Run(string? resumeDir = null, string? initFrom = null)
    {
        var lm = _tm.Model;
        long step = 0;
        var history = new List<StepMetrics>();
        string? last = null;
        if (resumeDir is not null)
        {
            TrainerState.ForResume(resumeDir, _kind);
            var st = TrainingCheckpoint.Load(resumeDir, _tm, _masters, _opt);
            step = st.GlobalStep;
            _data.Restore(st.Data);
            torch.set_rng_state(RngFromBase64(st.TorchRngBase64));
            if (st.SegmenterState is { } seg && HiciImplementation.SegmenterOf(lm) is { } segmenter) segmenter.SetState(ParseSegmenter(seg));
            history.AddRange(st.LogHistory);
            last = resumeDir;
        }
        else
        {
            if (initFrom is not null) TrainingCheckpoint.LoadWeights(initFrom, _tm, _masters);
            torch.manual_seed(_o.Seed);
        }

        string? stopped = null;
        while (step < _o.MaxSteps)
        {
            var sw = Stopwatch.StartNew();
            double lossSum = 0;
            long tokens = 0;
            for (int a = 0; a < _o.GradAccum; a++)
            {
                using var scope = NewDisposeScope();
                var b = _data.Next(_o.BatchSize);
                var ids = tensor(b.Ids, new long[] { b.Rows, b.Length });
                var labels = tensor(b.Labels, new long[] { b.Rows, b.Length });
                int micro = a + 1;
                double l = MicroBatchStep.Run(lm, ids, labels, _o.LossChunkRows, _o.GradAccum, _o.GradientCheckpointing, loss =>
                {
                    if (!double.IsFinite(loss))
                        throw new TrainingDivergedException($"the loss is {loss} at step {step + 1} (micro-batch {micro}); stopped before updating" + LastGood(last));
                });
                lossSum += l;
                tokens += (long)b.Rows * b.Length;
            }
            _masters.GradientsToMasters();
            double hiciNorm = _hiciMasters.Count > 0 ? ClipNorm(_hiciMasters, _o.HiciGradClip) : 0;
            double norm = ClipNorm(_masters.Masters, _o.MaxGradNorm > 0 ? _o.MaxGradNorm : null);
            if (!double.IsFinite(norm))
                throw new TrainingDivergedException($"the gradient norm is {norm} at step {step + 1}; stopped before updating" + LastGood(last));
            double factor = Schedule.Factor(step);
            for (int g = 0; g < _groups.Count; g++) _groups[g].LearningRate = _baseLr[g] * factor;
            _opt.step();
            _masters.MastersToModel();
            _masters.ZeroGrad();
            step++;
            sw.Stop();
            double lr = _groupIsHici.Length > 0 && !_groupIsHici[0] ? _baseLr[0] * factor : _o.LearningRate * factor;
            double hlr = (_o.HiciLearningRate ?? _o.LearningRate) * factor;
            var m = new StepMetrics(step, lossSum / _o.GradAccum, lr, hlr, norm, hiciNorm, tokens / Math.Max(sw.Elapsed.TotalSeconds, 1e-9), sw.Elapsed.TotalSeconds);
            history.Add(m);
            OnStep?.Invoke(m);
            bool stop = StopRequested is not null;
            if (step % _o.SaveSteps == 0 || step == _o.MaxSteps || stop)
            {
                last = Save(step, history);
                OnCheckpoint?.Invoke(last);
            }
            if (stop) { stopped = StopRequested; break; }
        }
        return new TrainResult(step, last, stopped, history);
    }

    private string Save(long step, List<StepMetrics> history)
    {
        var state = new TrainerState
        {
            GlobalStep = step, MaxSteps = _o.MaxSteps, Data = _data.State, Seed = _o.Seed, Kind = _kind,
            TorchRngBase64 = RngToBase64(), LogHistory = history,
            SegmenterState = HiciImplementation.SegmenterOf(_tm.Model) is { } s ? FormatSegmenter(s.GetState()) : null,
        };
        return TrainingCheckpoint.Save(_o.OutputDir, _o, _tm, _masters, _opt, Schedule, state);
    }

    private static string LastGood(string? last) => last is null ? "; no checkpoint was written yet" : $"; the last good checkpoint is {last}";

    /// <summary>torch.nn.utils.clip_grad_norm_: total 2-norm of the gradients; scaled by max/(norm + 1e-6) when above max.</summary>
    public static double ClipNorm(IEnumerable<Parameter> ps, double? max)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var grads = ps.Select(p => p.grad).Where(g => g is not null).Select(g => g!).ToList();
        if (grads.Count == 0) return 0;
        var total = stack(grads.Select(g => g.to(ScalarType.Float32).norm()).ToArray()).norm().item<float>();
        if (max is { } mx && double.IsFinite(total))
        {
            double coef = mx / (total + 1e-6);
            if (coef < 1) foreach (var g in grads) g.mul_(coef);
        }
        return total;
    }

    private static string FormatSegmenter(SegmenterState s) =>
        $"{s.Rng}:{s.CurrentMixedRatio.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}";

    private static SegmenterState ParseSegmenter(string s)
    {
        var parts = s.Split(':');
        if (parts.Length != 2 || !ulong.TryParse(parts[0], out var rng)
            || !double.TryParse(parts[1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var ratio))
            throw new HiciException($"trainer state: segmenter_state '{s}' is not 'rng:ratio'");
        return new SegmenterState(rng, ratio);
    }

    private static string RngToBase64()
    {
        using var s = torch.get_rng_state();
        var bytes = s.data<byte>().ToArray();
        return Convert.ToBase64String(bytes);
    }

    private static Tensor RngFromBase64(string b64)
    {
        byte[] bytes;
        try { bytes = Convert.FromBase64String(b64); }
        catch (FormatException) { throw new HiciException("trainer state: torch_rng_state is not base64"); }
        TorchRngState.Check(bytes);
        return tensor(bytes, dtype: ScalarType.Byte);
    }

    public void Dispose()
    {
        _opt.Dispose();
        _masters.Dispose();
    }
}
