using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Hici.Hierarchical;

/// <summary>A Global Integration module (the reference's GlobalIntegratorShared / GlobalIntegrator): shared or independent statistics compressors.</summary>
public interface IGlobalIntegrator
{
    int HiddenSize { get; }
    int NumGlobalSlots { get; }
    /// <summary>D, the working width.</summary>
    int Width { get; }
    /// <summary>Non-causal: L [B, N, M, H] → G [B, K, H] from all N·M local slots (GlobalIntegratorShared.forward).</summary>
    Tensor Forward(Tensor localSlots);
    /// <summary>Causal: L [B, N, M, H] → G [B, N, K, H], slice n from chunks 0..n inclusive (GlobalIntegratorShared.forward_causal).</summary>
    Tensor ForwardCausal(Tensor localSlots);
    /// <summary>Statistics s [B', 5, H] (e.g. <see cref="CausalStatsState.Stats"/>) → G [B', K, H].</summary>
    Tensor ForwardStats(Tensor stats);
    /// <summary>The module itself (for state dicts, dtype moves).</summary>
    nn.Module Module { get; }
}

/// <summary>
/// The running statistics behind <see cref="IGlobalIntegrator.ForwardCausal"/>, one segment at a time: sum,
/// max, min, fp32 sum of squares and slot count of segments 0..g, so streaming HiCI carries [B, H]-sized state
/// per layer instead of every segment's local slots. Same dtype sequence as <c>CausalStats</c>.
/// </summary>
public sealed class CausalStatsState : IDisposable
{
    private Tensor? _sum, _max, _min, _sq;
    private long _segments, _slots;

    /// <summary>Adds one segment's local slots L_g [B, M, H].</summary>
    public void Add(Tensor l)
    {
        using var scope = NewDisposeScope();
        var s = l.sum(1);
        var mx = l.amax(new long[] { 1 });
        var mn = l.amin(new long[] { 1 });
        var l32 = l.to(ScalarType.Float32);
        var sq = (l32 * l32).sum(1);
        _sum = Keep(_sum is null ? s : _sum + s, _sum);
        _max = Keep(_max is null ? mx : maximum(_max, mx), _max);
        _min = Keep(_min is null ? mn : minimum(_min, mn), _min);
        _sq = Keep(_sq is null ? sq : _sq + sq, _sq);
        _segments++;
        _slots = l.shape[1];
    }

    private static Tensor Keep(Tensor fresh, Tensor? old)
    {
        fresh.MoveToOuterDisposeScope();
        fresh = fresh.DetachFromDisposeScope();
        old?.Dispose();
        return fresh;
    }

    /// <summary>s [B, 5, H] = [mean, max, min, std, norm_mean] over every slot added so far.</summary>
    public Tensor Stats()
    {
        if (_sum is null) throw new InvalidOperationException("no segment added yet");
        using var scope = NewDisposeScope();
        var act = _sum.dtype;
        var cnt = tensor((double)_segments, act, _sum.device) * _slots;     // as CausalStats: (g+1)·M in the activation dtype
        var mean = _sum / cnt;
        var cnt32 = cnt.to(ScalarType.Float32);
        var e2 = _sq! / cnt32;
        var e1 = _sum.to(ScalarType.Float32) / cnt32;
        var sd = (e2 - e1 * e1).clamp_min(1e-12).sqrt().to(act);
        var nm = nn.functional.normalize(mean, p: 2, dim: -1, eps: 1e-6);
        return stack(new[] { mean, _max!, _min!, sd, nm }, 1).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var t in new[] { _sum, _max, _min, _sq }) t?.Dispose();
        _sum = _max = _min = _sq = null;
    }
}

/// <summary>The statistics both integrator classes compute (pure functions).</summary>
internal static class GlobalIntegration
{
    public const int NumStats = 5;

    /// <summary>Z [B, R, H] → s [B, 5, H] in the order [mean, max, min, std, norm_mean] (GlobalIntegratorShared.forward).</summary>
    public static Tensor Stats(Tensor z)
    {
        var act = z.dtype;
        var mu = z.mean(new long[] { 1 });
        var mx = z.amax(new long[] { 1 });
        var mn = z.amin(new long[] { 1 });
        var sd = z.to(ScalarType.Float32).std(1, unbiased: false).clamp_min(1e-6).to(act);
        var nm = nn.functional.normalize(mu, p: 2, dim: -1, eps: 1e-6);
        return stack(new[] { mu, mx, mn, sd, nm }, 1);
    }

