using Hici.IO;
using Hici.Lora;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Hierarchical;

/// <summary>What to load: an HF base folder, the attention to run, the HiCI config, and a trainable_params overlay.</summary>
public sealed record ModelLoadRequest(string ModelDir)
{
    public ScalarType DType { get; init; } = ScalarType.Float32;
    public Device? Device { get; init; }
    public AttentionKind Attention { get; init; } = AttentionKind.Full;
    /// <summary>Needed for hici; with full attention the HiCI modules are held and loaded, unused.</summary>
    public HiciConfig? Hici { get; init; }
    /// <summary>A reference trainable_params.bin (or .safetensors with its keys) loaded over the base.</summary>
    public TrainableSource? Trainable { get; init; }
    /// <summary>A PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors/.bin), applied last,
    /// unmerged, as the reference eval's PeftModel.from_pretrained — on the HiCI projections too.</summary>
    public string? AdapterDir { get; init; }
    /// <summary>Missing / unexpected keys of the overlay or the adapter are errors.</summary>
    public bool Strict { get; init; }
    /// <summary>Edits the folder's config before the model is built (evaluations set RoPE scaling this way).</summary>
    public Func<ModelConfig, ModelConfig>? EditConfig { get; init; }
}

/// <summary>A loaded model and what its loads found.</summary>
public sealed class LoadedModel : IDisposable
{
    public required CausalLM Model { get; init; }
    public required WeightLoadReport Base { get; init; }
    public TrainableLoadReport? Trainable { get; init; }
    public PeftLoadReport? Adapter { get; init; }
    /// <summary>HiCI tensors in neither the base folder nor the overlay (only possible with full attention: unused).</summary>
    public IReadOnlyList<string> HiciNotLoaded { get; init; } = Array.Empty<string>();

    public IEnumerable<string> ReportLines()
    {
        if (Trainable is not null) foreach (var l in Trainable.Lines()) yield return l;
        if (Adapter is not null)
        {
            var lines = Adapter.Lines().ToList();
            yield return $"adapter     {lines[0]["adapter ".Length..]}" + (Adapter.Loaded.Any(PeftAdapterKeys.IsHiciModule)
                ? $" ({Adapter.Loaded.Count(PeftAdapterKeys.IsHiciModule)} of them inside the HiCI modules)" : "");
            foreach (var l in lines.Skip(1)) yield return "  " + l.Trim();
        }
        if (HiciNotLoaded.Count > 0)
            yield return $"note        {HiciNotLoaded.Count} HiCI tensors are in no checkpoint; full attention does not use them";
    }

    public void Dispose() => Model.Dispose();
}

/// <summary>
/// Loads a model the way the reference evaluation does (pipelines spec §3.4): base weights, the vocabulary
/// resized to the trainable file's embedding rows, HiCI modules registered, then trainable_params.bin over it
/// (embed, norms, HiCI), then the LoRA adapter. HiCI tensors may come from the base folder (model.safetensors,
/// or the hici.safetensors beside it that `hici merge` writes) or from the overlay.
/// </summary>
public static class HiciModelLoader
{
    public static LoadedModel Load(ModelLoadRequest req)
    {
        if (!Directory.Exists(req.ModelDir)) throw new HiciException($"{req.ModelDir}: no such model folder");
        var cfg = HfConfigReader.Read(req.ModelDir) with { Attention = req.Attention, Hici = req.Hici };
        if (req.EditConfig is { } edit) cfg = edit(cfg);
        var tr = req.Trainable;
        long? rows = tr?.EmbedRows;
        long baseVocab = cfg.VocabSize;
        if (rows is { } r && r != cfg.VocabSize) cfg = VocabResizedSource.Config(cfg, r);

        var lm = CausalLM.Create(cfg, req.DType, req.Device);
        try
        {
            WeightLoadReport baseReport;
            using (var st = SafeTensorsWeightSource.Open(req.ModelDir))
            using (var hiciFile = File.Exists(Path.Combine(req.ModelDir, LoraMerge.HiciWeightsName))
                       ? SafeTensorsWeightSource.Open(Path.Combine(req.ModelDir, LoraMerge.HiciWeightsName)) : null)
            {
                // a `hici merge` folder keeps the HiCI tensors beside the HF weights, in hici.safetensors
                IWeightSource both = hiciFile is null ? st : new OverlayWeightSource(st, hiciFile);
                IWeightSource src = rows is { } n && n != baseVocab ? new VocabResizedSource(both, n) : both;
                // A plain HF base has no HiCI tensors: they come from the overlay (checked below).
                baseReport = lm.LoadWeights(src, new WeightLoadOptions(HiciCheckpoint.IsHiciKey));
            }
            TrainableLoadReport? trReport = null;
            if (tr is not null)
            {
                trReport = TrainableParams.Apply(lm, tr, req.Strict);
                if (rows is { } n2 && n2 != baseVocab) trReport = trReport with { VocabResized = (baseVocab, n2) };
            }
            var loadedByOverlay = new HashSet<string>(trReport?.Loaded ?? Array.Empty<string>(), StringComparer.Ordinal);
            var notLoaded = baseReport.ZeroFilled.Where(k => !loadedByOverlay.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
            if (notLoaded.Count > 0 && req.Attention == AttentionKind.Hici)
                throw new HiciException(
                    $"HiCI attention needs the HiCI weights, but {notLoaded.Count} HiCI tensors are in neither {req.ModelDir}" +
                    (tr is null ? "" : $" nor {tr.Origin}") + $" (e.g. {notLoaded[0]})" +
                    (tr is null ? "; pass the checkpoint's trainable_params.bin with --trainable" : ""));
            PeftLoadReport? adapterReport = null;
            if (req.AdapterDir is { } ad)
            {
                using var adapter = PeftAdapter.Open(ad);
                adapterReport = adapter.ApplyTo(lm, req.Device, new PeftLoadOptions(Strict: req.Strict));
                LoraApplier.SetTrainable(lm, false);
            }
            lm.eval();   // no LoRA dropout, no mixed segment ratios: this is evaluation
            return new LoadedModel { Model = lm, Base = baseReport, Trainable = trReport, Adapter = adapterReport, HiciNotLoaded = notLoaded };
        }
        catch
        {
            lm.Dispose();
            throw;
        }
    }
}
