using Hici.I3;
using Hici.IO;
using Hici.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.I3;

/// <summary>The python-made i3 fixtures under tests/fixtures/i3 (tools/make_i3_fixtures.py, reference tools/i3_reference.py).</summary>
public static class I3Fixtures
{
    public static readonly string[] Models = ["reset-postrwkv", "carry-final"];

    public static string Dir(string name) => Path.Combine(ModelFixtures.Root, "tests", "fixtures", "i3", name);

    public static I3Model Load(string name) => I3Model.FromPretrained(Dir(name));

    /// <summary>ids [T] and reference log-probs [T, V] (float32 of a float64 computation).</summary>
    public static (long[] Ids, Tensor LogProbs) Expected(string name)
    {
        using var src = SafeTensorsWeightSource.Open(Path.Combine(Dir(name), "expected.safetensors"));
        using var ids = src.Load("ids");
        return (ids.data<long>().ToArray(), src.Load("logprobs"));
    }

    /// <summary>A randomly initialised tiny model (spec init), optionally with a changed config.</summary>
    public static I3Model Random(I3Config? cfg = null, long seed = 1)
    {
        var m = new I3Model(cfg ?? I3Config.Tiny);
        m.Initialize(seed);
        m.eval();
        return m;
    }

    /// <summary>A tiny model whose weights are larger than the init so that every path moves the logits visibly.</summary>
    public static I3Model Lively(I3Config? cfg = null, long seed = 1)
    {
        var m = Random(cfg, seed);
        using var noGrad = torch.no_grad();
        var gen = new torch.Generator((ulong)seed + 100);
        foreach (var (name, p) in m.named_parameters())
            if (p.dim() >= 2) p.normal_(0, 1.0 / Math.Sqrt(p.shape[^1]), gen);
        return m;
    }

    public static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().ToDouble();
}
