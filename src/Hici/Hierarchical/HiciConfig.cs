using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Hici.Hierarchical;

/// <summary>
/// Which memory each segment sees (reference global <c>CAUSAL_CONTEXT_MODE</c> in llama_attn_hici.py / qwen3_attn_hici.py).
/// </summary>
public enum HiciCausalMode
{
    /// <summary>One G over all segments (leaks later segments) plus L_g.</summary>
    None,
    /// <summary>G_g from segments 0..g (cumulative statistics) plus L_g.</summary>
    CausalGi,
    /// <summary>G_{g-1} and L_{g-1}; segment 0 sees no memory. Strictly causal.</summary>
    CausalShift,
    /// <summary>G_{g-1} only (no L); segment 0 sees no memory. Strictly causal.</summary>
    CausalShiftG,
    /// <summary>G_g only (no L).</summary>
    CausalGiGOnly,
}

/// <summary>
/// The HiCI hyper-parameters of one model (all layers share them). Defaults are those of every published
/// checkpoint (the arguments of the reference's register_hici_to_model and its training CLI). Saved beside our checkpoints as <c>hici_config.json</c> (<see cref="FileName"/>).
/// </summary>
public sealed record HiciConfig
{
    public const string FileName = "hici_config.json";
    public static readonly IReadOnlyList<double> DefaultMixedRatios = new[] { 0.5, 0.25, 0.125 };

    /// <summary>M: learned query slots of the local constructor.</summary>
    public int LocalSlots { get; init; } = 8;
    /// <summary>K: learned query slots of the global integrator.</summary>
    public int GlobalSlots { get; init; } = 4;
    /// <summary>h: heads of both HiCI modules (not the host attention's heads).</summary>
    public int NumHeads { get; init; } = 8;
    /// <summary>Local constructor with a β-wide bottleneck and an o_proj (every published checkpoint).</summary>
    public bool UseBottleneck { get; init; } = true;
    /// <summary>β: local-constructor width; also the working dim D of the shared global integrator (register_hici_to_model passes compress_dim=bottleneck_dim).</summary>
    public int BottleneckDim { get; init; } = 512;
    /// <summary>C: width of the shared statistics compressor.</summary>
    public int SharedCompressDim { get; init; } = 128;
    /// <summary>D of the independent-compressor global integrator (only used when <see cref="UseSharedCompressor"/> is false).</summary>
    public int CompressDim { get; init; } = 512;
    public bool UseSharedCompressor { get; init; } = true;
    public bool UseLocalConstructor { get; init; } = true;
    public bool UseGlobalIntegrator { get; init; } = true;
    /// <summary>S = int(T · ratio). Ignored when <see cref="SegmentSize"/> is set.</summary>
    public double SegmentRatio { get; init; } = 0.25;
    /// <summary>Fixed segment length (reference USE_FIXED_SEGMENT_SIZE / FIXED_SEGMENT_SIZE); wins over the ratio.</summary>
    public int? SegmentSize { get; init; }
    /// <summary>Training only: one ratio drawn per forward (at layer 0) from this list (reference MIXED_GROUP_TRAINING).</summary>
    public IReadOnlyList<double>? MixedSegmentRatios { get; init; }
    public HiciCausalMode CausalMode { get; init; } = HiciCausalMode.None;
    /// <summary>softplus(expand_scale_param) at init.</summary>
    public double OutputScaleInit { get; init; } = 0.1;
    /// <summary>Global queries initialised from the K largest-norm embedding rows (reference default).</summary>
    public bool UseHighNormInit { get; init; } = true;
    /// <summary>
    /// Inference forward only: run the whole prompt as one segment WITH HiCI (reference USE_FULL_ATTN_WITH_HICI).
    /// Default false: segments from the ratio/size, and one segment turns HiCI off.
    /// </summary>
    public bool InferenceSingleSegment { get; init; }
    /// <summary>
    /// Which HiCI forward the model runs: <see cref="HiciForwardKind.Train"/> (the reference's training
    /// forward, also used by its HiCI-mode perplexity) or <see cref="HiciForwardKind.Inference"/>.
    /// </summary>
    public HiciForwardKind Forward { get; init; } = HiciForwardKind.Train;