    /// <summary>L [B, N, M, H] → s [B·N, 5, H], prefix n over chunks 0..n (GlobalIntegratorShared.forward_causal; dtype sequence mirrored).</summary>
    public static Tensor CausalStats(Tensor l)
    {
        var act = l.dtype;
        long b = l.shape[0], n = l.shape[1], m = l.shape[2], hdim = l.shape[3];
        var chunkSum = l.sum(2);                                                   // [B, N, H] act
        var cs = chunkSum.cumsum(1);                                               // act
        var cnt = (arange(1, n + 1, dtype: act, device: l.device) * m).view(1, n, 1); // act
        var cumMean = cs / cnt;
        var cumMax = l.amax(new long[] { 2 }).cummax(1).values;
        var cumMin = l.amin(new long[] { 2 }).cummin(1).values;
        var l32 = l.to(ScalarType.Float32);
        var sq = (l32 * l32).sum(2);                                               // fp32
        var csq = sq.cumsum(1);
        var cnt32 = cnt.to(ScalarType.Float32);
        var e2 = csq / cnt32;
        var e1 = cs.to(ScalarType.Float32) / cnt32;
        var cumStd = (e2 - e1 * e1).clamp_min(1e-12).sqrt().to(act);
        var cumNm = nn.functional.normalize(cumMean, p: 2, dim: -1, eps: 1e-6);
        return stack(new[] { cumMean, cumMax, cumMin, cumStd, cumNm }, 2).reshape(b * n, NumStats, hdim);
    }

    public static double InverseSoftplus(double y) => Math.Log(Math.Exp(y) - 1.0);

    /// <summary>Row indices of the k rows of largest L2 norm (torch.topk order).</summary>
    public static Tensor TopNormRows(Tensor embed, int k) =>
        embed.to(ScalarType.Float32).norm(1, false, 2).topk(k).indexes;
}

/// <summary>
/// What both integrator classes share (GlobalIntegratorShared / GlobalIntegrator __init__, forward, forward_causal): the learned queries and output scale (loader-settable),
/// the light multi-head attention q/k/v/o over the five compressed statistics, <c>expand</c> back to H, the
/// init rules, and the non-causal / causal forwards. A subclass builds its compressors first, then calls
/// <see cref="BuildAttention"/> (the construction order keeps the reference's RNG order), and supplies
/// <see cref="CompressStats"/> and <see cref="CompressQueryRows"/>.
/// The fields are <c>private protected</c> rather than private so TorchSharp's RegisterComponents, which
/// reflects over the runtime type's fields, sees them from the subclass; their names are the state-dict keys.
/// </summary>
public abstract class GlobalIntegratorBase : nn.Module<Tensor, Tensor>, IGlobalIntegrator
{
#pragma warning disable IDE1006
    [ComponentName(Name = "global_queries")] private protected Parameter _global_queries = null!;
    [ComponentName(Name = "expand_scale_param")] private protected Parameter _expand_scale_param = null!;
    // Modules, not Linear, so LoRA can wrap them (PEFT's suffix match reaches these too: target_modules q/k/v/o_proj in fine-tune_hici.py).
    private protected nn.Module<Tensor, Tensor> q_proj = null!;
    private protected nn.Module<Tensor, Tensor> k_proj = null!;
    private protected nn.Module<Tensor, Tensor> v_proj = null!;
    private protected nn.Module<Tensor, Tensor> o_proj = null!;
    private protected Linear expand = null!;
#pragma warning restore IDE1006

    public int HiddenSize { get; }
    public int NumGlobalSlots { get; }
    public int Width { get; }
    public int NumHeads { get; }
    public nn.Module Module => this;

