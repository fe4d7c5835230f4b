using Hici.Hierarchical;
using Hici.IO;
using Hici.Tests.Hierarchical;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Tests.Cli;

/// <summary>`hici convert-trainable`: reference trainable_params.bin ⇄ safetensors, keys normalised, values kept bit for bit.</summary>
[Collection("Console")]
public class ConvertTrainableCommandTests : IDisposable
{
    private readonly string _dir = CliRunner.TempDir();
    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    // The Llama reference-layout fixture (python torch.save) uses the legacy global_memory / hierarchical_aggregator names.
    private static string Original => Path.Combine(TrainableParamsTests.RepoRoot(), "tests", "fixtures", "hici", "refdir-llama", "trainable_params.bin");

    /// <summary>The python original → safetensors → reference layout again, through the CLI.</summary>
    private (string St, string Bin) ConvertThereAndBack()
    {
        var st = Path.Combine(_dir, "trainable.safetensors");
        var bin = Path.Combine(_dir, "trainable_params.bin");
        var r1 = CliRunner.Run("convert-trainable", "--input", Original, "--output", st);
        Assert.True(r1.Code == 0, r1.Err);
        Assert.Contains("renamed", r1.Out);
        var r2 = CliRunner.Run("convert-trainable", "--input", st, "--output", bin, "--format", "reference");
        Assert.True(r2.Code == 0, r2.Err);
        return (st, bin);
    }

    [Fact]
    public void BinToSafetensorsAndBackKeepsEveryValue()
    {
        var (st, bin) = ConvertThereAndBack();

        using var want = TrainableParams.Open(Original);                  // normalised view of the python file
        Assert.NotEmpty(want.Renamed);
        using var gotSt = SafeTensorsWeightSource.Open(st);
        using var gotBin = TorchPickleWeightSource.Open(bin);
        Assert.Equal(want.Keys.OrderBy(k => k, StringComparer.Ordinal), gotSt.Keys.OrderBy(k => k, StringComparer.Ordinal));
        Assert.Equal(want.Keys.OrderBy(k => k, StringComparer.Ordinal), gotBin.Keys.OrderBy(k => k, StringComparer.Ordinal));
        Assert.DoesNotContain(gotBin.Keys, k => k.Contains("global_memory") || k.Contains("hierarchical_aggregator"));
        foreach (var k in want.Keys)
        {
            using var scope = NewDisposeScope();
            var w = want.Load(k, ScalarType.Float32);
            Assert.True(gotSt.Load(k).allclose(w, 0, 0), k);
            Assert.Equal(ScalarType.Float32, gotBin.DType(k));
            Assert.True(gotBin.Load(k).allclose(w, 0, 0), k);
        }
    }

    /// <summary>The reference side: real torch.load(weights_only=True) reads our converted file as the python original.</summary>
    [PythonTorchFact]
    public void RealTorchLoadReadsTheConvertedFile()
    {
        var (_, bin) = ConvertThereAndBack();
        var r = PythonTorch.Run(PythonTorch.Path!, $"\"{Path.Combine(TrainableParamsTests.RepoRoot(), "tools", "check_reference_trainable.py")}\" \"{bin}\" \"{Original}\"");
        Assert.True(r.ExitCode == 0, r.Output);
    }

    [Fact]
    public void BadArgumentsAreOneLineErrors()
    {
        Assert.Contains(".safetensors", CliRunner.AssertOneLineError(CliRunner.Run("convert-trainable", "--input", Original, "--output", Path.Combine(_dir, "x.safetensors"), "--format", "reference")));
        Assert.Contains("--format", CliRunner.AssertOneLineError(CliRunner.Run("convert-trainable", "--input", Original, "--output", Path.Combine(_dir, "x.bin"), "--format", "pickle")));
        Assert.Contains("no such file", CliRunner.AssertOneLineError(CliRunner.Run("convert-trainable", "--input", Path.Combine(_dir, "missing.bin"), "--output", Path.Combine(_dir, "y.bin"))));
        Assert.Contains("must differ", CliRunner.AssertOneLineError(CliRunner.Run("convert-trainable", "--input", Original, "--output", Original)));
        var model = Path.Combine(TrainableParamsTests.RepoRoot(), "tests", "fixtures", "hici", "refdir-llama", "model.safetensors");
        Assert.Contains("not a trainable-parameter file", CliRunner.AssertOneLineError(CliRunner.Run("convert-trainable", "--input", model, "--output", Path.Combine(_dir, "m.bin"))));
        var evil = Path.Combine(TrainableParamsTests.RepoRoot(), "tests", "fixtures", "io", "pickle", "hostile", "evil_os_system.bin");
        var line = CliRunner.AssertOneLineError(CliRunner.Run("convert-trainable", "--input", evil, "--output", Path.Combine(_dir, "z.bin")));
        Assert.Contains("system", line);
        Assert.False(File.Exists(Path.Combine(_dir, "z.bin")));
    }
}
