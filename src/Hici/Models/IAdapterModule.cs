using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>
/// A module some of whose parameters come from an adapter file rather than the base checkpoint (LoRA's A/B).
/// The base weight loader leaves those parameters alone, so an adapter can be attached to a meta-built
/// model before its base weights are loaded.
/// </summary>
public interface IAdapterModule
{
    /// <summary>Parameter names relative to this module, e.g. "lora_A.weight".</summary>
    IEnumerable<string> AdapterParameterNames { get; }
}

public static class AdapterModules
{
    /// <summary>Full paths of every adapter-owned parameter under <paramref name="root"/>.</summary>
    public static HashSet<string> ParameterPaths(nn.Module root)
    {
        var paths = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (path, m) in root.named_modules())
            if (m is IAdapterModule a)
                foreach (var n in a.AdapterParameterNames) paths.Add(path.Length == 0 ? n : $"{path}.{n}");
        return paths;
    }
}
