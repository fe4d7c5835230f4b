using System.Text.RegularExpressions;
using Hici.IO;
using Hici.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Hierarchical;

/// <summary>
/// The reference's <c>trainable_params.bin</c> (written by the reference's get_trainable_weights.py): every parameter
/// whose name contains <c>embed</c>, <c>norm</c>, <c>local_constructor</c> or <c>global_integrator</c> —
/// model.embed_tokens, model.norm, the layer norms, Qwen3's q_norm/k_norm and the HiCI modules — fp32, keys
/// without the PEFT <c>base_model.model.</c> prefix. Read as an overlay over a base model; written back in
/// the same layout so the reference's <c>torch.load</c> + <c>load_state_dict(strict=False)</c> accepts ours.
/// </summary>
public static class TrainableParams
{
    public const string FileName = "trainable_params.bin";

    public const string EmbedKey = "model.embed_tokens.weight";

    /// <summary>The reference's keys for this model, in module order (HF names; LoRA A/B excluded).</summary>
    public static IReadOnlyList<string> ReferenceKeys(CausalLM lm) =>
        HfParameters(lm).Select(p => p.Key).Where(HiciKeys.IsTrainableKey).ToList();

    /// <summary>
    /// Opens a trainable_params.bin (PyTorch zip pickle, allow-list unpickler) or a .safetensors with the same
    /// keys. Keys are normalised: a leading <c>base_model.model.</c> (a zero_to_fp32 dict) is dropped, newer
    /// PEFT's <c>.base_layer.</c> is read as the plain name, and the legacy HiCI prefixes (<see cref="HiciKeys"/>) as the
    /// current ones; two spellings of one tensor are refused.
    /// </summary>
    public static TrainableSource Open(string path)
    {
        if (!File.Exists(path)) throw new HiciException($"{path}: no such file (--trainable expects a trainable_params.bin or .safetensors)");
        IWeightSource inner = path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)
            ? SafeTensorsWeightSource.Open(path)
            : TorchPickleWeightSource.Open(path);
        try { return new TrainableSource(inner); }
        catch { inner.Dispose(); throw; }
    }

    /// <summary>
    /// Copies every tensor of <paramref name="src"/> that names a model parameter into it (converted to the
    /// model dtype). Shapes must agree (resize the vocabulary first: <see cref="VocabResize"/>); HiCI tensors
    /// are checked against the HiCI config first. Missing = reference keys of this model the file lacks
    /// (they keep the base values); unexpected = file keys the model has no parameter for (not used).
    /// <paramref name="strict"/> makes either an error, before anything is copied.
    /// </summary>
    public static TrainableLoadReport Apply(CausalLM lm, TrainableSource src, bool strict = false)
    {
        var checkedSrc = HiciCheckpoint.Prepare(lm.Config, src);     // HiCI shapes vs the config: clear errors
        var ours = HfParameters(lm);
        var loaded = new List<string>();
        var unexpected = new List<string>();
        var badShape = new List<string>();
        foreach (var key in checkedSrc.Keys)
        {
            if (!ours.TryGetValue(key, out var p)) { unexpected.Add(key); continue; }
            var shape = checkedSrc.Shape(key);
            if (!shape.SequenceEqual(p.shape))
                badShape.Add($"{key} is {HiciConfig.Fmt(shape)}, the model has {HiciConfig.Fmt(p.shape)}");
            else loaded.Add(key);
        }
        if (badShape.Count > 0)
            throw new HiciException($"{src.Origin}: does not fit the model: {string.Join("; ", badShape.Take(6))}{(badShape.Count > 6 ? $" … ({badShape.Count - 6} more)" : "")}");
        var have = new HashSet<string>(checkedSrc.Keys, StringComparer.Ordinal);
        var missing = ReferenceKeys(lm).Where(k => !have.Contains(k)).ToList();
        var report = new TrainableLoadReport(src.Origin, loaded, missing, unexpected, src.Renamed);
        if (strict && (missing.Count > 0 || unexpected.Count > 0))
            throw new HiciException($"{src.Origin}: --strict: {report.Problems()}");

        using var noGrad = no_grad();
        foreach (var key in loaded)
        {
            var p = ours[key];
            using var t = checkedSrc.Load(key, p.dtype, p.device);
            p.copy_(t);
        }
        return report;
    }

    /// <summary>
    /// Writes the model's trainable state as the reference's trainable_params.bin: <see cref="ReferenceKeys"/>,
    /// fp32 (as zero_to_fp32 produces), a PyTorch zip pickle that <c>torch.load(weights_only=True)</c> reads.
    /// A <c>.safetensors</c> path writes the same keys as safetensors (our own format).
    /// </summary>
    public static void Save(CausalLM lm, string path)
    {
        using var scope = NewDisposeScope();
        var ours = HfParameters(lm);
        var tensors = ReferenceKeys(lm).Select(k => (k, ours[k].detach().to(ScalarType.Float32, CPU).contiguous())).ToList();
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) SafeTensorsWriter.Save(path, tensors);
        else TorchPickleWriter.Save(path, tensors);
    }

    /// <summary>HF key → parameter, in module order (LoRA A/B and anything without a WeightMap row left out).</summary>
    private static Dictionary<string, Parameter> HfParameters(CausalLM lm)
    {
        var d = new Dictionary<string, Parameter>(StringComparer.Ordinal);
        foreach (var (path, p) in lm.named_parameters())
        {
            if (path.Contains("lora_", StringComparison.Ordinal)) continue;
            if (WeightMap.ToHf(path) is { } hf) d.TryAdd(hf, p);
        }
        return d;
    }
}

