using TorchSharp;
using static TorchSharp.torch;

namespace Hici.IO;

/// <summary>
/// A read-only set of named tensors (a safetensors file or shard set, a PyTorch state_dict, or memory).
/// Models load through this, so the loader never cares where the bytes live.
/// </summary>
public interface IWeightSource : IDisposable
{
    IReadOnlyCollection<string> Keys { get; }
    bool Contains(string key);
    long[] Shape(string key);
    ScalarType DType(string key);
    /// <summary>Reads the tensor (converted to <paramref name="dtype"/> if given). The caller owns the result.</summary>
    Tensor Load(string key, ScalarType? dtype = null, Device? device = null);
    /// <summary>Where this came from (a path), for error messages.</summary>
    string Origin { get; }
}
