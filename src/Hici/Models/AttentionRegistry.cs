namespace Hici.Models;

/// <summary>
/// Attention implementations by name. The built-in ones are listed in <see cref="Hici.Loading.Catalog"/>;
/// a library user may <see cref="Register"/> more before loading a model.
/// </summary>
public static class AttentionRegistry
{
    private static readonly object Gate = new();
    private static readonly Dictionary<string, AttentionImplementation> ByName = Hici.Loading.Catalog.Attention
        .ToDictionary(a => a.Name, StringComparer.Ordinal);

    /// <summary>Adds an implementation; its name must be new.</summary>
    public static void Register(AttentionImplementation impl)
    {
        lock (Gate)
        {
            if (!ByName.TryAdd(impl.Name, impl)) throw new ArgumentException($"attention '{impl.Name}' is already registered");
        }
    }

    public static IReadOnlyList<AttentionImplementation> All
    {
        get { lock (Gate) return ByName.Values.OrderBy(a => a.Name, StringComparer.Ordinal).ToArray(); }
    }

    public static IReadOnlyList<string> Names => All.Select(a => a.Name).ToArray();

    /// <summary>The implementation named <paramref name="name"/>, or a HiciException listing the known names.</summary>
    public static AttentionImplementation Get(string name)
    {
        lock (Gate)
        {
            if (ByName.TryGetValue(name, out var impl)) return impl;
        }
        throw new HiciException($"attention '{name}' is not available in this build (known: {string.Join(", ", Names)})");
    }

    /// <summary>The implementation the config names.</summary>
    public static AttentionImplementation For(ModelConfig cfg) => Get(cfg.Attention.Name);

    /// <summary>True for a key of any implementation's extra modules (ignorable when the model does not hold them).</summary>
    public static bool IsExtraModuleKey(string key) => All.Any(a => a.OwnsKey(key));
}
