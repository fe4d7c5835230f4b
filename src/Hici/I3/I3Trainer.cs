using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hici.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.I3;

/// <summary>Metrics of one optimizer step.</summary>
public sealed record I3StepMetrics(long Step, double Loss, double Lr, double GradNorm, double Alpha, double History, double TokensPerSecond);

/// <summary>
/// Trains an i3 model on one token stream. B lanes read consecutive W-token chunks (inputs W, targets the next W,
/// so the last target is the first token of the lane's next chunk); every micro-step is one chunk per lane, so the
/// G micro-steps of an optimizer step are G consecutive chunks and history carries across chunks and steps
/// (detached). The newest history entry is recomputed inside each micro-step from the previous chunk's detached
/// stream, so the compressor gets a gradient while nothing else of an earlier chunk does. After LaneLength chunks
/// all lanes jump to new random offsets with empty history. Everything that decides the next step (weights,
/// AdamW moments, step, data cursors, random state, history, pending stream, carried RWKV states) is checkpointed,
/// so a resumed run repeats a straight one exactly (same threads, CPU).
/// </summary>
public sealed class I3Trainer : IDisposable
{
    private readonly I3Model _model;
    private readonly int[] _tokens;
    private readonly I3TrainOptions _o;
    private readonly AdamW _opt;
    private readonly List<AdamW.ParamGroup> _groups = [];
    private readonly CompressedHistory _history;
    private Tensor? _pending;
    private RwkvLayerState[]? _carry;
    private SplitMix64 _rng;
    private long[] _cursors;
    private int _laneChunk;
    private readonly int _laneLength;

    public long Step { get; private set; }
    public I3Model Model => _model;
    public I3TrainOptions Options => _o;

    public I3Trainer(I3Model model, int[] tokens, I3TrainOptions options)
    {
        options.Validate();
        _model = model; _tokens = tokens; _o = options;
        int W = model.Config.KernelWindow;
        _laneLength = (int)Math.Min(options.LaneLength, (tokens.Length - 1L) / W);
        if (_laneLength < 1) throw new HiciException($"the training stream has {tokens.Length} tokens; one chunk needs {W + 1}");
        var decay = new List<Parameter>(); var rest = new List<Parameter>();
        foreach (var (name, p) in model.named_parameters())
            (IsDecayed(name, p) ? decay : rest).Add(p);
        _groups.Add(new AdamW.ParamGroup(decay, options.LearningRate, options.Beta1, options.Beta2, options.Eps, options.WeightDecay));
        _groups.Add(new AdamW.ParamGroup(rest, options.LearningRate, options.Beta1, options.Beta2, options.Eps, 0.0));
        _opt = optim.AdamW(_groups, options.LearningRate, options.Beta1, options.Beta2, options.Eps, options.WeightDecay);
        _history = new CompressedHistory(Math.Max(model.Config.MaxCompressedChunks - 1, 0));
        _rng = new SplitMix64((ulong)options.Seed);
        _cursors = new long[options.Batch];
        Reseed();
    }

    /// <summary>Weight decay on 2-D weight matrices only: not on LayerNorms, biases, time parameters, embeddings, latent queries or age embedding.</summary>
    public static bool IsDecayed(string name, Tensor p) =>
        p.dim() >= 2 && name is not ("emb.weight" or "pos_emb.weight" or "age_emb.weight" or "compressor.latents");

    private void Reseed()
    {
        int W = _model.Config.KernelWindow;
        long span = _tokens.Length - (long)_laneLength * W;   // a lane reads laneLength·W + 1 tokens
        for (int b = 0; b < _cursors.Length; b++) _cursors[b] = _rng.NextLong(Math.Max(span, 1));
        _laneChunk = 0;
        _history.Clear();
        _pending?.Dispose(); _pending = null;
        if (_carry is not null) foreach (var s in _carry) s.Dispose();
        _carry = null;
    }

