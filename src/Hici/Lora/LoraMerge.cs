using Hici.Hierarchical;
using Hici.IO;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Lora;

/// <summary>
/// <c>hici merge</c> as a library call: base + PEFT adapter (+ trainable_params overlay) → a standalone HF folder
/// (config.json, model.safetensors or shards + index, tokenizer files) that any HF-layout loader scores the same
/// as base + adapter + overlay. HiCI module weights, which plain HF models have no place for, go to
/// hici.safetensors (with the HiCI LoRA merged into their projections) beside hici_config.json.
/// The folder appears whole or not at all: it is written under a temporary name and renamed.
/// </summary>
public static class LoraMerge
{
    private static readonly string[] TokenizerFiles =
    {
        "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
        "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja",
    };

    public const string HiciWeightsName = "hici.safetensors";
    public const string HiciConfigName = "hici_config.json";

    public static MergeReport MergeAndSave(string baseDir, string adapterDir, IWeightSource? trainableOverlay, string outputDir,
        int? contextSize = null, MergeOptions? options = null)
    {
        options ??= new MergeOptions();
        if (contextSize is not null) options = options with { ContextSize = contextSize };
        if (!Directory.Exists(baseDir)) throw new HiciException($"{baseDir}: no such model folder");
        CheckOutput(outputDir);
        // Read (bounded) and validated now, then written as read: a config that is not one, or a device, is refused
        // before the merge rather than copied.
        byte[]? hiciConfigBytes = null;
        if (options.HiciConfigPath is { } hcp)
        {
            hiciConfigBytes = InputFiles.ReadBytes(hcp, HiciConfig.MaxFileBytes);
            _ = HiciConfig.FromJson(InputFiles.DecodeUtf8(hiciConfigBytes, hcp), hcp);
        }

        var cfg = HfConfigReader.Read(baseDir);
        var config = MergedConfig.Read(baseDir);
        var outType = options.DType ?? MergedConfig.ParseDType(cfg.TorchDtype);
        MergedConfig.SetDType(config, outType);
        var notes = new List<string>();
        // Decided before any weight is read, so a context the config cannot take fails fast.
        if (options.ContextSize is { } ctx)
        {
            if (RopeForContext.Factor(cfg, ctx, Path.Combine(baseDir, "config.json")) is { } f)
            {
                MergedConfig.SetLinearRope(config, f);
                notes.Add($"rope_scaling linear, factor {f:R} for context {ctx} ({(cfg.ModelType == "qwen3" ? "exact ratio" : "ratio rounded up")})");
            }
            else notes.Add($"context {ctx} fits the configured RoPE; rope_scaling unchanged");
        }

        using var adapter = PeftAdapter.Open(adapterDir);
        using var lm = CausalLM.Create(cfg, outType == ScalarType.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32);
        LoraApplier.Apply(lm, adapter.Config.Lora);
        using var scope = torch.NewDisposeScope();
        // A base that already holds HiCI weights (a merged HiCI export) keeps them; the plain model skips them.
        var hici = new SortedDictionary<string, Tensor>(StringComparer.Ordinal);
        using (var src = SafeTensorsWeightSource.Open(baseDir))
        {
            lm.LoadWeights(src, new WeightLoadOptions(Layout: WeightLayout.Kind.Row));   // written out, not run: no relayout
            foreach (var k in src.Keys.Where(HiciKeys.IsInHiciModule))
                hici[HiciKeys.CurrentName(k)] = src.Load(k, ScalarType.Float32);
        }
        // HiCI LoRA has no layer in this plain model; it is merged into the HiCI tensors below.
        var adapterReport = adapter.LoadInto(lm, new PeftLoadOptions(Strict: false));
        if (options.Strict && (adapterReport.Missing.Count > 0 || adapterReport.Unexpected.Count > 0))
            throw new HiciException($"{adapter.Origin}: strict merge refused: {string.Join("; ", adapterReport.Lines().Skip(1).Select(l => l.Trim()))}");
        LoraApplier.MergeAll(lm);

        var adapterOwned = AdapterModules.ParameterPaths(lm);
        var order = new List<string>();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (path, p) in lm.named_parameters())
        {
            if (adapterOwned.Contains(path)) continue;
            var key = WeightMap.ToHf(path) ?? throw new InvalidOperationException($"WeightMap has no row for '{path}'");
            order.Add(key);
            tensors[key] = p.detach();
        }

