using Hici.Models;

namespace Hici.Hierarchical;

/// <summary>
/// HiCI parameter counts for a model (as the reference's training logs print them): per layer, in total, and their share. The share the
/// reference prints (and the paper's "&lt;5.5%") counts HiCI in the denominator: HiCI / (base + HiCI).
/// Counted from the configs alone, so it works for a folder holding only config.json.
/// </summary>
public sealed record HiciParameterCount(long PerLayer, int Layers, long BaseParameters)
{
    public long Total => PerLayer * Layers;
    /// <summary>HiCI / (base + HiCI): the reference's printed share (5.46% for Llama-2-7B).</summary>
    public double ShareOfModel => (double)Total / (BaseParameters + Total);
    /// <summary>HiCI / base (5.77% for Llama-2-7B).</summary>
    public double ShareOfBase => (double)Total / BaseParameters;

    public static HiciParameterCount For(ModelConfig model, HiciConfig hici)
    {
        hici.ValidateFor(model.HiddenSize);
        return new HiciParameterCount(hici.ParametersPerLayer(model.HiddenSize), model.NumHiddenLayers, BaseParameterCount(model));
    }

    /// <summary>Parameters of the plain decoder (HF LlamaForCausalLM / Qwen3ForCausalLM) described by the config.</summary>
    public static long BaseParameterCount(ModelConfig c)
    {
        long h = c.HiddenSize, v = c.VocabSize, d = c.HeadDim, nq = c.NumAttentionHeads, nkv = c.NumKeyValueHeads;
        long attn = h * nq * d + 2 * h * nkv * d + nq * d * h;
        if (c.AttentionBias) attn += nq * d + 2 * nkv * d;
        if (c.UsesQkNorm) attn += 2 * d;
        long mlp = 3 * h * c.IntermediateSize;
        long layer = attn + mlp + 2 * h;
        long embed = v * h, head = c.TieWordEmbeddings ? 0 : v * h;
        return embed + c.NumHiddenLayers * layer + h + head;
    }

    public override string ToString() =>
        $"HiCI parameters: {PerLayer:N0} per layer × {Layers} layers = {Total:N0} " +
        $"({ShareOfModel * 100:F2}% of base + HiCI {BaseParameters + Total:N0}; {ShareOfBase * 100:F2}% of base {BaseParameters:N0})";
}
