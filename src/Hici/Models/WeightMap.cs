using System.Text.RegularExpressions;

namespace Hici.Models;

/// <summary>
/// The one table that maps checkpoint keys (HF names) to our parameter paths, torchtune style:
/// "{}" stands for the layer index. Our module fields are named after the HF keys, so today every row
/// maps a name to itself; the table still exists so a key that changes name (another checkpoint
/// family, an adapter) is one row here and the loader can list exactly what is missing or extra.
/// </summary>
public static class WeightMap
{
    private static readonly (string Hf, string Ours)[] Table =
    {
        ("model.embed_tokens.weight",                        "model.embed_tokens.weight"),
        ("model.layers.{}.input_layernorm.weight",           "model.layers.{}.input_layernorm.weight"),
        ("model.layers.{}.self_attn.q_proj.weight",          "model.layers.{}.self_attn.q_proj.weight"),
        ("model.layers.{}.self_attn.q_proj.bias",            "model.layers.{}.self_attn.q_proj.bias"),
        ("model.layers.{}.self_attn.k_proj.weight",          "model.layers.{}.self_attn.k_proj.weight"),
        ("model.layers.{}.self_attn.k_proj.bias",            "model.layers.{}.self_attn.k_proj.bias"),
        ("model.layers.{}.self_attn.v_proj.weight",          "model.layers.{}.self_attn.v_proj.weight"),
        ("model.layers.{}.self_attn.v_proj.bias",            "model.layers.{}.self_attn.v_proj.bias"),
        ("model.layers.{}.self_attn.o_proj.weight",          "model.layers.{}.self_attn.o_proj.weight"),
        ("model.layers.{}.self_attn.q_norm.weight",          "model.layers.{}.self_attn.q_norm.weight"),
        ("model.layers.{}.self_attn.k_norm.weight",          "model.layers.{}.self_attn.k_norm.weight"),
        ("model.layers.{}.post_attention_layernorm.weight",  "model.layers.{}.post_attention_layernorm.weight"),
        ("model.layers.{}.mlp.gate_proj.weight",             "model.layers.{}.mlp.gate_proj.weight"),
        ("model.layers.{}.mlp.up_proj.weight",               "model.layers.{}.mlp.up_proj.weight"),
        ("model.layers.{}.mlp.down_proj.weight",             "model.layers.{}.mlp.down_proj.weight"),
        ("model.norm.weight",                                "model.norm.weight"),
        ("lm_head.weight",                                   "lm_head.weight"),
    };

    /// <summary>Checkpoint keys that carry no weights (old checkpoints saved RoPE's inv_freq buffer).</summary>
    private static readonly Regex Ignorable = new(@"^model\.(layers\.\d+\.self_attn\.)?rotary_emb\.inv_freq$", RegexOptions.Compiled);

    private static readonly (Regex Hf, string Ours)[] FromHf =
        Table.Select(r => (Pattern(r.Hf), r.Ours)).ToArray();
    private static readonly (Regex Ours, string Hf)[] FromOurs =
        Table.Select(r => (Pattern(r.Ours), r.Hf)).ToArray();

    private static Regex Pattern(string template) =>
        new("^" + Regex.Escape(template).Replace(@"\{}", @"(\d+)") + "$", RegexOptions.Compiled);

    /// <summary>Our parameter path for a checkpoint key, or null if the table has no row for it. Keys of an
    /// attention implementation's extra modules are their own paths (module field names are the keys).</summary>
    public static string? ToOurs(string hfKey) =>
        Translate(FromHf, hfKey) ?? (AttentionRegistry.IsExtraModuleKey(hfKey) ? hfKey : null);

    /// <summary>The checkpoint key for one of our parameter paths, or null if the table has no row for it.</summary>
    public static string? ToHf(string ourPath) =>
        Translate(FromOurs, ourPath) ?? (AttentionRegistry.IsExtraModuleKey(ourPath) ? ourPath : null);

    /// <summary>
    /// Keys skipped when the model has no parameter for them: RoPE buffers, and the extra modules of an
    /// attention implementation the model does not run (e.g. a merged HiCI export scored with full attention).
    /// </summary>
    public static bool IsIgnorable(string hfKey) => Ignorable.IsMatch(hfKey) || AttentionRegistry.IsExtraModuleKey(hfKey);

    private static string? Translate((Regex From, string To)[] rows, string key)
    {
        foreach (var (from, to) in rows)
        {
            var m = from.Match(key);
            if (m.Success) return m.Groups.Count > 1 ? to.Replace("{}", m.Groups[1].Value) : to;
        }
        return null;
    }
}
