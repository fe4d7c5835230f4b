using Hici.Runtime;

namespace Hici.Tests;

public class RuntimeTests
{
    [Fact]
    public void NativeBackendLoads()
    {
        var st = TorchRuntime.Probe();
        Assert.True(st.Loaded, st.Error + " " + st.Advice);
        Assert.StartsWith("2.10", st.LibTorchVersion);
    }
}
