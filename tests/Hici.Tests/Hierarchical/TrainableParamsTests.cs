using Hici.Loading;
using Hici.Hierarchical;
using Hici.IO;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Hierarchical;

/// <summary>
/// The reference's trainable_params.bin over a plain HF base (tools/make_hici_reference_folder.py): vocabulary
/// resize, legacy prefixes, load report, --strict, and writing the file back in the reference's layout.
/// </summary>
public class TrainableParamsTests
{
    private const double Tol = 1e-4;
    /// <summary>The fixture's HiCI hyper-parameters (a foreign checkpoint: no hici_config.json).</summary>
    public static readonly HiciConfig Hc = new() { LocalSlots = 4, GlobalSlots = 2, NumHeads = 4, BottleneckDim = 32, SharedCompressDim = 16 };

    public static string Folder(string model) => Path.GetDirectoryName(Fixture.PathOf($"refdir-{model}/config.json"))!;

    private static LoadedModel Load(string model, AttentionKind kind, HiciConfig hc, string? trainable = null, bool strict = false)
    {
        return ModelLoader.Load(new ModelLoadRequest(Folder(model))
        {
            Attention = TestAttention.Setting(kind, hc), TrainableFile = trainable ?? Path.Combine(Folder(model), TrainableParams.FileName), Strict = strict,
        });
    }

    private static Tensor LogProbs(ICausalLM lm, Tensor ids) => lm.Forward(ids).squeeze(0).to(ScalarType.Float32).log_softmax(-1);

    [Theory]
    [InlineData("qwen3", 250, 0)]
    [InlineData("llama", 258, 36)]
    public void OverlayOnFullAttentionMatchesReferenceAndReports(string model, int vocab, int renamed)
    {
        using var scope = NewDisposeScope();
        using var m = Load(model, AttentionKind.Full, Hc);
        using var exp = Fixture.Open($"refdir-{model}/expected.safetensors");
        Assert.Equal(vocab, m.Transformer.Config.VocabSize);
        Close.Check(exp["lp.full"], LogProbs(m.Model, exp["input_ids"]), Tol, $"refdir {model} full + overlay");

        var r = m.Trainable!;
        Assert.Empty(r.Missing);
        Assert.Empty(r.Unexpected);
        Assert.Equal(renamed, r.Renamed.Count);
        Assert.Equal((256L, (long)vocab), r.VocabResized);
        int norms = model == "qwen3" ? 2 * 4 + 1 : 2 * 2 + 1;
        Assert.Equal(1 + norms + 2 * 18, r.Loaded.Count);
        var lines = r.Lines().ToList();
        Assert.StartsWith($"trainable   {Path.Combine(Folder(model), "trainable_params.bin")}: {r.Loaded.Count} loaded (embedding 1, norms {norms}, HiCI 36), 0 missing, 0 unexpected", lines[0]);
        Assert.Contains(lines, l => l.Contains($"vocabulary 256 → {vocab} rows"));
    }

    [Theory]
    [InlineData("qwen3", "causal_gi")]
    [InlineData("llama", "none")]
    public void OverlayOnHiciAttentionMatchesReference(string model, string mode)
    {
        using var scope = NewDisposeScope();
        using var m = Load(model, AttentionKind.Hici, Hc with { CausalMode = HiciConfig.ParseCausalMode(mode) });
        using var exp = Fixture.Open($"refdir-{model}/expected.safetensors");
        Close.Check(exp["lp.train." + mode], LogProbs(m.Model, exp["input_ids"]), Tol, $"refdir {model} hici {mode} + overlay");
    }

    [Fact]
    public void HiciAttentionWithoutHiciWeightsIsAnError()
    {
        var ex = Assert.Throws<HiciException>(() =>
            ModelLoader.Load(new ModelLoadRequest(Folder("qwen3")) { Attention = TestAttention.Setting(AttentionKind.Hici, Hc) }));
        Assert.Contains("HiCI attention needs the HiCI weights", ex.Message);
        Assert.Contains("--trainable", ex.Message);
    }

