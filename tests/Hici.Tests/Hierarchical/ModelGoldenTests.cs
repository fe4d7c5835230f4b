using Hici.Hierarchical;
using Hici.IO;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;


namespace Hici.Tests.Hierarchical;

/// <summary>
/// Tiny Qwen3 (GQA, QK-norm) and Llama (MHA, linear RoPE) decoders with HiCI in every layer, log-probs vs
/// tools/make_hici_model_fixtures.py, fp32 max |Δ| ≤ 1e-4, for every mode and both forwards.
/// </summary>
public class ModelGoldenTests
{
    private const double Tol = 1e-4;
    private static readonly string[] Modes = { "none", "causal_gi", "causal_shift", "causal_shift_g", "causal_gi_gonly" };

    public static readonly TheoryData<string, string, string> Cases = Build();

    private static TheoryData<string, string, string> Build()
    {
        var d = new TheoryData<string, string, string>();
        foreach (var model in new[] { "qwen3", "llama" })
            foreach (var fwd in new[] { "train", "inference" })
                foreach (var mode in Modes)
                    d.Add(model, fwd, mode);
        return d;
    }

    private static string Folder(string model) => Path.GetDirectoryName(Fixture.PathOf($"model-{model}/config.json"))!;

    private static ModelConfig Config(string model, AttentionKind kind, HiciConfig? hici) =>
        HfConfigReader.Read(Path.Combine(Folder(model), "config.json")) with { Attention = TestAttention.Setting(kind, hici) };

    private static Tensor LogProbs(CausalLM lm, Tensor ids) =>
        lm.Forward(ids).squeeze(0).to(ScalarType.Float32).log_softmax(-1);

    [Theory]
    [MemberData(nameof(Cases))]
    public void LogProbsMatchReference(string model, string forward, string mode)
    {
        using var scope = NewDisposeScope();
        var hici = HiciConfig.Load(Folder(model)) with
        {
            CausalMode = HiciConfig.ParseCausalMode(mode),
            Forward = HiciConfig.ParseForward(forward),
        };
        using var src = SafeTensorsWeightSource.Open(Path.Combine(Folder(model), "model.safetensors"));
        using var lm = CausalLM.Load(Config(model, AttentionKind.Hici, hici), src, ScalarType.Float32);
        Assert.IsType<HiciAttention>(lm.model.layers[0].self_attn);
        using var exp = Fixture.Open($"model-{model}/expected_{forward}.safetensors");
        Close.Check(exp["lp." + mode], LogProbs(lm, exp["input_ids"]), Tol, $"model {model} {forward} {mode} log-probs");
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("llama")]
    public void FullAttentionWithHiciWeightsLoadedButUnused(string model)
    {
        using var scope = NewDisposeScope();
        using var src = SafeTensorsWeightSource.Open(Path.Combine(Folder(model), "model.safetensors"));
        using var exp = Fixture.Open($"model-{model}/expected_train.safetensors");
        // with a HiCI config: modules held and loaded, not run
        using (var lm = CausalLM.Load(Config(model, AttentionKind.Full, HiciConfig.Load(Folder(model))), src, ScalarType.Float32))
        {
            var attn = Assert.IsType<HiciAttention>(lm.model.layers[1].self_attn);
            Assert.False(attn.RunHici);
            Assert.False(attn.local_constructor!.MemorySlots.is_meta);
            Close.Check(exp["lp.full"], LogProbs(lm, exp["input_ids"]), Tol, $"model {model} full (HiCI loaded, unused)");
        }
        // without one: the HiCI tensors are skipped and reported as ignored
        var lm2 = CausalLM.Create(Config(model, AttentionKind.Full, null), ScalarType.Float32);
        var report = lm2.LoadWeights(src);
        Assert.Contains(report.Ignored, k => k.Contains(".local_constructor."));
        Assert.IsNotType<HiciAttention>(lm2.model.layers[0].self_attn);
        Close.Check(exp["lp.full"], LogProbs(lm2, exp["input_ids"]), Tol, $"model {model} full (no HiCI config)");
        lm2.Dispose();
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("llama")]
    public void DecodeWithKvCacheAfterHiciPrefill(string model)
    {
        using var scope = NewDisposeScope();
        var hici = HiciConfig.Load(Folder(model)) with { CausalMode = HiciCausalMode.CausalGi, Forward = HiciForwardKind.Inference };
        using var src = SafeTensorsWeightSource.Open(Path.Combine(Folder(model), "model.safetensors"));
        using var lm = CausalLM.Load(Config(model, AttentionKind.Hici, hici), src, ScalarType.Float32);
        using var exp = Fixture.Open($"model-{model}/expected_inference.safetensors");
        var ids = exp["input_ids"];
        using var cache = lm.NewCache(64);
        lm.Forward(ids.narrow(0, 0, 24), cache);
        var steps = new List<Tensor>();
        for (int j = 0; j < 2; j++)
            steps.Add(lm.Forward(ids.narrow(0, 24 + j, 1), cache).squeeze(0).to(ScalarType.Float32).log_softmax(-1));
        Close.Check(exp["lp.decode"], cat(steps.ToArray(), 0), Tol, $"model {model} decode after HiCI prefill");
    }

