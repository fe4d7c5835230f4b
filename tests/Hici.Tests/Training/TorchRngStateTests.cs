using Hici.Training;
using static TorchSharp.torch;

namespace Hici.Tests.Training;

/// <summary>A saved generator state is checked before libtorch sees it (a rejected one aborts the process).</summary>
public class TorchRngStateTests
{
    static byte[] State()
    {
        using var s = get_rng_state();
        return s.data<byte>().ToArray();
    }

    [Fact]
    public void RealStatesPassAndRestore()
    {
        manual_seed(123);
        var fresh = State();
        TorchRngState.Check(fresh);                          // right after seeding: left = 1, next = 0
        using (rand(1000)) { }
        var drawn = State();
        TorchRngState.Check(drawn);
        using var expected = rand(5);
        using (var t = tensor(drawn, dtype: ScalarType.Byte)) set_rng_state(t);
        using var again = rand(5);
        Assert.True(expected.equal(again).all().item<bool>());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5055)]
    [InlineData(5057)]
    public void WrongSizeIsAUserError(int size)
    {
        var e = Assert.Throws<HiciException>(() => TorchRngState.Check(new byte[size]));
        Assert.Contains($"holds {size} bytes", e.Message);
    }

    [Theory]
    [InlineData(0, 0L)]          // left 0: the next draw would not refill
    [InlineData(-5, 0L)]
    [InlineData(625, 0L)]
    [InlineData(1, 625L)]        // next past the 624 words
    [InlineData(300, 400L)]      // left + next > 625
    public void DamagedPositionIsAUserError(int left, long next)
    {
        manual_seed(1);
        var s = State();
        BitConverter.GetBytes(left).CopyTo(s, 8);
        BitConverter.GetBytes(next).CopyTo(s, 16);
        var e = Assert.Throws<HiciException>(() => TorchRngState.Check(s));
        Assert.Contains("damaged", e.Message);
    }
}
