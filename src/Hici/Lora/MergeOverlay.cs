using Hici.Hierarchical;
using Hici.IO;
using Hici.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Lora;

/// <summary>
/// The tensor-level steps of a merge after the attention LoRA is folded in: the trainable_params overlay
/// (embed / norm / q_norm / k_norm overrides replace base tensors; HiCI module tensors are set aside for
/// hici.safetensors), the vocabulary resize an overridden embedding implies, and the LoRA of the HiCI
/// projections added to the HiCI weights (PEFT's suffix match of <c>target_modules</c> in the reference's fine-tune_hici.py wraps them: W + (α/r)·B·A, in float32).
/// </summary>
internal static class MergeOverlay
{
    public const string Embed = "model.embed_tokens.weight";
    public const string LmHead = "lm_head.weight";

    /// <summary>Replaces base tensors in <paramref name="tensors"/>; returns the replaced keys and the HiCI tensors (float32, current names).</summary>
    public static (List<string> Overridden, SortedDictionary<string, Tensor> Hici) Apply(
        Dictionary<string, Tensor> tensors, IWeightSource overlay, ModelConfig cfg, ScalarType dtype)
    {
        var overridden = new List<string>();
        var hici = new SortedDictionary<string, Tensor>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var key in overlay.Keys.OrderBy(k => k, StringComparer.Ordinal))
        {
            var cur = HiciKeys.CurrentName(key);
            var dt = overlay.DType(key);
            if (dt is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float64))
            { problems.Add($"'{key}' is {dt}, not floating point"); continue; }
            if (HiciKeys.IsInHiciModule(cur))
            {
                if (hici.ContainsKey(cur)) { problems.Add($"'{key}' is given under both its legacy and its current name"); continue; }
                hici[cur] = overlay.Load(key, ScalarType.Float32);
                continue;
            }
            if (!tensors.TryGetValue(cur, out var current)) { problems.Add($"'{key}' is not a weight of this {cfg.ModelType} model"); continue; }
            var shape = overlay.Shape(key);
            bool embedRowsDiffer = cur == Embed && shape.Length == 2 && shape[1] == current.shape[1];
            if (!embedRowsDiffer && !shape.SequenceEqual(current.shape))
            { problems.Add($"'{key}' is [{string.Join(", ", shape)}], the model's is [{string.Join(", ", current.shape)}]"); continue; }
            tensors[cur] = overlay.Load(key, dtype);
            overridden.Add(cur);
        }
        if (problems.Count > 0)
            throw new HiciException($"{overlay.Origin}: trainable params do not fit the base model: {string.Join("; ", problems.Take(8))}{(problems.Count > 8 ? $" … ({problems.Count - 8} more)" : "")}");
        return (overridden, hici);
    }

    /// <summary>
    /// Brings lm_head to the overridden embedding's row count as the reference does: grown rows are the mean of
    /// the existing ones (smart_tokenizer_and_embedding_resize, Llama-2's added [PAD]); a smaller vocabulary
    /// keeps the first rows (the Qwen3 eval's resize). Returns the new vocabulary size, or null if unchanged.
    /// </summary>
    public static int? ResizeVocabulary(Dictionary<string, Tensor> tensors, ModelConfig cfg, string origin)
    {
        long rows = tensors[Embed].shape[0];
        if (rows == cfg.VocabSize) return null;
        var ids = new[] { ("bos_token_id", cfg.BosTokenId), ("pad_token_id", cfg.PadTokenId) }
            .Concat(cfg.EosTokenIds.Select(e => ("eos_token_id", (int?)e)));
        foreach (var (name, id) in ids)
            if (id is { } v && v >= rows)
                throw new HiciException($"{origin}: its {Embed} has {rows} rows, which would leave {name} {v} outside the vocabulary");
        if (tensors.TryGetValue(LmHead, out var head))
        {
            using var scope = torch.NewDisposeScope();
            Tensor resized = rows < head.shape[0]
                ? head.narrow(0, 0, rows).clone()
                : torch.cat(new[] { head, head.to(ScalarType.Float32).mean(new long[] { 0 }, keepdim: true).to(head.dtype).expand(rows - head.shape[0], -1) }, 0);
            tensors[LmHead] = resized.MoveToOuterDisposeScope();
        }
        return (int)rows;
    }

    /// <summary>
    /// Adds each HiCI projection's LoRA delta to its weight in <paramref name="hici"/>. Returns the merged module
    /// paths and those with no weight to merge into.
    /// </summary>
    public static (List<string> Merged, List<string> NoWeight) MergeHiciLora(PeftAdapter adapter, SortedDictionary<string, Tensor> hici)
    {
        var pairs = new SortedDictionary<string, (string? A, string? B)>(StringComparer.Ordinal);
        foreach (var key in adapter.Weights.Keys)
        {
            if (PeftAdapterKeys.Parse(key) is not { } k || !HiciKeys.IsInHiciModule(k.Module)) continue;
            var p = pairs.GetValueOrDefault(k.Module);
            pairs[k.Module] = k.Matrix == 'A' ? (key, p.B) : (p.A, key);
        }
        var cfg = adapter.Config.Lora;
        var merged = new List<string>();
        var noWeight = new List<string>();
        var problems = new List<string>();
        foreach (var (module, (a, b)) in pairs)
        {
            if (a is null || b is null) { problems.Add($"'{a ?? b}' has no lora_{(a is null ? 'A' : 'B')} partner"); continue; }
            if (!hici.TryGetValue(module + ".weight", out var w)) { noWeight.Add(module); continue; }
            long outF = w.shape[0], inF = w.shape[1];
            var sa = adapter.Weights.Shape(a);
            var sb = adapter.Weights.Shape(b);
            if (!sa.SequenceEqual(new[] { cfg.R, inF }) || !sb.SequenceEqual(new[] { outF, cfg.R }))
            {
                problems.Add($"'{module}' LoRA is A [{string.Join(", ", sa)}], B [{string.Join(", ", sb)}]; r = {cfg.R} and the HiCI weight [{outF}, {inF}] need A [{cfg.R}, {inF}], B [{outF}, {cfg.R}]");
                continue;
            }
            using var scope = torch.NewDisposeScope();
            var delta = adapter.Weights.Load(b, ScalarType.Float32).matmul(adapter.Weights.Load(a, ScalarType.Float32)).mul_(cfg.Scale);
            hici[module + ".weight"] = w.add(delta).MoveToOuterDisposeScope();
            w.Dispose();
            merged.Add(module);
        }
        if (problems.Count > 0)
            throw new HiciException($"{adapter.Origin}: HiCI LoRA does not fit the HiCI weights: {string.Join("; ", problems.Take(8))}");
        return (merged, noWeight);
    }
}