    /// <summary>Width of the local constructor's attention (β with a bottleneck, else H).</summary>
    public int LocalWidth(int hidden) => UseBottleneck ? BottleneckDim : hidden;

    /// <summary>D, the working width of the global integrator (GlobalIntegratorShared.__init__; register_hici_to_model passes compress_dim=bottleneck_dim).</summary>
    public int GlobalWidth => UseSharedCompressor
        ? (SharedCompressDim < BottleneckDim ? BottleneckDim : SharedCompressDim)
        : CompressDim;

    /// <summary>True when the shared integrator has a stat_expand stage (C &lt; D).</summary>
    public bool HasStatExpand => UseSharedCompressor && SharedCompressDim < BottleneckDim;

    public static string CausalModeName(HiciCausalMode m) => m switch
    {
        HiciCausalMode.None => "none",
        HiciCausalMode.CausalGi => "causal_gi",
        HiciCausalMode.CausalShift => "causal_shift",
        HiciCausalMode.CausalShiftG => "causal_shift_g",
        HiciCausalMode.CausalGiGOnly => "causal_gi_gonly",
        _ => throw new ArgumentOutOfRangeException(nameof(m)),
    };

    public static HiciCausalMode ParseCausalMode(string s) => s.Trim().ToLowerInvariant() switch
    {
        "none" => HiciCausalMode.None,
        "causal_gi" => HiciCausalMode.CausalGi,
        "causal_shift" => HiciCausalMode.CausalShift,
        "causal_shift_g" => HiciCausalMode.CausalShiftG,
        "causal_gi_gonly" => HiciCausalMode.CausalGiGOnly,
        _ => throw new HiciException(
            $"unknown HiCI causal mode '{s}'; expected none | causal_gi | causal_shift | causal_shift_g | causal_gi_gonly"),
    };

