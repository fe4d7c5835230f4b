using System.Text.Json;
using Hici.Tests.Hierarchical;
using static TorchSharp.torch;

namespace Hici.Tests.Cli;

/// <summary>
/// `hici generate` with every model the loader loads: a reference-layout folder (plain base + trainable_params.bin
/// + PEFT adapter, tools/make_hici_reference_folder.py) and the folder `hici merge` makes of it, with full and
/// HiCI attention, prompt as --ids, result as --out. The first generated token is the argmax of the python
/// reference's log-probs at the prompt's last position (the prefill is one forward over the prompt); merged and
/// unmerged give the same tokens. (The decode steps are pinned in Hierarchical/GenerationTests.)
/// </summary>
[Collection("Console")]
public class GenerateHiciTests
{
    private sealed record Output(long[] PromptIds, long[] Ids, string? Text);

    private static Output Generate(long[] prompt, params string[] args)
    {
        var dir = CliRunner.TempDir();
        var idsFile = Path.Combine(dir, "prompt.json");
        File.WriteAllText(idsFile, JsonSerializer.Serialize(prompt));
        var outFile = Path.Combine(dir, "out.json");
        var r = CliRunner.Run(new[] { "generate", "--ids", idsFile, "--out", outFile, "--max-new-tokens", "4", "--threads", "1" }.Concat(args).ToArray());
        Assert.True(r.Code == 0, r.Err + r.Out);
        using var doc = JsonDocument.Parse(File.ReadAllText(outFile));
        var root = doc.RootElement;
        long[] Ids(string name) => root.GetProperty(name).EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var text = root.GetProperty("text");
        return new Output(Ids("prompt_ids"), Ids("ids"), text.ValueKind == JsonValueKind.Null ? null : text.GetString());
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("llama")]
    public void MergedFolderAndBaseTrainableAdapterGenerateTheReferenceToken(string model)
    {
        using var scope = NewDisposeScope();
        var src = ScoreHiciTests.Folder(model);
        var dir = CliRunner.TempDir();
        var hc = Path.Combine(dir, "hici_config.json");
        File.WriteAllText(hc, """{"num_local_slots": 4, "global_slots": 2, "num_heads": 4, "bottleneck_dim": 32, "shared_compress_dim": 16}""");
        var merged = Path.Combine(dir, "merged");
        var m = CliRunner.Run("merge", "--model", src, "--adapter", src, "--trainable", Path.Combine(src, "trainable_params.bin"),
            "--output", merged, "--hici-config", hc, "--dtype", "fp32", "--strict", "--threads", "1");
        Assert.True(m.Code == 0, m.Err + m.Out);

        using var exp = Fixture.Open($"refdir-{model}/expected.safetensors");
        var prompt = exp["input_ids"].data<long>().ToArray();
        foreach (var (key, flags) in new[]
                 {
                     ("lp.adapter.full", new[] { "--attention", "full" }),
                     ("lp.adapter.train.causal_gi", new[] { "--attention", "hici", "--causal-mode", "causal_gi" }),
                 })
        {
            long expectedFirst = exp[key][prompt.Length - 1].argmax().item<long>();
            var unmerged = Generate(prompt, new[] { "--model", src, "--trainable", Path.Combine(src, "trainable_params.bin"), "--adapter", src, "--strict" }
                .Concat(flags).Concat(ScoreHiciTests.HiciFlags).ToArray());
            var fromMerged = Generate(prompt, new[] { "--model", merged }.Concat(flags).ToArray());
            Assert.Equal(prompt, unmerged.PromptIds);
            Assert.Null(unmerged.Text);                                   // no tokenizer in these folders
            Assert.NotEmpty(unmerged.Ids);
            Assert.Equal(expectedFirst, unmerged.Ids[0]);
            Assert.Equal(unmerged.Ids, fromMerged.Ids);
        }
    }

    [Fact]
    public void BadPromptArgumentsAreOneLineErrors()
    {
        var src = ScoreHiciTests.Folder("qwen3");
        Assert.Contains("exactly one of --prompt", CliRunner.AssertOneLineError(CliRunner.Run("generate", "--model", src)));
        var ids = Path.Combine(CliRunner.TempDir(), "ids.json");
        File.WriteAllText(ids, "[1, 999]");
        Assert.Contains("outside the vocabulary", CliRunner.AssertOneLineError(CliRunner.Run("generate", "--model", src, "--ids", ids)));
        File.WriteAllText(ids, "[1, 2]");
        Assert.Contains("--chat goes with --prompt", CliRunner.AssertOneLineError(CliRunner.Run("generate", "--model", src, "--ids", ids, "--chat")));
        Assert.Contains("is a folder", CliRunner.AssertOneLineError(CliRunner.Run("generate", "--model", src, "--ids", ids, "--out", src)));
    }
}
