using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Hici.Evaluation;

namespace Hici.Tests.Evaluation;

/// <summary>
/// The passkey generator against NumPy itself: tests/fixtures/passkey/numpy_reference.json was written by
/// tools/passkey_reference.py (the reference generator run with NumPy 1.24), and the live test re-runs that
/// script when this machine has python3-numpy.
/// </summary>
public class PasskeyPromptTests
{
    private static readonly string FixturePath = Path.Combine(TestPaths.Fixtures, "passkey", "numpy_reference.json");

    private static JsonElement Fixture() => JsonDocument.Parse(File.ReadAllBytes(FixturePath)).RootElement;

    [Fact]
    public void RawMt19937WordsEqualNumpys()
    {
        foreach (var seed in Fixture().GetProperty("raw_uint32").EnumerateObject())
        {
            var rs = new NumpyRandomState(uint.Parse(seed.Name));
            foreach (var w in seed.Value.EnumerateArray()) Assert.Equal(w.GetUInt32(), rs.NextUInt32());
        }
    }

    [Fact]
    public void BoundedRandIntEqualsNumpysLegacyRandint()
    {
        foreach (var c in Fixture().GetProperty("randint").EnumerateArray())
        {
            var rs = new NumpyRandomState(c.GetProperty("seed").GetUInt32());
            long lo = c.GetProperty("low").GetInt64(), hi = c.GetProperty("high").GetInt64();
            foreach (var d in c.GetProperty("draws").EnumerateArray()) Assert.Equal(d.GetInt64(), rs.RandInt(lo, hi));
        }
    }

    [Fact]
    public void EveryReadmeRunPromptEqualsNumpys()
    {
        int n = 0;
        foreach (var row in Fixture().GetProperty("prompts").EnumerateArray())
        {
            var t = PasskeyPrompts.Build(row.GetProperty("target").GetInt32(), row.GetProperty("seed").GetInt32());
            Assert.Equal(row.GetProperty("pass_key").GetInt32(), t.PassKey);
            Assert.Equal(row.GetProperty("n_prefix").GetInt32(), t.NPrefix);
            Assert.Equal(row.GetProperty("chars").GetInt32(), t.Prompt.Length);
            Assert.Equal(row.GetProperty("sha256").GetString(), Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(t.Prompt))));
            n++;
        }
        Assert.Equal(56 * 10, n);
    }

    [Fact]
    public void PromptHasTheReferenceShape()
    {
        var t = PasskeyPrompts.Build(1024, 0);
        var parts = t.Prompt.Split('\n');
        Assert.Equal(5, parts.Length);
        Assert.Equal(PasskeyPrompts.Task, parts[0]);
        Assert.Equal($"The pass key is {t.PassKey}. Remember it. {t.PassKey} is the pass key.", parts[2]);
        Assert.Equal(3072, parts[1].Length + parts[3].Length);          // int(3.75·1024 // 1024 · 1024)
        Assert.StartsWith("The grass is green.", parts[3]);             // the suffix is also cut from the start
        Assert.Equal(PasskeyPrompts.Question, parts[4]);
    }

    [SkippableFact]
    public void PromptsOnlyFileEqualsLiveNumpyOutput()
    {
        const string python = "/usr/bin/python3";
        Skip.If(!File.Exists(python) || PythonTorch.Run(python, "-c \"import numpy\"").ExitCode != 0,
            "python3-numpy is not installed; the committed fixture test covers the generator");
        var dir = Hici.Tests.Cli.CliRunner.TempDir();
        var ours = Path.Combine(dir, "ours.jsonl");
        var r = Hici.Tests.Cli.CliRunner.Run("eval", "passkey", "--prompts-only", "--max-tokens", "3000", "--interval", "700", "--num-tests", "4", "--out", ours);
        Assert.True(r.Code == 0, r.Err);
        var script = Path.Combine(TestPaths.Repo, "tools", "passkey_reference.py");
        var (code, output) = PythonTorch.Run(python, $"{script} --max-tokens 3000 --interval 700 --num-tests 4");
        Assert.True(code == 0, output);
        var theirs = output.TrimEnd('\n').Split('\n');
        var mine = File.ReadAllLines(ours);
        Assert.Equal(theirs.Length, mine.Length);
        for (int i = 0; i < mine.Length; i++)
        {
            using var a = JsonDocument.Parse(theirs[i]);
            using var b = JsonDocument.Parse(mine[i]);
            foreach (var key in new[] { "target", "seed", "pass_key", "prompt" })
                Assert.Equal(a.RootElement.GetProperty(key).ToString(), b.RootElement.GetProperty(key).ToString());
        }
    }
}
