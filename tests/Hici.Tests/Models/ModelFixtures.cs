using Hici.IO;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Models;

/// <summary>The python-made golden checkpoints under tests/fixtures/models (see tools/make_model_fixtures.py).</summary>
public static class ModelFixtures
{
    public static readonly string[] All = { "llama-mha-linear", "llama3-gqa-tied", "qwen3-gqa", "llama-dynamic" };

    public static string Root { get; } = FindRoot();

    public static string Dir(string name) => Path.Combine(Root, "tests", "fixtures", "models", name);

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "HiCI.slnx"))) return d.FullName;
        throw new InvalidOperationException("cannot find the repository root (HiCI.slnx) above " + AppContext.BaseDirectory);
    }

    public static ModelConfig Config(string name) => HfConfigReader.Read(Dir(name));

    public static CausalLM Load(string name, ScalarType dtype, ModelConfig? config = null)
    {
        using var src = SafeTensorsWeightSource.Open(Dir(name));
        return CausalLM.Load(config ?? Config(name), src, dtype);
    }

    /// <summary>input_ids [T], logprobs_fp32 [T, V], logits_bf16 [T, V] (caller disposes).</summary>
    public static (Tensor Ids, Tensor LogprobsFp32, Tensor LogitsBf16) Expected(string name)
    {
        using var src = SafeTensorsWeightSource.Open(Path.Combine(Dir(name), "expected.safetensors"));
        return (src.Load("input_ids"), src.Load("logprobs_fp32"), src.Load("logits_bf16"));
    }
}

/// <summary>An in-memory weight source for tests that need to break a checkpoint on purpose.</summary>
public sealed class DictionaryWeightSource : IWeightSource
{
    private readonly Dictionary<string, Tensor> _t;
    public DictionaryWeightSource(Dictionary<string, Tensor> tensors, string origin = "memory") { _t = tensors; Origin = origin; }

    /// <summary>Copies every tensor of another source.</summary>
    public static DictionaryWeightSource CopyOf(IWeightSource src) =>
        new(src.Keys.ToDictionary(k => k, k => src.Load(k).DetachFromDisposeScope()), src.Origin);

    public Dictionary<string, Tensor> Tensors => _t;
    public IReadOnlyCollection<string> Keys => _t.Keys;
    public bool Contains(string key) => _t.ContainsKey(key);
    public long[] Shape(string key) => _t[key].shape;
    public ScalarType DType(string key) => _t[key].dtype;
    public Tensor Load(string key, ScalarType? dtype = null, Device? device = null) =>
        _t[key].to(dtype ?? _t[key].dtype, device ?? _t[key].device, copy: true);
    public string Origin { get; }
    public void Dispose() { foreach (var t in _t.Values) t.Dispose(); }
}
