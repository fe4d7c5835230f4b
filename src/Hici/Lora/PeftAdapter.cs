using Hici.Hierarchical;
using Hici.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Lora;

/// <param name="Strict">also refuse keys that are not LoRA weights, LoRA layers the file does not cover, and
/// HiCI LoRA the model has no modules for (always refused: unknown LoRA modules, half pairs, wrong shapes)</param>
public sealed record PeftLoadOptions(bool Strict = true);

/// <summary>
/// A PEFT LoRA adapter folder: <c>adapter_config.json</c> plus <c>adapter_model.safetensors</c> or
/// <c>adapter_model.bin</c> (read by the allow-list unpickler), or any state dict with PEFT key names such as
/// a zero_to_fp32 <c>pytorch_model.bin</c>. Loads into LoRA layers through <see cref="PeftAdapterKeys"/> and
/// writes the same format back.
/// </summary>
public sealed class PeftAdapter : IDisposable
{
    public const string SafeTensorsName = "adapter_model.safetensors";
    public const string BinName = "adapter_model.bin";

    public PeftAdapterConfig Config { get; }
    public IWeightSource Weights { get; }
    public string Origin => Weights.Origin;

    private PeftAdapter(PeftAdapterConfig config, IWeightSource weights) { Config = config; Weights = weights; }

    /// <summary>Opens <paramref name="dir"/>; the weights are <paramref name="weightsFile"/> if given, else
    /// adapter_model.safetensors, else adapter_model.bin (PEFT's order).</summary>
    public static PeftAdapter Open(string dir, string? weightsFile = null)
    {
        if (!Directory.Exists(dir)) throw new HiciException($"{dir}: no such adapter folder");
        var config = PeftAdapterConfig.Read(dir);
        var st = Path.Combine(dir, SafeTensorsName);
        var bin = Path.Combine(dir, BinName);
        var file = weightsFile ?? (File.Exists(st) ? st : File.Exists(bin) ? bin : null)
            ?? throw new HiciException($"{dir}: no {SafeTensorsName} or {BinName} beside {PeftAdapterConfig.FileName}");
        IWeightSource src = file.EndsWith(".safetensors", StringComparison.Ordinal)
            ? SafeTensorsWeightSource.Open(file)
            : TorchPickleWeightSource.Open(file);
        try { CheckRank(config, src); }
        catch { src.Dispose(); throw; }
        return new PeftAdapter(config, src);
    }

    /// <summary>
    /// The rank in adapter_config.json sizes every LoRA layer before a weight is read; it must be the rank the
    /// weights have (a hostile r = 2³⁰ was a 550 GB allocation), so it is checked against the file's shapes first.
    /// </summary>
    private static void CheckRank(PeftAdapterConfig config, IWeightSource src)
    {
        int r = config.Lora.R;
        foreach (var key in src.Keys)
        {
            if (PeftAdapterKeys.Parse(key) is not { } k) continue;
            var shape = src.Shape(key);
            long rank = shape.Length != 2 ? -1 : k.Matrix == 'A' ? shape[0] : shape[1];
            if (rank != r)
                throw new HiciException($"{src.Origin}: '{key}' has shape [{string.Join(", ", shape)}], which is not rank r = {r} of {PeftAdapterConfig.FileName}");
        }
    }

    /// <summary>Puts LoRA layers from this adapter's config on <paramref name="model"/> and loads them.</summary>
    public PeftLoadReport ApplyTo(nn.Module model, Device? device = null, PeftLoadOptions? options = null)
    {
        LoraApplier.Apply(model, Config.Lora, device);
        return LoadInto(model, options);
    }

    /// <summary>Loads A and B into the LoRA layers already on <paramref name="model"/>. Checks everything
    /// before changing anything, so a refused adapter leaves the model as it was.</summary>
    public PeftLoadReport LoadInto(nn.Module model, PeftLoadOptions? options = null) =>
        Load(model, Weights, Config.Lora, options ?? new PeftLoadOptions());

