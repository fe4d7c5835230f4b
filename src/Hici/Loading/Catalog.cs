using Hici.Hierarchical;
using Hici.Models;

namespace Hici.Loading;

/// <summary>
/// The built-in attention implementations and model types: adding one is one line here plus its own files.
/// </summary>
public static class Catalog
{
    /// <summary>Attention implementations by name (<see cref="AttentionRegistry"/> starts from these).</summary>
    public static readonly IReadOnlyList<AttentionImplementation> Attention = new AttentionImplementation[]
    {
        new FullAttention(),
        new HiciImplementation(),
        new DualChunk.DualChunkImplementation(),
    };

    /// <summary>
    /// Loaders of model types other than the Llama/Qwen3 decoders (model_type in config.json → loader);
    /// <see cref="ModelLoader"/> starts from these.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, IModelFamily> ModelTypes = new Dictionary<string, IModelFamily>(StringComparer.Ordinal)
    {
        [Hici.I3.I3Config.ModelType] = Hici.I3.I3Family.Instance,
    };
}