    /// <summary>Learned queries [K, D]. Settable so a loader can swap a meta placeholder for data.</summary>
    public Parameter global_queries
    {
        get => _global_queries;
        set { if (!ReferenceEquals(value, _global_queries)) { _global_queries.Dispose(); _global_queries = value; value.DetachFromDisposeScope(); ConditionallyRegisterParameter("global_queries", value); } }
    }

    /// <summary>0-dim; the output scale is softplus of it. Settable for the loader.</summary>
    public Parameter expand_scale_param
    {
        get => _expand_scale_param;
        set { if (!ReferenceEquals(value, _expand_scale_param)) { _expand_scale_param.Dispose(); _expand_scale_param = value; value.DetachFromDisposeScope(); ConditionallyRegisterParameter("expand_scale_param", value); } }
    }

    public Parameter GlobalQueries => _global_queries;
    public Parameter ExpandScaleParam => _expand_scale_param;

    /// <summary>Checks the sizes (messages name <paramref name="name"/>); builds nothing.</summary>
    private protected GlobalIntegratorBase(string name, int hiddenSize, int globalSlots, int compressDim, int width,
        int numHeads, double outputScaleInit)
        : base(name)
    {
        if (compressDim % numHeads != 0)
            throw new HiciException($"{name}: compress_dim {compressDim} is not divisible by num_heads {numHeads}");
        if (outputScaleInit <= 0) throw new HiciException($"{name}: output_scale_init must be > 0");
        if (width % numHeads != 0)
            throw new HiciException($"{name}: width {width} is not divisible by num_heads {numHeads}");
        HiddenSize = hiddenSize;
        NumGlobalSlots = globalSlots;
        NumHeads = numHeads;
        Width = width;
    }

    /// <summary>c [B', 5, D] from the statistics s [B', 5, H].</summary>
    private protected abstract Tensor CompressStats(Tensor stats);

    /// <summary>The compression the high-norm query init applies to embedding rows [K, H] → [K, D].</summary>
    private protected abstract Tensor CompressQueryRows(Tensor rows);

    /// <summary>
    /// Steps 2–6 of the reference's __init__ (queries, q/k/v/o, expand, output scale), called by the subclass constructor after its compressors (step 1) exist; then
    /// registers every field. On the meta device nothing is initialised (a loader fills it).
    /// <paramref name="embeddings"/>: the host's input embedding matrix [V, H] for the high-norm init of the
    /// global queries (null → xavier-uniform).
    /// </summary>
    private protected void BuildAttention(Tensor? embeddings, bool useHighNormInit, double outputScaleInit,
        ScalarType dtype, Device? device)
    {
        bool meta = device is { type: DeviceType.META };
        // 2. queries start at zero; 3. q/k/v/o default init (overwritten below).
        _global_queries = NewParam(zeros(NumGlobalSlots, Width, dtype, device));
        q_proj = nn.Linear(Width, Width, hasBias: false, device: device, dtype: dtype);
        k_proj = nn.Linear(Width, Width, hasBias: false, device: device, dtype: dtype);
        v_proj = nn.Linear(Width, Width, hasBias: false, device: device, dtype: dtype);
        o_proj = nn.Linear(Width, Width, hasBias: false, device: device, dtype: dtype);
        expand = nn.Linear(Width, HiddenSize, hasBias: false, device: device, dtype: dtype);
        _expand_scale_param = NewParam(tensor(GlobalIntegration.InverseSoftplus(outputScaleInit), dtype, device));
        RegisterComponents();
        if (meta) return;
        using (no_grad())
        {
            // 4. expand ~ N(0, (0.02/√D)²); 5. inverse softplus (above); 6. queries and q/k/v/o.
            nn.init.normal_(expand.weight!, 0.0, 0.02 / Math.Sqrt(Width));
            InitQueries(embeddings, useHighNormInit);
            foreach (var p in new[] { q_proj, k_proj, v_proj, o_proj }) nn.init.xavier_uniform_(((Linear)p).weight!);
        }
    }

    private static Parameter NewParam(Tensor t)
    {
        var p = new Parameter(t);
        p.DetachFromDisposeScope();
        return p;
    }

