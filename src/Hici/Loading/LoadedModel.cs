using Hici.Hierarchical;
using Hici.Lora;
using Hici.Models;

namespace Hici.Loading;

/// <summary>A loaded model and what its loads found.</summary>
public sealed class LoadedModel : IDisposable
{
    public required ICausalLM Model { get; init; }
    public required WeightLoadReport Base { get; init; }
    public TrainableLoadReport? Trainable { get; init; }
    public PeftLoadReport? Adapter { get; init; }
    /// <summary>Remarks of the load (e.g. extra-module tensors that no checkpoint held and the setting does not use).</summary>
    public IReadOnlyList<string> Notes { get; init; } = Array.Empty<string>();

    /// <summary>The model as a Llama/Qwen3 <see cref="CausalLM"/> (the model types this build loads itself).</summary>
    public CausalLM Transformer => Model as CausalLM ?? throw new HiciException($"the model is a {Model.GetType().Name}, not a Llama/Qwen3 CausalLM");

    public IEnumerable<string> ReportLines()
    {
        if (Trainable is not null) foreach (var l in Trainable.Lines()) yield return l;
        if (Adapter is not null)
        {
            var lines = Adapter.Lines().ToList();
            yield return $"adapter     {lines[0]["adapter ".Length..]}" + (Adapter.Loaded.Any(HiciKeys.IsInHiciModule)
                ? $" ({Adapter.Loaded.Count(HiciKeys.IsInHiciModule)} of them inside the HiCI modules)" : "");
            foreach (var l in lines.Skip(1)) yield return "  " + l.Trim();
        }
        foreach (var n in Notes) yield return $"note        {n}";
    }

    public void Dispose() => Model.Dispose();
}