        List<string> overridden = new(), hiciMerged;
        if (trainableOverlay is not null)
        {
            (overridden, var overlayHici) = MergeOverlay.Apply(tensors, trainableOverlay, cfg, outType);
            foreach (var (k, t) in overlayHici) hici[k] = t;
            if (MergeOverlay.ResizeVocabulary(tensors, cfg, trainableOverlay.Origin) is { } v)
            {
                config["vocab_size"] = v;
                notes.Add($"vocabulary {cfg.VocabSize} → {v} rows, from the overlay's embedding" +
                          (tensors.ContainsKey(MergeOverlay.LmHead) ? (v > cfg.VocabSize ? "; new lm_head rows = mean of the old ones" : "; lm_head keeps its first rows") : ""));
            }
        }
        var (merged, noWeight) = MergeOverlay.MergeHiciLora(adapter, hici);
        hiciMerged = merged;
        if (noWeight.Count > 0)
        {
            if (options.Strict)
                throw new HiciException($"{adapter.Origin}: LoRA for {noWeight.Count} HiCI projections (e.g. '{noWeight[0]}') has no HiCI weight to merge into; pass the trainable_params.bin that goes with the adapter");
            notes.Add($"dropped the LoRA of {noWeight.Count} HiCI projections: no HiCI weights given (as the reference's LoRA-only merge)");
        }
        if (hici.Count > 0 && options.HiciConfigPath is null)
            notes.Add($"{HiciConfigName} not written: HiCI's settings are not in the weights; pass the HiCI config to write it");

        var output = order.Select(k => (k, Cast(tensors[k], outType))).ToList();
        var hiciOut = hici.Select(kv => (kv.Key, Cast(kv.Value, outType))).ToList();
        // Written into a hidden sibling folder and renamed into place: a failed or killed merge leaves nothing behind.
        AtomicFile.WriteFolder(outputDir, tmp =>
        {
            SafeTensorsShardedWriter.Save(tmp, output, options.MaxShardBytes, new Dictionary<string, string> { ["format"] = "pt" });
            if (hiciOut.Count > 0)
            {
                SafeTensorsWriter.Save(Path.Combine(tmp, HiciWeightsName), hiciOut, new Dictionary<string, string> { ["format"] = "pt" });
                if (hiciConfigBytes is not null) File.WriteAllBytes(Path.Combine(tmp, HiciConfigName), hiciConfigBytes);
            }
            File.WriteAllBytes(Path.Combine(tmp, "config.json"), MergedConfig.ToBytes(config));
            // The adapter's tokenizer wins when it has one (the trained vocabulary, e.g. Llama-2 with [PAD]).
            var tokDir = File.Exists(Path.Combine(adapterDir, "tokenizer_config.json")) ? adapterDir : baseDir;
            foreach (var f in TokenizerFiles.Select(n => Path.Combine(tokDir, n)).Where(File.Exists))
                CopyInput(f, Path.Combine(tmp, Path.GetFileName(f)));
            var gen = Path.Combine(baseDir, "generation_config.json");
            if (File.Exists(gen)) CopyInput(gen, Path.Combine(tmp, "generation_config.json"));
        });
        // HiCI LoRA is accounted for by HiciLoraMerged and the notes, not as "ignored".
        return new MergeReport(outputDir, adapterReport with { Ignored = Array.Empty<string>() }, overridden, hici.Keys.ToList(), hiciMerged, notes);
    }

    /// <summary>Copies an input file under the tokenizer.json size limit; a device or FIFO named like one is refused.</summary>
    private static void CopyInput(string from, string to) => InputFiles.Copy(from, to);

    private static Tensor Cast(Tensor t, ScalarType dtype) => t.dtype == dtype ? t : t.to(dtype);

    private static void CheckOutput(string outputDir)
    {
        InputFiles.CheckPath(outputDir, "--output");
        if (File.Exists(outputDir)) throw new HiciException($"{outputDir}: exists and is a file; the merge writes a folder");
        if (Directory.Exists(outputDir) && Directory.EnumerateFileSystemEntries(outputDir).Any())
            throw new HiciException($"{outputDir}: exists and is not empty; choose a new output folder");
    }
}