/// <summary>A trainable_params file with normalised keys (see <see cref="TrainableParams.Open"/>). Owns the file.</summary>
public sealed class TrainableSource : RenamedKeySource
{
    private static readonly Regex PeftPrefix = new(@"^base_model\.model\.", RegexOptions.Compiled);

    internal TrainableSource(IWeightSource inner) : base(inner, Normalise, ownsInner: true) { }

    /// <summary>zero_to_fp32's PEFT prefix and newer PEFT's <c>.base_layer.</c> dropped, legacy HiCI names current.</summary>
    private static string Normalise(string key) =>
        HiciKeys.CurrentName(PeftPrefix.Replace(key, "").Replace(".base_layer.", ".", StringComparison.Ordinal));

    /// <summary>Rows of model.embed_tokens.weight in the file (the trained vocabulary), or null.</summary>
    public long? EmbedRows => Contains(TrainableParams.EmbedKey) ? Shape(TrainableParams.EmbedKey)[0] : null;

    /// <summary>True when the file holds HiCI module tensors.</summary>
    public bool HasHici => Keys.Any(HiciKeys.IsHiciKey);
}

/// <param name="Loaded">file keys copied into the model</param>
/// <param name="Missing">reference keys of this model the file lacks (they keep the base values)</param>
/// <param name="Unexpected">file keys the model has no parameter for (not used)</param>
/// <param name="Renamed">(key in the file, key read as): legacy HiCI prefixes, PEFT prefixes</param>
public sealed record TrainableLoadReport(string Origin, IReadOnlyList<string> Loaded, IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected, IReadOnlyList<(string Legacy, string Current)> Renamed)
{
    /// <summary>Set by the loader when the vocabulary was resized to the file's embed_tokens rows.</summary>
    public (long From, long To)? VocabResized { get; init; }

    public bool IsComplete => Missing.Count == 0 && Unexpected.Count == 0;

    /// <summary>"3 missing [..]; 1 unexpected [..]" (for errors).</summary>
    public string Problems()
    {
        var parts = new List<string>();
        if (Missing.Count > 0) parts.Add($"{Missing.Count} missing {List(Missing)}");
        if (Unexpected.Count > 0) parts.Add($"{Unexpected.Count} unexpected {List(Unexpected)}");
        return string.Join("; ", parts);
    }

    /// <summary>The load report, one item per line (the first line is the summary).</summary>
    public IEnumerable<string> Lines()
    {
        int hici = Loaded.Count(HiciKeys.IsHiciKey);
        int embed = Loaded.Count(k => k.Contains("embed", StringComparison.Ordinal));
        int norms = Loaded.Count(k => k.Contains("norm", StringComparison.Ordinal) && !HiciKeys.IsHiciKey(k));
        int other = Loaded.Count - hici - embed - norms;
        yield return $"trainable   {Origin}: {Loaded.Count} loaded (embedding {embed}, norms {norms}, HiCI {hici}" +
                     (other > 0 ? $", other {other}" : "") + $"), {Missing.Count} missing, {Unexpected.Count} unexpected";
        if (VocabResized is { } v)
            yield return $"  resized   vocabulary {v.From} → {v.To} rows to match the file's embed_tokens (as the reference eval does; " +
                         (v.To < v.From ? "lm_head truncated" : "new lm_head rows = mean of the old rows") + ")";
        if (Renamed.Count > 0)
            yield return $"  renamed   {Renamed.Count} keys read under current names, e.g. {Renamed[0].Legacy} → {Renamed[0].Current}";
        if (Missing.Count > 0) yield return $"  missing   {List(Missing)} (kept from the base model)";
        if (Unexpected.Count > 0) yield return $"  unexpected {List(Unexpected)} (not used)";
    }

    private static string List(IReadOnlyList<string> keys) =>
        "[" + string.Join(", ", keys.Take(6)) + (keys.Count > 6 ? $", … {keys.Count - 6} more" : "") + "]";
}