    [Fact]
    public void MissingAndUnexpectedAreReportedAndStrictRefusesThem()
    {
        using var scope = NewDisposeScope();
        var dir = Cli.CliRunner.TempDir();
        var path = Path.Combine(dir, "trainable_params.bin");
        using (var src = TrainableParams.Open(Path.Combine(Folder("qwen3"), TrainableParams.FileName)))
        {
            var keep = src.Keys.Where(k => k != "model.norm.weight").Select(k => (k, src.Load(k))).ToList();
            keep.Add(("model.layers.0.self_attn.bogus.weight", ones(3)));
            TorchPickleWriter.Save(path, keep);
        }
        using (var m = Load("qwen3", AttentionKind.Full, Hc, path))
        {
            Assert.Equal(new[] { "model.norm.weight" }, m.Trainable!.Missing);
            Assert.Equal(new[] { "model.layers.0.self_attn.bogus.weight" }, m.Trainable.Unexpected);
            Assert.Contains(m.Trainable.Lines(), l => l.Contains("missing   [model.norm.weight] (kept from the base model)"));
        }
        var ex = Assert.Throws<HiciException>(() => Load("qwen3", AttentionKind.Full, Hc, path, strict: true));
        Assert.Contains("--strict: 1 missing [model.norm.weight]; 1 unexpected [model.layers.0.self_attn.bogus.weight]", ex.Message);
        Assert.StartsWith(path, ex.Message);
    }

    [Fact]
    public void ContradictingHiciConfigNamesTheTensorAndTheFields()
    {
        var ex = Assert.Throws<HiciException>(() => Load("qwen3", AttentionKind.Full, Hc with { LocalSlots = 8 }));
        Assert.Contains("local_constructor.memory_slots", ex.Message);
        Assert.Contains("num_local_slots=8", ex.Message);
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("llama")]
    public void WritesTheReferenceLayout(string model)
    {
        using var scope = NewDisposeScope();
        var dir = Cli.CliRunner.TempDir();
        var written = Path.Combine(dir, "trainable_params.bin");
        var original = Path.Combine(Folder(model), TrainableParams.FileName);
        using (var m = Load(model, AttentionKind.Full, Hc))
        {
            TrainableParams.Save(m.Transformer, written);
            Assert.Equal(TrainableParams.ReferenceKeys(m.Transformer), TrainableParams.ReferenceKeys(m.Transformer).Distinct());
        }
        // our reader: same keys (current names) and values as the reference's file
        using (var a = TrainableParams.Open(written))
        using (var b = TrainableParams.Open(original))
        {
            Assert.Equal(b.Keys.OrderBy(k => k, StringComparer.Ordinal), a.Keys.OrderBy(k => k, StringComparer.Ordinal));
            Assert.Empty(a.Renamed);
            foreach (var k in b.Keys)
            {
                Assert.Equal(ScalarType.Float32, a.DType(k));
                Assert.True(a.Load(k).allclose(b.Load(k), 0, 0), k);
            }
        }
        // reloading our file gives the same model
        using (var m2 = Load(model, AttentionKind.Full, Hc, written))
        using (var exp = Fixture.Open($"refdir-{model}/expected.safetensors"))
            Close.Check(exp["lp.full"], LogProbs(m2.Model, exp["input_ids"]), Tol, $"refdir {model} reloaded from our trainable_params.bin");
    }

    /// <summary>Real torch.load(weights_only=True) reads what we write as it reads the reference's file.</summary>
    [PythonTorchTheory]
    [InlineData("qwen3")]
    [InlineData("llama")]
    public void RealTorchLoadReadsTheWrittenReferenceLayout(string model)
    {
        using var scope = NewDisposeScope();
        var written = Path.Combine(Cli.CliRunner.TempDir(), "trainable_params.bin");
        using (var m = Load(model, AttentionKind.Full, Hc)) TrainableParams.Save(m.Transformer, written);
        var original = Path.Combine(Folder(model), TrainableParams.FileName);
        var r = PythonTorch.Run(PythonTorch.Path!, $"\"{Path.Combine(RepoRoot(), "tools", "check_reference_trainable.py")}\" \"{written}\" \"{original}\"");
        Assert.True(r.ExitCode == 0, r.Output);
        Assert.Contains("ok:", r.Output);
    }

    internal static string RepoRoot() => Path.GetFullPath(Path.Combine(Folder("qwen3"), "..", "..", "..", ".."));
}
