using Hici.IO;
using Hici.Lora;
using Hici.Models;
using Hici.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Lora;

/// <summary>The python-made adapters under tests/fixtures/lora (see tools/make_lora_fixtures.py).</summary>
public static class LoraFixtures
{
    public static readonly string[] All = { "qwen3-gqa", "llama-mha-linear" };

    public static string Dir(string name) => Path.Combine(ModelFixtures.Root, "tests", "fixtures", "lora", name);
    public static string Adapter(string name) => Path.Combine(Dir(name), "adapter");

    /// <summary>A tensor of expected.safetensors (caller disposes).</summary>
    public static Tensor Expected(string name, string key)
    {
        using var src = SafeTensorsWeightSource.Open(Path.Combine(Dir(name), "expected.safetensors"));
        return src.Load(key);
    }

    /// <summary>The base model in eval mode with the fixture adapter applied (unmerged).</summary>
    public static CausalLM WithAdapter(string name, ScalarType dtype = ScalarType.Float32, string? adapterDir = null, PeftLoadOptions? options = null)
    {
        var lm = ModelFixtures.Load(name, dtype);
        lm.eval();
        using var adapter = PeftAdapter.Open(adapterDir ?? Adapter(name));
        adapter.ApplyTo(lm, options: options);
        LoraApplier.SetTrainable(lm, false);
        return lm;
    }

    public static double MaxLogprobDiff(CausalLM lm, Tensor ids, Tensor expected)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var lp = nn.functional.log_softmax(lm.Forward(ids)[0].to(ScalarType.Float32), -1);
        return (lp - expected).abs().max().item<float>();
    }

    /// <summary>Copies a fixture adapter folder so a test can break it.</summary>
    public static string CopyAdapter(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, System.IO.Path.Combine(to, System.IO.Path.GetFileName(f)));
        return to;
    }
}
