using System.Text.Json;
using Hici.Profiling;
using Hici.Tests.Cli;
using Hici.Tests.Models;

namespace Hici.Tests.Profiling;

[Collection("Console")]
public class ProfileCommandTests
{
    /// <summary>The "runs" of a profile JSON.</summary>
    static List<JsonElement> Runs(string json) => JsonDocument.Parse(File.ReadAllText(json)).RootElement.GetProperty("runs").EnumerateArray().ToList();

    [Fact]
    public void ProfilesEveryMethodAndWritesJsonAndPng()
    {
        using var dir = new TempDir();
        string json = dir.Sub("p.json"), png = dir.Sub("p.png");
        var r = CliRunner.Run("profile", "--model", ModelFixtures.Dir("qwen3-gqa"), "--lengths", "64,32", "--warmup", "0", "--repeats", "2",
            "--pretraining-length", "24", "--json", json, "--png", png, "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("drawn at random", r.Out);                        // the fixture has no HiCI weights
        var runs = Runs(json);
        Assert.Contains("stream: causal_shift, segments of int(T·", r.Out);   // the fixture's mode is not a shift mode
        Assert.Equal(new[] { "full:32", "full:64", "hici:32", "hici:64", "chunk:32", "chunk:64", "stream:32", "stream:64" },
            runs.Select(x => $"{x.GetProperty("method").GetString()}:{x.GetProperty("tokens").GetInt32()}"));
        foreach (var run in runs)
        {
            Assert.Equal(JsonValueKind.Null, run.GetProperty("error").ValueKind);
            Assert.Equal(2, run.GetProperty("seconds").GetArrayLength());
            Assert.True(run.GetProperty("mean_seconds").GetDouble() > 0);
            if (OperatingSystem.IsLinux()) Assert.True(run.GetProperty("peak_rss_bytes").GetInt64() > 0);
        }
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(png).Take(4).ToArray());
    }

    [Fact]
    public void TrainPassRunsBackward()
    {
        using var dir = new TempDir();
        string json = dir.Sub("p.json");
        var r = CliRunner.Run("profile", "--model", ModelFixtures.Dir("llama-mha-linear"), "--methods", "chunk,full", "--lengths", "40",
            "--pass", "train", "--warmup", "0", "--repeats", "1", "--pretraining-length", "16", "--json", json, "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        var runs = Runs(json);
        Assert.Equal(2, runs.Count);
        Assert.All(runs, x => Assert.Equal(JsonValueKind.Null, x.GetProperty("error").ValueKind));
    }

    [Fact]
    public void StreamRowIsForwardOnlyAndKeepsAFixedSegment()
    {
        using var dir = new TempDir();
        string json = dir.Sub("p.json");
        var r = CliRunner.Run("profile", "--model", ModelFixtures.Dir("qwen3-gqa"), "--methods", "stream", "--lengths", "24,48",
            "--causal-mode", "causal_shift_g", "--segment-size", "8", "--warmup", "0", "--repeats", "1", "--json", json, "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("stream: causal_shift_g, segments of 8 tokens (--segment-size)", r.Out);
        var runs = Runs(json);
        Assert.Equal(2, runs.Count);
        Assert.All(runs, x => Assert.Equal(JsonValueKind.Null, x.GetProperty("error").ValueKind));

        var train = CliRunner.Run("profile", "--model", ModelFixtures.Dir("qwen3-gqa"), "--methods", "full,stream", "--lengths", "24",
            "--pass", "train", "--warmup", "0", "--repeats", "1", "--json", json, "--threads", "1");
        Assert.True(train.Code == 0, train.Err);
        var trainRuns = Runs(json);
        Assert.Equal(JsonValueKind.Null, trainRuns[0].GetProperty("error").ValueKind);
        Assert.Contains("forward pass only", trainRuns[1].GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("--attention", "chunk", "choose the attention implementations with --methods")]
    [InlineData("--methods", "full,sparse", "--methods: 'sparse' is not supported")]
    [InlineData("--lengths", "1024,abc", "--lengths: 'abc' is not a length")]
    [InlineData("--pass", "backward", "--pass: 'backward' is not supported")]
    public void BadOptionsAreOneLineErrors(string flag, string value, string expected)
    {
        var r = CliRunner.Run("profile", "--model", ModelFixtures.Dir("qwen3-gqa"), flag, value);
        Assert.Contains(expected, CliRunner.AssertOneLineError(r));
    }

    [Fact]
    public void PredictionFollowsThePowerLawOfTheLastTwoRuns()
    {
        var rows = new[]
        {
            new ProfileRow("full", 1000, new[] { 1.0 }, 0, 100, null),
            new ProfileRow("full", 2000, new[] { 4.0 }, 0, 200, null),      // time ∝ T², memory ∝ T
        };
        var (seconds, bytes) = Profiler.Predict(rows, 4000);
        Assert.Equal(16.0, seconds!.Value, 6);
        Assert.Equal(400.0, bytes!.Value, 6);
        var (one, _) = Profiler.Predict(rows.Take(1).ToList(), 3000);   // one run: quadratic
        Assert.Equal(9.0, one!.Value, 6);
    }
}