    private void InitQueries(Tensor? embeddings, bool useHighNorm)
    {
        if (embeddings is null) { nn.init.xavier_uniform_(_global_queries); return; }
        using var scope = NewDisposeScope();
        var idx = useHighNorm
            ? GlobalIntegration.TopNormRows(embeddings, NumGlobalSlots)
            : randperm(embeddings.shape[0], device: embeddings.device).narrow(0, 0, NumGlobalSlots);
        var rows = embeddings.index_select(0, idx).to(_global_queries.dtype, _global_queries.device);
        _global_queries.copy_(CompressQueryRows(rows));
    }

    /// <summary>s [B', 5, H] → G [B', K, H]: K learned queries over the 5 compressed statistics, then expand.</summary>
    private Tensor Integrate(Tensor stats)
    {
        var c = CompressStats(stats);                                                 // [B', 5, D]
        long bb = c.shape[0], ns = c.shape[1], d = c.shape[2];
        long kq = _global_queries.shape[0];
        long dg = d / NumHeads;
        var qg = q_proj.forward(_global_queries).view(1, kq, NumHeads, dg).transpose(1, 2);  // [1, h, K, dG]
        var kc = k_proj.forward(c).view(bb, ns, NumHeads, dg).transpose(1, 2);            // [B', h, 5, dG]
        var vc = v_proj.forward(c).view(bb, ns, NumHeads, dg).transpose(1, 2);
        var scores = matmul(qg, kc.transpose(-2, -1)) * Math.Pow(dg, -0.5);
        var attn = scores.softmax(-1);
        var og = matmul(attn, vc).transpose(1, 2).reshape(bb, kq, d);                 // [B', K, D]
        var gc = o_proj.forward(og);
        return expand.forward(gc) * nn.functional.softplus(_expand_scale_param);
    }

    public override Tensor forward(Tensor localSlots) => Forward(localSlots);

    public Tensor Forward(Tensor localSlots)
    {
        using var scope = NewDisposeScope();
        long b = localSlots.shape[0];
        var z = localSlots.reshape(b, -1, HiddenSize);
        return Integrate(GlobalIntegration.Stats(z)).MoveToOuterDisposeScope();
    }

    public Tensor ForwardStats(Tensor stats)
    {
        using var scope = NewDisposeScope();
        return Integrate(stats).MoveToOuterDisposeScope();
    }

