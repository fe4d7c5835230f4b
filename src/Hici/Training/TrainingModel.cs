using Hici.Hierarchical;
using Hici.IO;
using Hici.Lora;
using Hici.Models;
using Hici.Loading;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Training;

/// <summary>
/// The model a run trains, built in the reference's order (fine-tune_hici.py → train): RoPE scaled for the
/// target length, base weights loaded, HiCI modules registered (initialised by the reference's rules when the
/// base has none) BEFORE LoRA, so LoRA also wraps the HiCI modules' own q/k/v/o projections as PEFT's suffix
/// match does; then the trainable set: LoRA A/B plus every parameter whose name contains one of the
/// --trainable substrings (a plain substring test, as the reference's). Everything else is frozen.
/// </summary>
public sealed class TrainingModel : IDisposable
{
    public required CausalLM Model { get; init; }
    /// <summary>name → parameter, in module order, for every parameter that trains.</summary>
    public required IReadOnlyList<(string Name, Parameter Param)> Trainable { get; init; }
    public double? RopeFactor { get; init; }
    public bool HiciInitialised { get; init; }

    public static bool IsHiciParameter(string name) =>
        name.Contains("local_constructor", StringComparison.Ordinal) || name.Contains("global_integrator", StringComparison.Ordinal);

    public static TrainingModel Build(TrainOptions o)
    {
        if (!Directory.Exists(o.ModelDir)) throw new HiciException($"{o.ModelDir}: no such model folder");
        var cfg = HfConfigReader.Read(o.ModelDir);
        double? factor = o.ScaleRope ? RopeForContext.Factor(cfg, o.ModelMaxLength, Path.Combine(o.ModelDir, "config.json")) : null;
        if (factor is { } f) cfg = cfg with { RopeScaling = new RopeScaling("linear", f) };
        var impl = AttentionRegistry.Get(o.Attention.Name);
        // the run's seed also seeds HiCI's segmenter (mixed segment ratios), whose state every checkpoint keeps
        var options = o.Attention.Options is HiciAttentionOptions h ? h with { SegmenterSeed = unchecked((ulong)o.Seed), SftSegments = o.SftSegmentRule } : o.Attention.Options;
        cfg = cfg with { Attention = new AttentionSetting(impl.Name, impl.ValidateOptions(options, cfg)) };
        var lm = CausalLM.Create(cfg, o.DType);
        try
        {
            WeightLoadReport rep;
            var hiciPath = Path.Combine(o.ModelDir, LoraMerge.HiciWeightsName);
            using (var st = SafeTensorsWeightSource.Open(o.ModelDir))
            using (var hf = File.Exists(hiciPath) ? SafeTensorsWeightSource.Open(hiciPath) : null)
                rep = lm.LoadWeights(hf is null ? st : new OverlayWeightSource(st, hf), new WeightLoadOptions(impl.OwnsKey, WeightLayout.Kind.Row));
            // Seeded here (the reference's HiCI init is not: its seeding block is commented out), so runs repeat.
            torch.manual_seed(o.Seed);
            bool init = rep.ZeroFilled.Count > 0;
            if (init)
                foreach (var layer in lm.model.layers)
                    if (layer.self_attn is HiciAttention ha) ha.ResetHiciParameters(lm.model.embed_tokens.weight);
            if (o.Lora is { } lc) LoraApplier.Apply(lm, lc);
            var trainable = SelectTrainable(lm, o.Trainable);
            if (trainable.Count == 0) throw new HiciException($"--trainable {string.Join(",", o.Trainable)}: no parameter of the model trains");
            lm.train();
            return new TrainingModel { Model = lm, Trainable = trainable, RopeFactor = factor, HiciInitialised = init };
        }
        catch
        {
            lm.Dispose();
            throw;
        }
    }

    /// <summary>Sets requires_grad on LoRA A/B and the parameters matching <paramref name="substrings"/>; returns them.</summary>
    public static List<(string, Parameter)> SelectTrainable(CausalLM lm, IReadOnlyList<string> substrings)
    {
        bool all = substrings.Any(s => s == "all");
        var list = new List<(string, Parameter)>();
        foreach (var (name, p) in lm.named_parameters())
        {
            bool lora = name.Contains(".lora_A.", StringComparison.Ordinal) || name.Contains(".lora_B.", StringComparison.Ordinal);
            bool on = lora || all || substrings.Any(s => s.Length > 0 && name.Contains(s, StringComparison.Ordinal));
            p.requires_grad = on;
            if (on) list.Add((name, p));
        }
        return list;
    }

    public void Dispose() => Model.Dispose();
}
