using System.Text.Json;
using Hici.Tests.Hierarchical;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Cli;

/// <summary>
/// <c>hici score</c> on a reference-layout folder (plain base + trainable_params.bin, no hici_config.json:
/// tools/make_hici_reference_folder.py) with the HiCI flags: per-token log-probs vs the python reference ≤ 1e-4.
/// </summary>
[Collection("Console")]
public class ScoreHiciTests
{
    private const double Tol = 1e-4;
    internal static readonly string[] HiciFlags = { "--local-slots", "4", "--global-slots", "2", "--hici-heads", "4", "--bottleneck", "32", "--shared-compress-dim", "16" };

    internal static string Folder(string model) => TrainableParamsTests.Folder(model);
    private static string TrainableOf(string model) => Path.Combine(Folder(model), "trainable_params.bin");

    /// <summary>Runs score with --out and returns (result, per-token log-probs).</summary>
    internal static ((int Code, string Out, string Err) R, double[] Lp) Score(long[] ids, params string[] args)
    {
        var dir = CliRunner.TempDir();
        var idsFile = Path.Combine(dir, "ids.json");
        File.WriteAllText(idsFile, JsonSerializer.Serialize(ids));
        var outFile = Path.Combine(dir, "out.json");
        var r = CliRunner.Run(new[] { "score", "--ids", idsFile, "--out", outFile, "--threads", "1" }.Concat(args).ToArray());
        if (r.Code != 0) return (r, Array.Empty<double>());
        using var doc = JsonDocument.Parse(File.ReadAllText(outFile));
        return (r, doc.RootElement.GetProperty("logprobs").EnumerateArray().Select(e => e.GetDouble()).ToArray());
    }

    /// <summary>max |Δ| between our per-token log-probs and the fixture's table [T, V] at the next ids.</summary>
    internal static double MaxDiff(Tensor table, long[] ids, double[] got)
    {
        Assert.Equal(ids.Length - 1, got.Length);
        var t = table.to(ScalarType.Float32).data<float>().ToArray();
        long v = table.shape[1];
        double m = 0;
        for (int i = 0; i < got.Length; i++) m = Math.Max(m, Math.Abs(got[i] - t[i * v + ids[i + 1]]));
        return m;
    }

    private static long[] Ids(Fixture exp, string key = "input_ids", int? take = null)
    {
        var a = exp[key].data<long>().ToArray();
        return take is { } n ? a.Take(n).ToArray() : a;
    }

