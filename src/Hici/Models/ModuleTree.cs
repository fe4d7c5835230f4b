using System.Reflection;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>
/// Path-based access to a module tree ("model.layers.0.self_attn.q_proj.weight"), used by the loader to
/// swap meta placeholders for real tensors and by adapters (LoRA) to swap submodules.
/// </summary>
public static class ModuleTree
{
    /// <summary>The module at a dotted path ("" = root).</summary>
    public static nn.Module Find(nn.Module root, string path)
    {
        var m = root;
        if (path.Length == 0) return m;
        foreach (var part in path.Split('.'))
        {
            var next = m.named_children().FirstOrDefault(c => c.name == part).module;
            m = next ?? throw new InvalidOperationException($"no submodule '{part}' on the way to '{path}'");
        }
        return m;
    }

    /// <summary>
    /// Replaces the parameter at <paramref name="path"/>. The owning module must expose it as a public
    /// settable property of that name (TorchSharp's Linear and our RmsNorm/TokenEmbedding do), which
    /// keeps the module's field and its parameter registry in step. The old tensor is disposed.
    /// </summary>
    public static void SetParameter(nn.Module root, string path, Parameter value)
    {
        int dot = path.LastIndexOf('.');
        var owner = Find(root, dot < 0 ? "" : path[..dot]);
        string leaf = path[(dot + 1)..];
        var prop = owner.GetType().GetProperty(leaf, BindingFlags.Public | BindingFlags.Instance);
        if (prop is null || !prop.CanWrite || !prop.PropertyType.IsAssignableFrom(typeof(Parameter)))
            throw new InvalidOperationException($"{owner.GetType().Name} has no settable Parameter property '{leaf}' (needed for '{path}')");
        prop.SetValue(owner, value);
    }

    /// <summary>
    /// Replaces the child module registered as <paramref name="field"/> on <paramref name="parent"/> and the
    /// field that holds it (public or not, readonly or not; the field's name or its [ComponentName] is the
    /// state-dict name), then re-registers it so state-dict keys stay the same. The field must be typed
    /// loosely enough for the replacement (e.g. nn.Module&lt;Tensor, Tensor&gt; rather than Linear).
    /// Returns the previous child, not disposed.
    /// </summary>
    public static TModule ReplaceChild<TModule>(nn.Module parent, string field, TModule replacement) where TModule : nn.Module
    {
        var f = FindField(parent.GetType(), field)
            ?? throw new ArgumentException($"{parent.GetType().Name} has no field for child module '{field}'");
        if (!f.FieldType.IsAssignableFrom(replacement.GetType()))
            throw new ArgumentException($"{parent.GetType().Name}.{f.Name} is declared as {f.FieldType.Name} and cannot hold a " +
                $"{replacement.GetType().Name}; declare it as nn.Module<Tensor, Tensor> so it can be wrapped");
        var old = (TModule)f.GetValue(parent)!;
        f.SetValue(parent, replacement);
        parent.register_module(field, null!);      // null removes the old registration
        parent.register_module(field, replacement);
        return old;
    }

    private static FieldInfo? FindField(Type? type, string componentName)
    {
        const BindingFlags flags = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.DeclaredOnly;
        for (; type is not null; type = type.BaseType)
            foreach (var f in type.GetFields(flags))
                if ((f.GetCustomAttribute<ComponentNameAttribute>()?.Name ?? f.Name) == componentName) return f;
        return null;
    }
}