    /// <summary>One optimizer step (G micro-steps).</summary>
    public I3StepMetrics TrainStep()
    {
        var sw = Stopwatch.StartNew();
        _model.train();
        var cfg = _model.Config;
        int W = cfg.KernelWindow, B = _o.Batch;
        double alpha = cfg.Gate(Step);
        double lossSum = 0, histSum = 0;
        _opt.zero_grad();
        for (int g = 0; g < _o.GradAccum; g++)
        {
            using var scope = torch.NewDisposeScope();
            if (_laneChunk >= _laneLength) Reseed();
            var buf = new long[B * (W + 1)];
            for (int b = 0; b < B; b++)
                for (int t = 0; t <= W; t++) buf[b * (W + 1) + t] = _tokens[_cursors[b] + t];
            var ids = torch.tensor(buf, [B, W + 1], ScalarType.Int64);
            var inputs = ids.narrow(1, 0, W);
            var targets = ids.narrow(1, 1, W);
            var (logits, next, fresh, states) = _model.TrainChunk(inputs, _history.Entries, _pending, alpha, cfg.CarryRwkvState ? _carry : null);
            histSum += alpha > 0 ? Math.Min(_history.Count + (fresh is null ? 0 : 1), cfg.MaxCompressedChunks) : 0;
            var loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), targets.reshape(-1));
            (loss / _o.GradAccum).backward();
            lossSum += loss.item<float>();
            if (fresh is not null) { _history.Push(fresh); _history.KeepNewest(cfg.MaxCompressedChunks - 1); }
            _pending?.Dispose();
            _pending = next.DetachFromDisposeScope();
            if (cfg.CarryRwkvState)
            {
                if (_carry is not null) foreach (var s in _carry) s.Dispose();
                _carry = states;
                foreach (var s in states) foreach (var t in s.Tensors) t.DetachFromDisposeScope();
            }
            else foreach (var s in states) s.Dispose();
            for (int b = 0; b < B; b++) _cursors[b] += W;
            _laneChunk++;
        }
        double lr = _o.LrAt(Step);
        foreach (var grp in _groups) grp.LearningRate = lr;
        double norm = ClipGradNorm(_model.parameters(), _o.Clip);
        _opt.step();
        _opt.zero_grad();
        Step++;
        double secs = Math.Max(sw.Elapsed.TotalSeconds, 1e-9);
        return new I3StepMetrics(Step, lossSum / _o.GradAccum, lr, norm, alpha, histSum / _o.GradAccum, (double)_o.GradAccum * B * W / secs);
    }

    /// <summary>torch.nn.utils.clip_grad_norm_ semantics: total 2-norm; gradients scaled by max/(norm + 1e-6) when above max.</summary>
    public static double ClipGradNorm(IEnumerable<Parameter> ps, double max)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var grads = ps.Select(p => p.grad).Where(g => g is not null).Select(g => g!).ToList();
        if (grads.Count == 0) return 0;
        double total = torch.stack(grads.Select(g => g.norm()).ToArray()).norm().ToDouble();
        double coef = max / (total + 1e-6);
        if (coef < 1) foreach (var g in grads) g.mul_(coef);
        return total;
    }

    // ---------------------------------------------------------------- checkpoints

    public const string OptimizerFile = "optimizer.bin";
    public const string StateTensorsFile = "trainer_state.safetensors";
    public const string StateJsonFile = "trainer_state.json";
    /// <summary>Step, RNG, one cursor per lane: a few KB; 16 MiB is not ours.</summary>
    public const long StateJsonMaxBytes = 16L << 20;

    /// <summary>
    /// Writes a complete resumable checkpoint into <paramref name="dir"/>: it is first written to a temp folder beside it and
    /// then swapped in, so a crash leaves either the previous checkpoint or the new one.
    /// </summary>
    public void SaveCheckpoint(string dir, Action<string>? extraFiles = null)
    {
        var full = Path.GetFullPath(dir);
        var tmp = full + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        Directory.CreateDirectory(tmp);
        try
        {
            _model.Save(tmp);
            _opt.save_state_dict(Path.Combine(tmp, OptimizerFile));
            var tensors = new List<(string, Tensor)>();
            for (int i = 0; i < _history.Count; i++) tensors.Add(($"history.{i}", _history.Entries[i]));
            if (_pending is not null) tensors.Add(("pending", _pending));
            if (_carry is not null)
                for (int l = 0; l < _carry.Length; l++)
                {
                    var s = _carry[l];
                    tensors.Add(($"carry.{l}.shift_att", s.ShiftAtt)); tensors.Add(($"carry.{l}.shift_ffn", s.ShiftFfn));
                    tensors.Add(($"carry.{l}.a", s.Wkv.A)); tensors.Add(($"carry.{l}.b", s.Wkv.B)); tensors.Add(($"carry.{l}.p", s.Wkv.P));
                }
            if (tensors.Count > 0) SafeTensorsWriter.Save(Path.Combine(tmp, StateTensorsFile), tensors);
            var json = new JsonObject
            {
                ["step"] = Step, ["rng_state"] = _rng.State.ToString(), ["lane_chunk"] = _laneChunk, ["lane_length"] = _laneLength,
                ["cursors"] = new JsonArray(_cursors.Select(c => (JsonNode)c).ToArray()), ["history"] = _history.Count,
                ["pending"] = _pending is not null, ["carry"] = _carry is not null,
                ["options"] = JsonSerializer.SerializeToNode(_o),
            };
            AtomicFile.Write(Path.Combine(tmp, StateJsonFile), s => s.Write(System.Text.Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }))));
            extraFiles?.Invoke(tmp);
            var old = full + ".old-" + Guid.NewGuid().ToString("N")[..8];
            if (Directory.Exists(full)) Directory.Move(full, old);
            Directory.Move(tmp, full);
            if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        }
        catch
        {
            try { if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Restores a checkpoint written by <see cref="SaveCheckpoint"/> (weights, optimizer, step, data position, history).</summary>
    public void LoadCheckpoint(string dir)
    {
        var jsonPath = Path.Combine(dir, StateJsonFile);
        if (!File.Exists(jsonPath)) throw new HiciException($"{jsonPath}: no such file (not a checkpoint folder)");
        JsonNode root = JsonFiles.ReadObject(jsonPath, StateJsonMaxBytes);
        using (var w = SafeTensorsWeightSource.Open(Path.Combine(dir, I3Model.WeightsFile))) _model.LoadWeights(w);
        Training.TrainingCheckpoint.LoadOptimizerState(_opt, Path.Combine(dir, OptimizerFile));
        try
        {
            Step = root["step"]!.GetValue<long>();
            _rng = new SplitMix64(ulong.Parse(root["rng_state"]!.GetValue<string>()));
            _laneChunk = root["lane_chunk"]!.GetValue<int>();
            var cursors = root["cursors"]!.AsArray().Select(n => n!.GetValue<long>()).ToArray();
            if (cursors.Length != _cursors.Length) throw new HiciException($"{jsonPath}: {cursors.Length} lanes, the run has batch {_cursors.Length}");
            if (root["lane_length"]!.GetValue<int>() != _laneLength) throw new HiciException($"{jsonPath}: lane length differs from this run's");
            if (cursors.Any(c => c < 0 || c + (long)(_laneLength - _laneChunk) * _model.Config.KernelWindow >= _tokens.Length))
                throw new HiciException($"{jsonPath}: data cursors lie outside the training stream (different data?)");
            _cursors = cursors;
            int hist = root["history"]!.GetValue<int>();
            bool pending = root["pending"]!.GetValue<bool>(), carry = root["carry"]!.GetValue<bool>();
            _history.Clear();
            _pending?.Dispose(); _pending = null;
            if (hist > 0 || pending || carry)
            {
                using var src = SafeTensorsWeightSource.Open(Path.Combine(dir, StateTensorsFile));
                for (int i = 0; i < hist; i++) { using var t = src.Load($"history.{i}"); _history.Push(t); }
                if (pending) _pending = src.Load("pending");
                if (carry)
                    _carry = Enumerable.Range(0, _model.Config.NRwkvLayers).Select(l => new RwkvLayerState(
                        src.Load($"carry.{l}.shift_att"), src.Load($"carry.{l}.shift_ffn"),
                        new WkvState(src.Load($"carry.{l}.a"), src.Load($"carry.{l}.b"), src.Load($"carry.{l}.p")))).ToArray();
            }
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or OverflowException)
        { throw new HiciException($"{jsonPath}: malformed trainer state ({e.Message})"); }
    }

    public void Dispose()
    {
        _opt.Dispose();
        _history.Dispose();
        _pending?.Dispose();
        if (_carry is not null) foreach (var s in _carry) s.Dispose();
    }
}