    public static readonly TheoryData<string, string, string[]> Cases = new()
    {
        { "qwen3", "lp.full", new[] { "--attention", "full" } },
        { "llama", "lp.full", new string[0] },
        { "qwen3", "lp.train.causal_gi", new[] { "--attention", "hici", "--causal-mode", "causal_gi" } },
        { "qwen3", "lp.train.none", new[] { "--attention", "hici", "--causal-mode", "none", "--hici-forward", "train" } },
        { "llama", "lp.train.causal_shift", new[] { "--attention", "hici", "--causal-mode", "causal_shift" } },
        { "llama", "lp.train.causal_shift_g", new[] { "--attention", "hici", "--causal-mode", "causal_shift_g" } },
        { "qwen3", "lp.train.causal_gi_gonly", new[] { "--attention", "hici", "--causal-mode", "causal_gi_gonly" } },
        { "qwen3", "lp.train.causal_shift.s16", new[] { "--attention", "hici", "--causal-mode", "causal_shift", "--segment-size", "16" } },
        { "llama", "lp.train.causal_shift.s16", new[] { "--attention", "hici", "--causal-mode", "causal_shift", "--segment-ratio", "0.5" } },
        { "qwen3", "lp.inference.causal_gi", new[] { "--attention", "hici", "--causal-mode", "causal_gi", "--hici-forward", "inference" } },
        { "llama", "lp.inference.causal_gi", new[] { "--attention", "hici", "--causal-mode", "causal_gi", "--hici-forward", "inference" } },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ScoreWithTrainableMatchesReference(string model, string key, string[] flags)
    {
        using var scope = NewDisposeScope();
        using var exp = Fixture.Open($"refdir-{model}/expected.safetensors");
        var ids = Ids(exp, take: key.StartsWith("lp.inference") ? 30 : null);
        var (r, lp) = Score(ids, new[] { "--model", Folder(model), "--trainable", TrainableOf(model) }.Concat(HiciFlags).Concat(flags).ToArray());
        Assert.True(r.Code == 0, r.Err);
        double d = MaxDiff(exp[key], ids, lp);
        Assert.True(d <= Tol, $"{model} {key}: max |Δ logprob| {d:E3}");
        Assert.Contains("trainable   ", r.Out);
        Assert.Contains("0 missing, 0 unexpected", r.Out);
        // the folder's trainable_params.bin was asked for, its adapter was not
        Assert.Contains("also holds adapter_config.json; not loaded unless asked", r.Out);
        if (key == "lp.train.none") Assert.Contains("is not a language-model perplexity", r.Out);
        if (key == "lp.train.causal_shift.s16") Assert.Contains("2 segments of 16 tokens", r.Out);
        if (key == "lp.full") Assert.Contains("attention   full (HiCI modules loaded, not run", r.Out);
    }

    public static readonly TheoryData<string, string, string[]> AdapterCases = new()
    {
        { "qwen3", "lp.adapter.full", new[] { "--attention", "full" } },
        { "llama", "lp.adapter.full", new string[0] },
        { "qwen3", "lp.adapter.train.causal_gi", new[] { "--attention", "hici", "--causal-mode", "causal_gi" } },
        { "llama", "lp.adapter.train.causal_gi", new[] { "--attention", "hici", "--causal-mode", "causal_gi" } },
        { "qwen3", "lp.adapter.train.none", new[] { "--attention", "hici", "--causal-mode", "none" } },
        { "llama", "lp.adapter.train.causal_shift", new[] { "--attention", "hici", "--causal-mode", "causal_shift" } },
        { "qwen3", "lp.adapter.inference.causal_gi", new[] { "--attention", "hici", "--causal-mode", "causal_gi", "--hici-forward", "inference" } },
        { "llama", "lp.adapter.inference.causal_gi", new[] { "--attention", "hici", "--causal-mode", "causal_gi", "--hici-forward", "inference" } },
    };

    /// <summary>
    /// The whole reference-layout folder: base + trainable_params.bin + adapter (LoRA on q/k/v/o of the
    /// attention and of the HiCI modules; Llama's under legacy module names), strict.
    /// </summary>
    [Theory]
    [MemberData(nameof(AdapterCases))]
    public void ScoreWithTrainableAndAdapterMatchesReference(string model, string key, string[] flags)
    {
        using var scope = NewDisposeScope();
        using var exp = Fixture.Open($"refdir-{model}/expected.safetensors");
        var ids = Ids(exp, take: key.Contains(".inference.") ? 30 : null);
        var (r, lp) = Score(ids, new[] { "--model", Folder(model), "--trainable", TrainableOf(model), "--adapter", Folder(model), "--strict" }
            .Concat(HiciFlags).Concat(flags).ToArray());
        Assert.True(r.Code == 0, r.Err);
        double d = MaxDiff(exp[key], ids, lp);
        Assert.True(d <= Tol, $"{model} {key}: max |Δ logprob| {d:E3}");
        Assert.Contains("loaded LoRA for 24 modules (16 of them inside the HiCI modules)", r.Out);
        Assert.DoesNotContain("not loaded unless asked", r.Out);
    }

    [Fact]
    public void AdapterHiciLoraWithoutHiciModulesIsIgnoredOrRefusedWhenStrict()
    {
        using var exp = Fixture.Open("refdir-qwen3/expected.safetensors");
        var ids = Ids(exp, "base_input_ids");
        // a plain model (no --trainable, no HiCI flags): the HiCI LoRA has nowhere to go
        var (r, _) = Score(ids, "--model", Folder("qwen3"), "--adapter", Folder("qwen3"));
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("loaded LoRA for 8 modules", r.Out);
        Assert.Contains("ignored (model has no HiCI modules): 32", r.Out);   // 16 modules × A, B
        Assert.Contains("also holds trainable_params.bin;", r.Out);
        var e = CliRunner.AssertOneLineError(Score(ids, "--model", Folder("qwen3"), "--adapter", Folder("qwen3"), "--strict").R);
        Assert.Contains("strict", e);
        e = CliRunner.AssertOneLineError(Score(ids, "--model", Folder("qwen3"), "--adapter", Path.Combine(Folder("qwen3"), "nope")).R);
        Assert.Contains("no such adapter folder", e);
    }

    [Fact]
    public void FolderFilesAreNotLoadedUnlessAsked()
    {
        using var scope = NewDisposeScope();
        using var exp = Fixture.Open("refdir-qwen3/expected.safetensors");
        var ids = Ids(exp, "base_input_ids");
        var (r, lp) = Score(ids, "--model", Folder("qwen3"));
        Assert.True(r.Code == 0, r.Err);
        Assert.Single(r.Out.Split('\n'), l => l.StartsWith("note") && l.Contains("also holds trainable_params.bin and adapter_config.json; not loaded unless asked"));
        Assert.True(MaxDiff(exp["lp.base_full"], ids, lp) <= Tol);
    }

    [Fact]
    public void HiciConfigFileInsteadOfFlags()
    {
        using var scope = NewDisposeScope();
        using var exp = Fixture.Open("refdir-llama/expected.safetensors");
        var dir = CliRunner.TempDir();
        var hc = Path.Combine(dir, "hici_config.json");
        File.WriteAllText(hc, """{"num_local_slots": 4, "global_slots": 2, "num_heads": 4, "bottleneck_dim": 32, "shared_compress_dim": 16, "causal_mode": "causal_gi"}""");
        var ids = Ids(exp);
        var (r, lp) = Score(ids, "--model", Folder("llama"), "--trainable", TrainableOf("llama"), "--hici-config", hc, "--attention", "hici");
        Assert.True(r.Code == 0, r.Err);
        Assert.True(MaxDiff(exp["lp.train.causal_gi"], ids, lp) <= Tol);
        Assert.Contains("36 keys read under current names", r.Out);   // legacy global_memory / hierarchical_aggregator
        Assert.Contains("vocabulary 256 → 258 rows", r.Out);
    }

    [Fact]
    public void UserErrorsAreOneLine()
    {
        using var exp = Fixture.Open("refdir-qwen3/expected.safetensors");
        var ids = Ids(exp);
        string[] Base(params string[] more) => new[] { "--model", Folder("qwen3"), "--trainable", TrainableOf("qwen3") }.Concat(HiciFlags).Concat(more).ToArray();

        // the training forward does not pad: 30 tokens with S = 7
        var e = CliRunner.AssertOneLineError(Score(ids.Take(30).ToArray(), Base("--attention", "hici")).R);
        Assert.Contains("not a multiple of the segment length 7", e);
        // hici attention on a plain base without the HiCI weights
        e = CliRunner.AssertOneLineError(Score(ids, new[] { "--model", Folder("qwen3"), "--attention", "hici" }.Concat(HiciFlags).ToArray()).R);
        Assert.Contains("HiCI attention needs the HiCI weights", e);
        // flags that contradict the checkpoint
        e = CliRunner.AssertOneLineError(Score(ids, new[] { "--model", Folder("qwen3"), "--trainable", TrainableOf("qwen3"), "--local-slots", "8" }).R);
        Assert.Contains("memory_slots", e);
        // --strict with an incomplete file
        var dir = CliRunner.TempDir();
        var partial = Path.Combine(dir, "trainable_params.bin");
        using (var src = Hici.Hierarchical.TrainableParams.Open(TrainableOf("qwen3")))
            Hici.IO.TorchPickleWriter.Save(partial, src.Keys.Where(k => !k.Contains("q_norm")).Select(k => (k, src.Load(k))).ToList());
        e = CliRunner.AssertOneLineError(Score(ids, new[] { "--model", Folder("qwen3"), "--trainable", partial, "--strict" }.Concat(HiciFlags).ToArray()).R);
        Assert.Contains("--strict: 2 missing [model.layers.0.self_attn.q_norm.weight", e);
        // the same without --strict: a report, and the run goes on
        var ok = Score(ids, new[] { "--model", Folder("qwen3"), "--trainable", partial }.Concat(HiciFlags).ToArray()).R;
        Assert.True(ok.Code == 0, ok.Err);
        Assert.Contains("2 missing", ok.Out);
        // ids beyond the trained vocabulary
        e = CliRunner.AssertOneLineError(Score(new long[] { 1, 252 }, Base()).R);
        Assert.Contains("outside the vocabulary [0, 250)", e);
        // a missing file
        e = CliRunner.AssertOneLineError(Score(ids, "--model", Folder("qwen3"), "--trainable", Path.Combine(dir, "nope.bin")).R);
        Assert.Contains("nope.bin: no such file", e);
    }

    [Theory]
    [InlineData("llama", "lp.train.causal_shift", "causal_shift", null)]
    [InlineData("llama", "lp.train.causal_shift_g", "causal_shift_g", null)]
    [InlineData("qwen3", "lp.train.causal_shift.s16", "causal_shift", "16")]
    public void StreamMatchesReference(string model, string key, string mode, string? segment)
    {
        using var scope = NewDisposeScope();
        using var exp = Fixture.Open($"refdir-{model}/expected.safetensors");
        var ids = Ids(exp);
        var flags = new[] { "--model", Folder(model), "--trainable", TrainableOf(model), "--attention", "hici", "--causal-mode", mode, "--stream" }
            .Concat(segment is null ? Array.Empty<string>() : new[] { "--segment-size", segment });
        var (r, lp) = Score(ids, flags.Concat(HiciFlags).ToArray());
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("streamed", r.Out);
        double d = MaxDiff(exp[key], ids, lp);
        Assert.True(d <= Tol, $"{model} {key} streamed: max |Δ logprob| {d:E3}");
    }

    [Theory]
    [InlineData("--stream needs --causal-mode causal_shift", "--attention", "hici", "--causal-mode", "causal_gi")]
    [InlineData("--stream needs --attention hici", "--attention", "full")]
    public void StreamRefusesWhatItCannotDo(string message, params string[] flags)
    {
        using var exp = Fixture.Open("refdir-llama/expected.safetensors");
        var (r, _) = Score(Ids(exp), new[] { "--model", Folder("llama"), "--trainable", TrainableOf("llama"), "--stream" }
            .Concat(HiciFlags).Concat(flags).ToArray());
        Assert.Equal(1, r.Code);
        Assert.Contains("hici: error:", r.Err);
        Assert.Contains(message, r.Err);
    }
}

/// <summary>
/// `hici merge` of the reference-layout folder (base + trainable_params.bin + adapter with HiCI LoRA) gives a
/// folder (model.safetensors + hici.safetensors + hici_config.json) that `hici score` reads without flags and
/// that scores as the unmerged reference.
/// </summary>
[Collection("Console")]
public class MergedFolderScoreTests
{
    [Theory]
    [InlineData("qwen3")]
    [InlineData("llama")]
    public void MergedFolderScoresLikeBaseTrainableAndAdapter(string model)
    {
        using var scope = NewDisposeScope();
        var dir = CliRunner.TempDir();
        var hc = Path.Combine(dir, "hici_config.json");
        File.WriteAllText(hc, """{"num_local_slots": 4, "global_slots": 2, "num_heads": 4, "bottleneck_dim": 32, "shared_compress_dim": 16}""");
        var src = ScoreHiciTests.Folder(model);
        var merged = Path.Combine(dir, "merged");
        var m = CliRunner.Run("merge", "--model", src, "--adapter", src, "--trainable", Path.Combine(src, "trainable_params.bin"),
            "--output", merged, "--hici-config", hc, "--dtype", "fp32", "--strict", "--threads", "1");
        Assert.True(m.Code == 0, m.Err + m.Out);
        Assert.True(File.Exists(Path.Combine(merged, "hici.safetensors")));

        using var exp = Fixture.Open($"refdir-{model}/expected.safetensors");
        var ids = exp["input_ids"].data<long>().ToArray();
        foreach (var (key, flags) in new[]
                 {
                     ("lp.adapter.full", new[] { "--attention", "full" }),
                     ("lp.adapter.train.causal_gi", new[] { "--attention", "hici", "--causal-mode", "causal_gi" }),
                 })
        {
            var (r, lp) = ScoreHiciTests.Score(ids, new[] { "--model", merged }.Concat(flags).ToArray());
            Assert.True(r.Code == 0, r.Err);
            double d = ScoreHiciTests.MaxDiff(exp[key], ids, lp);
            Assert.True(d <= 1e-4, $"merged {model} {key}: max |Δ logprob| {d:E3}");
            Assert.DoesNotContain("HiCI tensors are in no checkpoint", r.Out);
        }
    }
}
