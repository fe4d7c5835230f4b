using Hici.Hierarchical;
using Hici.IO;
using Hici.Lora;
using Hici.Models;

namespace Hici.Loading;

/// <summary>How one model type (config.json's model_type) is planned and loaded.</summary>
public interface IModelFamily
{
    /// <summary>What the request will build, from the config files alone (no weights read).</summary>
    ModelPlan Plan(ModelLoadRequest request);
    LoadedModel Load(ModelLoadRequest request);
}

/// <summary>
/// The one way a model is loaded, by every command and by <see cref="CausalLM.FromPretrained"/>: the folder's
/// model_type picks the family (<see cref="Catalog.ModelTypes"/>, else the Llama/Qwen3 decoder), which builds
/// the model on the meta device and fills it.
/// </summary>
public static class ModelLoader
{
    private static readonly object Gate = new();
    private static readonly Dictionary<string, IModelFamily> Families = new(Catalog.ModelTypes, StringComparer.Ordinal);

    /// <summary>Adds a loader for another model_type (a library user's own; the built-in ones are in <see cref="Catalog"/>).</summary>
    public static void Register(string modelType, IModelFamily family)
    {
        lock (Gate)
        {
            if (!Families.TryAdd(modelType, family)) throw new ArgumentException($"model_type '{modelType}' already has a loader");
        }
    }

    public static ModelPlan Plan(ModelLoadRequest request) => FamilyOf(request).Plan(request);

    public static LoadedModel Load(ModelLoadRequest request) => FamilyOf(request).Load(request);

    private static IModelFamily FamilyOf(ModelLoadRequest request)
    {
        if (!Directory.Exists(request.ModelDir)) throw new HiciException($"{request.ModelDir}: no such model folder");
        string? type = HfConfigReader.ReadModelType(request.ModelDir);
        lock (Gate)
        {
            return type is not null && Families.TryGetValue(type, out var f) ? f : DecoderFamily.Instance;
        }
    }
}

/// <summary>
/// Llama / Qwen3 decoders (<see cref="CausalLM"/>), loaded the way the reference evaluation loads them
/// (the reference's `eval_distributed_hici.py → run_eval`): base weights, the vocabulary resized to the trainable file's embedding rows, the
/// attention implementation's modules, then trainable_params over it (embed, norms, HiCI), then the LoRA
/// adapter. Attention-extra tensors (HiCI) may come from the base folder (model.safetensors, or the
/// hici.safetensors beside it that `hici merge` writes) or from the trainable file.
/// </summary>
public sealed class DecoderFamily : IModelFamily
{
    public static readonly DecoderFamily Instance = new();

    /// <summary>The config the model will be built with: attention options resolved (request, else the
    /// folder's) and validated, the vocabulary resized to the trainable file's embedding rows.</summary>
    public static ModelConfig Config(ModelLoadRequest req, TrainableSource? trainable)
    {
        var cfg = HfConfigReader.Read(req.ModelDir);
        if (req.RopeScaling is { } rope) cfg = cfg with { RopeScaling = rope };
        var impl = AttentionRegistry.Get(req.Attention.Name);
        var options = req.Attention.Options ?? impl.OptionsFromFolder(req.ModelDir);
        cfg = cfg with { Attention = new AttentionSetting(impl.Name, impl.ValidateOptions(options, cfg)) };
        if (trainable?.EmbedRows is { } rows && rows != cfg.VocabSize) cfg = VocabResizedSource.Config(cfg, rows);
        return cfg;
    }

    public ModelPlan Plan(ModelLoadRequest req)
    {
        using var tr = req.TrainableFile is { } path ? TrainableParams.Open(path) : null;
        var cfg = Config(req, tr);
        var impl = AttentionRegistry.For(cfg);
        return new ModelPlan(cfg, cfg.VocabSize, cfg.MaxPositionEmbeddings, cfg.EosTokenIds)
        {
            DescribeAttention = tokens => (impl.Describe(cfg, tokens, out var warning), warning),
            ScoresWholeSequence = impl.ScoresWholeSequence(cfg),
        };
    }

    public LoadedModel Load(ModelLoadRequest req)
    {
        if (req.AdapterDir is { } adapterDir && !Directory.Exists(adapterDir)) throw new HiciException($"{adapterDir}: no such adapter folder");
        using var tr = req.TrainableFile is { } path ? TrainableParams.Open(path) : null;
        var cfg = Config(req, tr);
        long baseVocab = HfConfigReader.Read(req.ModelDir).VocabSize;
        var impl = AttentionRegistry.For(cfg);

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
                IWeightSource src = cfg.VocabSize != baseVocab ? new VocabResizedSource(both, cfg.VocabSize) : both;
                // A plain HF base has no attention-extra tensors: they come from the trainable file (checked below).
                baseReport = lm.LoadWeights(src, new WeightLoadOptions(impl.OwnsKey));
            }
            TrainableLoadReport? trReport = null;
            if (tr is not null)
            {
                trReport = TrainableParams.Apply(lm, tr, req.Strict);
                if (cfg.VocabSize != baseVocab) trReport = trReport with { VocabResized = (baseVocab, cfg.VocabSize) };
            }
            var loadedByOverlay = new HashSet<string>(trReport?.Loaded ?? Array.Empty<string>(), StringComparer.Ordinal);
            var notLoaded = baseReport.ZeroFilled.Where(k => !loadedByOverlay.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
            var origins = tr is null ? new[] { req.ModelDir } : new[] { req.ModelDir, tr.Origin };
            var notes = new List<string>();
            if (impl.CheckNotLoaded(cfg, notLoaded, origins) is { } note) notes.Add(note);
            PeftLoadReport? adapterReport = null;
            if (req.AdapterDir is { } ad)
            {
                using var adapter = PeftAdapter.Open(ad);
                adapterReport = adapter.ApplyTo(lm, req.Device, new PeftLoadOptions(Strict: req.Strict));
                LoraApplier.SetTrainable(lm, false);
            }
            lm.eval();   // no LoRA dropout, no mixed segment ratios: a trainer switches to train() itself
            return new LoadedModel { Model = lm, Base = baseReport, Trainable = trReport, Adapter = adapterReport, Notes = notes };
        }
        catch
        {
            lm.Dispose();
            throw;
        }
    }
}