    [Fact]
    public void LegacyPrefixesLoadAndContradictingConfigIsAClearError()
    {
        using var scope = NewDisposeScope();
        const string model = "llama";
        using var src = SafeTensorsWeightSource.Open(Path.Combine(Folder(model), "model.safetensors"));
        var hici = HiciConfig.Load(Folder(model)) with { CausalMode = HiciCausalMode.CausalGi };
        using var exp = Fixture.Open($"model-{model}/expected_train.safetensors");

        // the same checkpoint with global_memory / hierarchical_aggregator names
        using var legacy = new RenamedSource(src, k => k.Replace(".local_constructor.", ".global_memory.").Replace(".global_integrator.", ".hierarchical_aggregator."));
        Assert.Contains(legacy.Keys, k => k.Contains(".global_memory."));
        using (var lm = CausalLM.Load(Config(model, AttentionKind.Hici, hici), legacy, ScalarType.Float32))
            Close.Check(exp["lp.causal_gi"], LogProbs(lm, exp["input_ids"]), Tol, "legacy prefixes");

        // M = 8 in the config, 4 in the file
        var wrong = hici with { LocalSlots = 8 };
        var ex = Assert.Throws<HiciException>(() => CausalLM.Load(Config(model, AttentionKind.Hici, wrong), src, ScalarType.Float32));
        Assert.Contains("local_constructor.memory_slots", ex.Message);
        Assert.Contains("num_local_slots=8", ex.Message);

        // independent compressors in the config, shared in the file
        var indep = hici with { UseSharedCompressor = false, CompressDim = 32 };
        ex = Assert.Throws<HiciException>(() => CausalLM.Load(Config(model, AttentionKind.Hici, indep), src, ScalarType.Float32));
        Assert.Contains("global_integrator", ex.Message);

        // attention hici without a HiCI config
        ex = Assert.Throws<HiciException>(() => CausalLM.Create(Config(model, AttentionKind.Hici, null), ScalarType.Float32));
        Assert.Contains("HiCI config", ex.Message);
    }

    /// <summary>A view of a source with renamed keys (to fake a legacy-named checkpoint).</summary>
    private sealed class RenamedSource : IWeightSource
    {
        private readonly IWeightSource _inner;
        private readonly Dictionary<string, string> _map;
        public RenamedSource(IWeightSource inner, Func<string, string> rename)
        {
            _inner = inner;
            _map = inner.Keys.ToDictionary(rename, k => k);
        }
        public IReadOnlyCollection<string> Keys => _map.Keys;
        public bool Contains(string key) => _map.ContainsKey(key);
        public long[] Shape(string key) => _inner.Shape(_map[key]);
        public ScalarType DType(string key) => _inner.DType(_map[key]);
        public Tensor Load(string key, ScalarType? dtype = null, Device? device = null) => _inner.Load(_map[key], dtype, device);
        public string Origin => _inner.Origin + " (renamed)";
        public void Dispose() { }
    }
}

public class HiciRuntimeTests
{
    [Theory]
    [InlineData("qwen3", "causal_gi", "train")]
    [InlineData("llama", "causal_shift", "inference")]
    public void Bf16ModelRunsAndStaysCloseToFp32Reference(string model, string mode, string forward)
    {
        using var scope = NewDisposeScope();
        var folder = Path.GetDirectoryName(Fixture.PathOf($"model-{model}/config.json"))!;
        var hici = HiciConfig.Load(folder) with { CausalMode = HiciConfig.ParseCausalMode(mode), Forward = HiciConfig.ParseForward(forward) };
        var cfg = HfConfigReader.Read(Path.Combine(folder, "config.json")) with { Attention = TestAttention.Setting(AttentionKind.Hici, hici) };
        using var src = SafeTensorsWeightSource.Open(Path.Combine(folder, "model.safetensors"));
        using var lm = CausalLM.Load(cfg, src, ScalarType.BFloat16);
        using var exp = Fixture.Open($"model-{model}/expected_{forward}.safetensors");
        var lp = lm.Forward(exp["input_ids"]).squeeze(0).to(ScalarType.Float32).log_softmax(-1);
        var d = (lp - exp["lp." + mode]).abs().max().item<float>();
        Assert.False(float.IsNaN(d));
        Assert.True(d < 0.5, $"bf16 vs fp32 reference: max |Δ log-prob| = {d}");
    }

    [Fact]
    public void GradientsReachEveryHiciParameter()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(3);
        var cfg = new HiciConfig { LocalSlots = 4, GlobalSlots = 2, NumHeads = 4, BottleneckDim = 32, SharedCompressDim = 16, CausalMode = HiciCausalMode.CausalGi };
        const int h = 64, nq = 4, nkv = 2, d = 16, t = 32;
        using var lc = new LocalConstructor(h, cfg);
        using var gi = new GlobalIntegratorShared(h, cfg, randn(50, h));
        var wk = randn(nkv * d, h).requires_grad_(true);
        var wv = randn(nkv * d, h).requires_grad_(true);
        var core = new HiciAttentionCore(cfg, lc, gi);
        var x = randn(2, t, h);
        var q = randn(2, nq, t, d);
        var k = randn(2, nkv, t, d);
        var v = randn(2, nkv, t, d);
        var o = core.TrainingForward(x, null, q, k, v, m => m.matmul(wk.t()), m => m.matmul(wv.t()), training: true);
        o.pow(2).sum().backward();
        foreach (var (name, p) in lc.named_parameters().Concat(gi.named_parameters()))
        {
            Assert.NotNull(p.grad);
            Assert.True(p.grad!.abs().sum().item<float>() > 0, $"{name} got a zero gradient");
        }
        Assert.True(wk.grad!.abs().sum().item<float>() > 0);
    }
}
