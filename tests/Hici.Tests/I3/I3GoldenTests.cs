using Hici.I3;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Hici.Tests.I3;

/// <summary>
/// The whole i3 stream against tools/i3_reference.py (float64, WKV from its definition, explicit attention):
/// 70 tokens = 4 full chunks + 6, so the history fills, reaches capacity (M = 2) and drops its oldest entry.
/// </summary>
public class I3GoldenTests(ITestOutputHelper output)
{
    public static TheoryData<string> Names => new(I3Fixtures.Models);

    [Theory, MemberData(nameof(Names))]
    public void OneCallMatchesReference(string name)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var m = I3Fixtures.Load(name);
        var (ids, expected) = I3Fixtures.Expected(name);
        using var state = m.NewStream();
        var lp = nn.functional.log_softmax(m.Forward(torch.tensor(ids), state)[0], -1);
        double diff = I3Fixtures.MaxDiff(lp, expected);
        output.WriteLine($"{name}: max |Δ logprob| = {diff:E2}");
        Assert.True(diff <= 1e-4, $"{name}: {diff:E3} > 1e-4");
        Assert.Equal(m.Config.MaxCompressedChunks, state.History.Count);
    }

    /// <summary>Token-by-token streaming (recurrent WKV, chunk KV cache, memory K/V cache) gives the same log-probs.</summary>
    [Theory, MemberData(nameof(Names))]
    public void TokenByTokenMatchesReference(string name)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var m = I3Fixtures.Load(name);
        var (ids, expected) = I3Fixtures.Expected(name);
        using var state = m.NewStream();
        var rows = ids.Select(t => m.Forward(torch.tensor(new[] { t }), state)[0]).ToArray();
        var lp = nn.functional.log_softmax(torch.cat(rows, 0), -1);
        double diff = I3Fixtures.MaxDiff(lp, expected);
        output.WriteLine($"{name}: token by token max |Δ logprob| = {diff:E2}");
        Assert.True(diff <= 1e-4, $"{name}: {diff:E3} > 1e-4");
    }

    /// <summary>Pieces of random length (crossing boundaries inside Forward) give the same log-probs.</summary>
    [Theory, MemberData(nameof(Names))]
    public void RandomSplitsMatchReference(string name)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var m = I3Fixtures.Load(name);
        var (ids, expected) = I3Fixtures.Expected(name);
        var rng = new Random(5);
        using var state = m.NewStream();
        var rows = new List<Tensor>();
        for (int pos = 0; pos < ids.Length;)
        {
            int n = Math.Min(ids.Length - pos, rng.Next(1, 23));
            rows.Add(m.Forward(torch.tensor(ids[pos..(pos + n)]), state)[0]);
            pos += n;
        }
        var lp = nn.functional.log_softmax(torch.cat(rows, 0), -1);
        double diff = I3Fixtures.MaxDiff(lp, expected);
        Assert.True(diff <= 1e-4, $"{name}: {diff:E3} > 1e-4");
    }
}