    public Tensor ForwardCausal(Tensor localSlots)
    {
        using var scope = NewDisposeScope();
        long b = localSlots.shape[0], n = localSlots.shape[1];
        var g = Integrate(GlobalIntegration.CausalStats(localSlots));
        return g.view(b, n, NumGlobalSlots, HiddenSize).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Global Integration with one shared compressor for the five statistics (the reference's
/// <c>GlobalIntegratorShared</c>, used by every published checkpoint).
/// Field names (here and in <see cref="GlobalIntegratorBase"/>) are the state-dict sub-keys under
/// <c>self_attn.global_integrator.</c>.
/// </summary>
public sealed class GlobalIntegratorShared : GlobalIntegratorBase
{
#pragma warning disable IDE1006
    private readonly Sequential shared_compressor;
    private readonly Sequential? stat_expand;
#pragma warning restore IDE1006

    public int SharedCompressDim { get; }

    public GlobalIntegratorShared(int hiddenSize, HiciConfig cfg, Tensor? embeddings = null,
        ScalarType dtype = ScalarType.Float32, Device? device = null)
        : this(hiddenSize, cfg.GlobalSlots, cfg.BottleneckDim, cfg.SharedCompressDim, cfg.NumHeads,
            embeddings, cfg.UseHighNormInit, cfg.OutputScaleInit, dtype, device) { }

    /// <summary>
    /// Builds and initialises as GlobalIntegratorShared.__init__ does. <paramref name="compressDim"/> is the module's compress_dim,
    /// which the reference register sets to the bottleneck β; the working width is D = compressDim when
    /// C &lt; compressDim, else C (no stat_expand). <paramref name="embeddings"/>: the host's input
    /// embedding matrix [V, H] for the high-norm init of the global queries (null → xavier-uniform).
    /// </summary>
    public GlobalIntegratorShared(int hiddenSize, int globalSlots = 4, int compressDim = 512, int sharedCompressDim = 128,
        int numHeads = 8, Tensor? embeddings = null, bool useHighNormInit = true, double outputScaleInit = 0.1,
        ScalarType dtype = ScalarType.Float32, Device? device = null)
        : base("GlobalIntegratorShared", hiddenSize, globalSlots, compressDim,
            sharedCompressDim < compressDim ? compressDim : sharedCompressDim, numHeads, outputScaleInit)
    {
        SharedCompressDim = sharedCompressDim;
        // 1. compressors: default Linear init, LayerNorm 1/0.
        shared_compressor = nn.Sequential(
            ("0", (nn.Module<Tensor, Tensor>)nn.Linear(hiddenSize, sharedCompressDim, hasBias: false, device: device, dtype: dtype)),
            ("1", nn.LayerNorm(sharedCompressDim, eps: 1e-5, device: device, dtype: dtype)));
        stat_expand = sharedCompressDim < compressDim
            ? nn.Sequential(
                ("0", (nn.Module<Tensor, Tensor>)nn.Linear(sharedCompressDim, Width, hasBias: false, device: device, dtype: dtype)),
                ("1", nn.LayerNorm(Width, eps: 1e-5, device: device, dtype: dtype)))
            : null;
        BuildAttention(embeddings, useHighNormInit, outputScaleInit, dtype, device);
    }

    private Tensor Compress(Tensor s)
    {
        var c = shared_compressor.forward(s);
        return stat_expand is null ? c : stat_expand.forward(c);
    }

    private protected override Tensor CompressQueryRows(Tensor rows) => Compress(rows);

    private protected override Tensor CompressStats(Tensor stats)
    {
        long bb = stats.shape[0];
        return Compress(stats.reshape(bb * GlobalIntegration.NumStats, HiddenSize)).view(bb, GlobalIntegration.NumStats, Width);
    }
}

/// <summary>
/// Global Integration with one compressor per statistic (the reference's <c>GlobalIntegrator</c>).
/// Statistic i (order mean, max, min, std, norm_mean) goes through <c>stat_compressors.{i}</c>. Has a causal
/// forward as in the Llama file (the Qwen3 file's class lacks one; see docs/hici.md).
/// </summary>
public sealed class GlobalIntegrator : GlobalIntegratorBase
{
#pragma warning disable IDE1006
    private readonly ModuleList<Sequential> stat_compressors;
#pragma warning restore IDE1006

    public GlobalIntegrator(int hiddenSize, HiciConfig cfg, Tensor? embeddings = null,
        ScalarType dtype = ScalarType.Float32, Device? device = null)
        : this(hiddenSize, cfg.GlobalSlots, cfg.CompressDim, cfg.NumHeads, embeddings, cfg.UseHighNormInit,
            cfg.OutputScaleInit, dtype, device) { }

    public GlobalIntegrator(int hiddenSize, int globalSlots = 4, int compressDim = 512, int numHeads = 8,
        Tensor? embeddings = null, bool useHighNormInit = true, double outputScaleInit = 0.1,
        ScalarType dtype = ScalarType.Float32, Device? device = null)
        : base("GlobalIntegrator", hiddenSize, globalSlots, compressDim, compressDim, numHeads, outputScaleInit)
    {
        stat_compressors = new ModuleList<Sequential>();
        for (int i = 0; i < GlobalIntegration.NumStats; i++)
            stat_compressors.Add(nn.Sequential(
                ("0", (nn.Module<Tensor, Tensor>)nn.Linear(hiddenSize, Width, hasBias: false, device: device, dtype: dtype)),
                ("1", nn.LayerNorm(Width, eps: 1e-5, device: device, dtype: dtype))));
        BuildAttention(embeddings, useHighNormInit, outputScaleInit, dtype, device);
    }

    /// <summary>The reference initialises the queries through the first (mean) compressor.</summary>
    private protected override Tensor CompressQueryRows(Tensor rows) => stat_compressors[0].forward(rows);

    private protected override Tensor CompressStats(Tensor stats)
    {
        var parts = new Tensor[GlobalIntegration.NumStats];
        for (int i = 0; i < parts.Length; i++) parts[i] = stat_compressors[i].forward(stats.select(1, i));
        return stack(parts, 1);                                                     // [B', 5, D]
    }
}