    /// <summary>The loader behind <see cref="LoadInto"/>, for any source of PEFT-named tensors.</summary>
    public static PeftLoadReport Load(nn.Module model, IWeightSource src, LoraConfig cfg, PeftLoadOptions options)
    {
        var layers = LoraApplier.Layers(model).ToDictionary(l => PeftAdapterKeys.HfModule(l.Path), l => l);
        if (layers.Count == 0) throw new HiciException($"{src.Origin}: the model has no LoRA layers; apply the adapter's LoRA config first");
        bool modelHasHici = model.named_modules().Any(m => HiciKeys.IsInHiciModule(m.name));

        var errors = new List<string>();
        var merged = layers.Values.FirstOrDefault(x => x.Layer.Merged);
        if (merged.Layer is not null) errors.Add($"the LoRA layer '{merged.Path}' is merged; unmerge before loading");
        var other = layers.Values.FirstOrDefault(x => x.Layer.R != cfg.R || Math.Abs(x.Layer.Scale - cfg.Scale) > 1e-12);
        if (other.Layer is not null)
            errors.Add($"the model's LoRA layer '{other.Path}' has r = {other.Layer.R}, scale {other.Layer.Scale}; the adapter config says r = {cfg.R}, scale {cfg.Scale}");

        var found = new Dictionary<(string Module, char Matrix), string>();
        var unexpected = new List<string>();
        var ignored = new List<string>();
        foreach (var key in src.Keys.OrderBy(k => k, StringComparer.Ordinal))
        {
            var k = PeftAdapterKeys.Parse(key);
            if (k is null)
            {
                if (PeftAdapterKeys.LooksLikeLora(key)) errors.Add($"'{key}' is not a LoRA Linear key this reader knows (expected {PeftAdapterKeys.Prefix}<module>.lora_A.weight or .lora_A.default.weight)");
                else unexpected.Add(key);
                continue;
            }
            if (!layers.TryGetValue(k.Module, out var layer))
            {
                if (!modelHasHici && HiciKeys.IsInHiciModule(k.Module)) ignored.Add(key);
                else errors.Add($"'{key}': the model has no LoRA layer '{k.Module}' (do target_modules and the model's modules agree?)");
                continue;
            }
            if (!found.TryAdd((k.Module, k.Matrix), key)) { errors.Add($"'{key}' and '{found[(k.Module, k.Matrix)]}' are the same tensor"); continue; }
            var want = k.Matrix == 'A' ? new[] { (long)cfg.R, layer.Layer.InFeatures } : new[] { layer.Layer.OutFeatures, (long)cfg.R };
            var shape = src.Shape(key);
            if (!shape.SequenceEqual(want))
                errors.Add($"'{key}' is [{string.Join(", ", shape)}]; r = {cfg.R} and the layer ({layer.Layer.InFeatures} → {layer.Layer.OutFeatures}) need [{string.Join(", ", want)}]");
            var dt = src.DType(key);
            if (dt is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float64))
                errors.Add($"'{key}' is {dt}, not floating point");
        }

        var loaded = new List<string>();
        var missing = new List<string>();
        foreach (var (hf, (path, _)) in layers.OrderBy(x => x.Key, StringComparer.Ordinal))
        {
            bool a = found.ContainsKey((hf, 'A')), b = found.ContainsKey((hf, 'B'));
            if (a && b) loaded.Add(path);
            else if (a || b) errors.Add($"'{found[(hf, a ? 'A' : 'B')]}' has no lora_{(a ? 'B' : 'A')} partner");
            else missing.Add(path);
        }
        if (errors.Count > 0)
            throw new HiciException($"{src.Origin}: adapter does not fit the model: {string.Join("; ", errors.Take(8))}{(errors.Count > 8 ? $" … ({errors.Count - 8} more)" : "")}");

        var report = new PeftLoadReport(src.Origin, loaded, missing, unexpected, ignored);
        if (options.Strict && !report.IsComplete)
            throw new HiciException($"{src.Origin}: strict load refused: {string.Join("; ", report.Lines().Skip(1).Select(l => l.Trim()))}");

        using var noGrad = torch.no_grad();
        foreach (var ((hf, matrix), key) in found)
        {
            var layer = layers[hf].Layer;
            var target = matrix == 'A' ? layer.lora_A.weight! : layer.lora_B.weight!;
            using var t = src.Load(key, target.dtype, target.device);
            target.copy_(t);
        }
        return report;
    }

    /// <summary>
    /// Writes <paramref name="model"/>'s LoRA layers as a PEFT adapter folder: adapter_model.safetensors
    /// (in <paramref name="dtype"/>, default the layers' own) then adapter_config.json, each atomically.
    /// </summary>
    public static void Save(nn.Module model, string dir, PeftAdapterConfig config, ScalarType? dtype = null)
    {
        config.Lora.Validate($"{dir}: adapter config");
        var layers = LoraApplier.Layers(model);
        if (layers.Count == 0) throw new HiciException($"{dir}: the model has no LoRA layers to save");
        var odd = layers.FirstOrDefault(l => l.Layer.R != config.Lora.R || Math.Abs(l.Layer.Scale - config.Lora.Scale) > 1e-12);
        if (odd.Layer is not null)
            throw new HiciException($"{dir}: LoRA layer '{odd.Path}' has r = {odd.Layer.R}, scale {odd.Layer.Scale}; the config says r = {config.Lora.R}, scale {config.Lora.Scale}");

        using var scope = torch.NewDisposeScope();
        var tensors = new List<(string, Tensor)>();
        foreach (var (path, l) in layers)
        {
            var hf = PeftAdapterKeys.HfModule(path);
            tensors.Add((PeftAdapterKeys.Key(hf, 'A'), Cast(l.lora_A.weight!, dtype)));
            tensors.Add((PeftAdapterKeys.Key(hf, 'B'), Cast(l.lora_B.weight!, dtype)));
        }
        Directory.CreateDirectory(dir);
        SafeTensorsWriter.Save(Path.Combine(dir, SafeTensorsName), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        var json = config.ToJson();
        AtomicFile.Write(Path.Combine(dir, PeftAdapterConfig.FileName), fs => fs.Write(json));
    }

    private static Tensor Cast(Tensor t, ScalarType? dtype) => t.detach().to(dtype ?? t.dtype);

    public void Dispose() => Weights.Dispose();
}