    /// <summary>Checks the values on their own (no host model). Throws <see cref="HiciException"/> naming the field.</summary>
    public HiciConfig Validate(string origin = "hici config")
    {
        void Need(bool ok, string msg) { if (!ok) throw new HiciException($"{origin}: {msg}"); }
        Need(LocalSlots >= 1, $"num_local_slots must be >= 1 (got {LocalSlots})");
        Need(GlobalSlots >= 1, $"global_slots must be >= 1 (got {GlobalSlots})");
        Need(NumHeads >= 1, $"num_heads must be >= 1 (got {NumHeads})");
        Need(BottleneckDim >= 1, $"bottleneck_dim must be >= 1 (got {BottleneckDim})");
        Need(SharedCompressDim >= 1, $"shared_compress_dim must be >= 1 (got {SharedCompressDim})");
        Need(CompressDim >= 1, $"compress_dim must be >= 1 (got {CompressDim})");
        if (UseBottleneck)
            Need(BottleneckDim % NumHeads == 0, $"bottleneck_dim {BottleneckDim} is not divisible by num_heads {NumHeads}");
        if (UseGlobalIntegrator)
        {
            int moduleCompress = UseSharedCompressor ? BottleneckDim : CompressDim;
            Need(moduleCompress % NumHeads == 0,
                $"{(UseSharedCompressor ? "bottleneck_dim (the shared global integrator's compress_dim)" : "compress_dim")} {moduleCompress} is not divisible by num_heads {NumHeads}");
            Need(GlobalWidth % NumHeads == 0, $"global integrator width {GlobalWidth} is not divisible by num_heads {NumHeads}");
            Need(UseLocalConstructor, "use_global_integrator needs use_local_constructor (the integrator summarises the local slots)");
        }
        Need(OutputScaleInit > 0, $"output_scale_init must be > 0 (got {OutputScaleInit})");
        Need(SegmentRatio > 0 && SegmentRatio <= 1, $"segment_ratio must be in (0, 1] (got {SegmentRatio})");
        if (SegmentSize is { } s) Need(s >= 1, $"segment_size must be >= 1 (got {s})");
        if (MixedSegmentRatios is { } mr)
        {
            Need(mr.Count > 0, "mixed_segment_ratios is empty");
            foreach (var r in mr) Need(r > 0 && r <= 1, $"mixed_segment_ratios entries must be in (0, 1] (got {r})");
        }
        return this;
    }

    /// <summary>Checks the values against the host model (hidden size).</summary>
    public HiciConfig ValidateFor(int hiddenSize, string origin = "hici config")
    {
        Validate(origin);
        if (hiddenSize % NumHeads != 0)
            throw new HiciException($"{origin}: hidden size {hiddenSize} is not divisible by num_heads {NumHeads}");
        return this;
    }

    // ---------------------------------------------------------------- JSON

    private static readonly string[] KnownKeys =
    {
        "num_local_slots", "global_slots", "num_heads", "use_bottleneck", "bottleneck_dim", "shared_compress_dim",
        "compress_dim", "use_shared_compressor", "use_local_constructor", "use_global_integrator", "segment_ratio",
        "segment_size", "mixed_segment_ratios", "causal_mode", "output_scale_init", "use_high_norm_init",
        "inference_single_segment", "forward",
    };

    public string ToJson()
    {
        var o = new JsonObject
        {
            ["num_local_slots"] = LocalSlots,
            ["global_slots"] = GlobalSlots,
            ["num_heads"] = NumHeads,
            ["use_bottleneck"] = UseBottleneck,
            ["bottleneck_dim"] = BottleneckDim,
            ["shared_compress_dim"] = SharedCompressDim,
            ["compress_dim"] = CompressDim,
            ["use_shared_compressor"] = UseSharedCompressor,
            ["use_local_constructor"] = UseLocalConstructor,
            ["use_global_integrator"] = UseGlobalIntegrator,
            ["segment_ratio"] = SegmentSize is null ? JsonValue.Create(SegmentRatio) : null,
            ["segment_size"] = SegmentSize is { } s ? JsonValue.Create(s) : null,
            ["mixed_segment_ratios"] = MixedSegmentRatios is { } mr ? new JsonArray(mr.Select(r => (JsonNode)JsonValue.Create(r)!).ToArray()) : null,
            ["causal_mode"] = CausalModeName(CausalMode),
            ["output_scale_init"] = OutputScaleInit,
            ["use_high_norm_init"] = UseHighNormInit,
            ["inference_single_segment"] = InferenceSingleSegment,
            ["forward"] = Forward == HiciForwardKind.Train ? "train" : "inference",
        };
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    public static HiciConfig FromJson(string json, string origin = HiciConfig.FileName)
    {
        // The shared reader: its errors are one line with line and column, lone surrogates included.
        JsonNode? root = Hici.IO.JsonFiles.ParseNode(origin, System.Text.Encoding.UTF8.GetBytes(json));
        if (root is not JsonObject o) throw new HiciException($"{origin}: expected a JSON object");
        foreach (var kv in o)
            if (!KnownKeys.Contains(kv.Key))
                throw new HiciException($"{origin}: unknown key '{kv.Key}' (known: {string.Join(", ", KnownKeys)})");
        if (o.ContainsKey("segment_size") && o["segment_size"] is not null && o.ContainsKey("segment_ratio") && o["segment_ratio"] is not null)
            throw new HiciException($"{origin}: give segment_ratio or segment_size, not both");

        var c = new HiciConfig();
        int Int(string k, int d) => o[k] is null ? d : Get<int>(o, k, origin);
        bool Bool(string k, bool d) => o[k] is null ? d : Get<bool>(o, k, origin);
        double Dbl(string k, double d) => o[k] is null ? d : Get<double>(o, k, origin);
        c = c with
        {
            LocalSlots = Int("num_local_slots", c.LocalSlots),
            GlobalSlots = Int("global_slots", c.GlobalSlots),
            NumHeads = Int("num_heads", c.NumHeads),
            UseBottleneck = Bool("use_bottleneck", c.UseBottleneck),
            BottleneckDim = Int("bottleneck_dim", c.BottleneckDim),
            SharedCompressDim = Int("shared_compress_dim", c.SharedCompressDim),
            CompressDim = Int("compress_dim", c.CompressDim),
            UseSharedCompressor = Bool("use_shared_compressor", c.UseSharedCompressor),
            UseLocalConstructor = Bool("use_local_constructor", c.UseLocalConstructor),
            UseGlobalIntegrator = Bool("use_global_integrator", c.UseGlobalIntegrator),
            SegmentRatio = Dbl("segment_ratio", c.SegmentRatio),
            SegmentSize = o["segment_size"] is null ? null : Get<int>(o, "segment_size", origin),
            CausalMode = o["causal_mode"] is null ? c.CausalMode : ParseModeAt(o, origin),
            OutputScaleInit = Dbl("output_scale_init", c.OutputScaleInit),
            UseHighNormInit = Bool("use_high_norm_init", c.UseHighNormInit),
            InferenceSingleSegment = Bool("inference_single_segment", c.InferenceSingleSegment),
            MixedSegmentRatios = ParseRatios(o, origin),
            Forward = o["forward"] is null ? c.Forward : ParseForward(Get<string>(o, "forward", origin), origin),
        };
        return c.Validate(origin);
    }

    public static HiciForwardKind ParseForward(string s, string origin = "hici") => s.Trim().ToLowerInvariant() switch
    {
        "train" or "training" => HiciForwardKind.Train,
        "inference" or "infer" => HiciForwardKind.Inference,
        _ => throw new HiciException($"{origin}: unknown HiCI forward '{s}'; expected train | inference"),
    };

    private static HiciCausalMode ParseModeAt(JsonObject o, string origin)
    {
        var s = Get<string>(o, "causal_mode", origin);
        try { return ParseCausalMode(s); }
        catch (HiciException e) { throw new HiciException($"{origin}: {e.Message}"); }
    }

    private static IReadOnlyList<double>? ParseRatios(JsonObject o, string origin)
    {
        var n = o["mixed_segment_ratios"];
        if (n is null) return null;
        if (n is JsonValue v && v.TryGetValue<bool>(out var b)) return b ? DefaultMixedRatios : null;
        if (n is not JsonArray a) throw new HiciException($"{origin}: mixed_segment_ratios must be a list of numbers, true, or null");
        var list = new List<double>();
        foreach (var e in a)
        {
            if (e is JsonValue ev && ev.TryGetValue<double>(out var d)) list.Add(d);
            else throw new HiciException($"{origin}: mixed_segment_ratios must hold numbers (got {e?.ToJsonString() ?? "null"})");
        }
        return list;
    }

    private static T Get<T>(JsonObject o, string key, string origin)
    {
        var n = o[key];
        if (n is JsonValue v)
        {
            if (typeof(T) == typeof(int) && v.TryGetValue<double>(out var di) && di == Math.Floor(di) && Math.Abs(di) < int.MaxValue)
                return (T)(object)(int)di;
            if (typeof(T) == typeof(double) && v.TryGetValue<double>(out var dd)) return (T)(object)dd;
            if (typeof(T) == typeof(bool) && v.TryGetValue<bool>(out var bb)) return (T)(object)bb;
            if (typeof(T) == typeof(string) && v.TryGetValue<string>(out var ss)) return (T)(object)ss;
        }
        string want = typeof(T) == typeof(int) ? "an integer" : typeof(T) == typeof(double) ? "a number"
            : typeof(T) == typeof(bool) ? "true or false" : "a string";
        throw new HiciException($"{origin}: '{key}' must be {want} (got {n?.ToJsonString() ?? "null"})");
    }

    public const long MaxFileBytes = 1L << 20;

    public static HiciConfig Load(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, FileName);
        return FromJson(Hici.IO.InputFiles.ReadText(path, MaxFileBytes), path);
    }

    public void Save(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, FileName);
        var bytes = new System.Text.UTF8Encoding(false).GetBytes(ToJson());
        Hici.IO.AtomicFile.Write(path, fs => fs.Write(bytes));
    }

    // ---------------------------------------------------------------- shapes

    /// <summary>
    /// The tensors one layer's HiCI modules hold, with their shapes, as sub-keys under <c>self_attn.</c>
    /// (the reference's LocalConstructorMulti, GlobalIntegratorShared and GlobalIntegrator attributes under self_attn.). Empty shape = 0-dim scalar.
    /// </summary>
    public IReadOnlyList<(string Key, long[] Shape)> ExpectedShapes(int hidden)
    {
        var r = new List<(string, long[])>();
        long H = hidden, M = LocalSlots, K = GlobalSlots, e = LocalWidth(hidden), C = SharedCompressDim, D = GlobalWidth;
        if (UseLocalConstructor)
        {
            r.Add(("local_constructor.memory_slots", new[] { M, H }));
            r.Add(("local_constructor.q_proj.weight", new[] { e, H }));
            r.Add(("local_constructor.k_proj.weight", new[] { e, H }));
            r.Add(("local_constructor.v_proj.weight", new[] { e, H }));
            if (UseBottleneck) r.Add(("local_constructor.o_proj.weight", new[] { H, e }));
        }
        if (UseGlobalIntegrator)
        {
            const string g = "global_integrator.";
            r.Add((g + "global_queries", new[] { K, D }));
            r.Add((g + "expand_scale_param", Array.Empty<long>()));
            if (UseSharedCompressor)
            {
                r.Add((g + "shared_compressor.0.weight", new[] { C, H }));
                r.Add((g + "shared_compressor.1.weight", new[] { C }));
                r.Add((g + "shared_compressor.1.bias", new[] { C }));
                if (HasStatExpand)
                {
                    r.Add((g + "stat_expand.0.weight", new[] { D, C }));
                    r.Add((g + "stat_expand.1.weight", new[] { D }));
                    r.Add((g + "stat_expand.1.bias", new[] { D }));
                }
            }
            else
            {
                for (int i = 0; i < 5; i++)
                {
                    r.Add(($"{g}stat_compressors.{i}.0.weight", new[] { D, H }));
                    r.Add(($"{g}stat_compressors.{i}.1.weight", new[] { D }));
                    r.Add(($"{g}stat_compressors.{i}.1.bias", new[] { D }));
                }
            }
            foreach (var p in new[] { "q_proj", "k_proj", "v_proj", "o_proj" }) r.Add(($"{g}{p}.weight", new[] { D, D }));
            r.Add((g + "expand.weight", new[] { H, D }));
        }
        return r;
    }

    /// <summary>Parameters of one layer's HiCI modules (no bias anywhere; LayerNorm has 2n).</summary>
    public long ParametersPerLayer(int hidden) =>
        ExpectedShapes(hidden).Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));

    /// <summary>
    /// Compares the shapes of the HiCI tensors of one layer with this config. <paramref name="shapeOf"/>
    /// returns a tensor's shape for a sub-key under <c>self_attn.</c> (e.g. "local_constructor.memory_slots"),
    /// or null when absent. Throws a <see cref="HiciException"/> that names the tensor, both shapes and the
    /// config fields involved; returns the list of missing sub-keys (the caller decides about strictness).
    /// </summary>
    public IReadOnlyList<string> CheckShapes(int hidden, Func<string, long[]?> shapeOf, string origin, string keyPrefix = "")
    {
        var missing = new List<string>();
        foreach (var (key, want) in ExpectedShapes(hidden))
        {
            var got = shapeOf(key);
            if (got is null) { missing.Add(keyPrefix + key); continue; }
            if (!got.SequenceEqual(want))
                throw new HiciException(
                    $"{origin}: tensor '{keyPrefix}{key}' has shape {Fmt(got)} but the HiCI config expects {Fmt(want)} " +
                    $"({Describe(hidden)}); pass the HiCI flags or a {FileName} that match the checkpoint");
        }
        return missing;
    }

    private string Describe(int hidden) =>
        $"hidden={hidden}, num_local_slots={LocalSlots}, global_slots={GlobalSlots}, num_heads={NumHeads}, " +
        $"use_bottleneck={(UseBottleneck ? "true" : "false")}, bottleneck_dim={BottleneckDim}, shared_compress_dim={SharedCompressDim}, " +
        $"compress_dim={CompressDim}, use_shared_compressor={(UseSharedCompressor ? "true" : "false")}";

    internal static string Fmt(long[] s) => "[" + string.Join(", ", s.Select(x => x.ToString(CultureInfo.InvariantCulture))) + "]";
}
