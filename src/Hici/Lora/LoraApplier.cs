using Hici.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Lora;

/// <summary>
/// Puts LoRA on every Linear whose module path matches the config (PEFT's rule: name suffix, or a full-path
/// regex), anywhere in the tree — the attention projections and, when a model has them, the HiCI modules'
/// own q/k/v/o projections. Works on a meta-built model (before the base weights are loaded; the loader
/// skips A/B) and on a loaded one.
/// </summary>
public static class LoraApplier
{
    /// <summary>Wraps the matching Linears; returns their paths. <paramref name="device"/> is where A/B
    /// live when the base weights are still meta placeholders (default: CPU).</summary>
    public static IReadOnlyList<string> Apply(nn.Module root, LoraConfig cfg, Device? device = null)
    {
        cfg.Validate("LoRA config");
        var targets = new List<(nn.Module Parent, string Name, string Path, Linear Linear)>();
        var problems = new List<string>();
        Collect(root, "", cfg, targets, problems);
        if (problems.Count > 0)
            throw new HiciException($"LoRA target_modules {cfg.DescribeTargets()}: {string.Join("; ", problems)}");
        if (targets.Count == 0)
            throw new HiciException($"LoRA target_modules {cfg.DescribeTargets()} match no module of the model");

        foreach (var (parent, name, _, linear) in targets)
        {
            var lora = new LoraLinear(linear, cfg, device);
            lora.train(parent.training);   // a new module starts in training mode; keep the model's mode
            try { ModuleTree.ReplaceChild<nn.Module>(parent, name, lora); }
            catch (ArgumentException e) { lora.Dispose(); throw new InvalidOperationException(e.Message, e); }
            // The old Linear is dropped undisposed: disposing it would free the weight the wrapper now holds.
        }
        return targets.Select(t => t.Path).ToList();
    }

    /// <summary>Every LoRA layer with its path, in tree order.</summary>
    public static IReadOnlyList<(string Path, LoraLinear Layer)> Layers(nn.Module root) =>
        root.named_modules().Where(m => m.module is LoraLinear).Select(m => (m.name, (LoraLinear)m.module)).ToList();

    public static void MergeAll(nn.Module root)
    {
        foreach (var (_, l) in Layers(root)) if (!l.Merged) l.Merge();
    }

    public static void UnmergeAll(nn.Module root)
    {
        foreach (var (_, l) in Layers(root)) if (l.Merged) l.Unmerge();
    }

    /// <summary>Whether A/B take gradients (training) or not (inference: no autograd graph is built).</summary>
    public static void SetTrainable(nn.Module root, bool trainable)
    {
        foreach (var (_, l) in Layers(root))
        {
            l.lora_A.weight!.requires_grad = trainable;
            l.lora_B.weight!.requires_grad = trainable;
        }
    }

    private static void Collect(nn.Module m, string prefix, LoraConfig cfg,
        List<(nn.Module, string, string, Linear)> targets, List<string> problems)
    {
        foreach (var (name, child) in m.named_children())
        {
            var path = prefix.Length == 0 ? name : $"{prefix}.{name}";
            if (cfg.Matches(path))
            {
                // PEFT refuses a matched module it cannot wrap rather than skipping it.
                if (child is Linear lin) targets.Add((m, name, path, lin));
                else if (child is LoraLinear) problems.Add($"'{path}' already has LoRA");
                else problems.Add($"'{path}' is a {child.GetType().Name}, not a Linear");
                continue;
            }
            Collect(child, path, cfg, targets, problems);
        }
    }
}
