using Hici.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Models;

/// <param name="InputIds">int64 token ids [B, L]: the new tokens (all of them without a cache)</param>
/// <param name="State">positions already processed (a KV cache); the new tokens continue it and are appended to it</param>
/// <param name="LastOnly">return logits for the last position only (generation) instead of all L</param>
/// <param name="AttentionMask">optional padding mask [B, cached + L] (HF attention_mask: nonzero = real token);
/// padded keys are never attended. Positions stay 0..T−1, so padding belongs on the right.</param>
public sealed record CausalLMInput(Tensor InputIds, IModelState? State = null, bool LastOnly = false, Tensor? AttentionMask = null);

/// <summary>Logits [B, L (or 1), vocab] in the model dtype.</summary>
public sealed record CausalLMOutput(Tensor Logits);

/// <summary>
/// Decoder-only language model (HF LlamaForCausalLM / Qwen3ForCausalLM) with the attention implementation
/// its config names. Built on the meta device, so construction allocates nothing; <see cref="LoadWeights"/>
/// materialises every parameter from a checkpoint in the requested dtype and device. With tied embeddings
/// there is no lm_head module: the logits reuse model.embed_tokens.weight.
/// </summary>
public sealed class CausalLM : nn.Module<CausalLMInput, CausalLMOutput>, ICausalLM
{
    public DecoderModel model;
    public nn.Module<Tensor, Tensor>? lm_head;

    public ModelConfig Config { get; }
    public ScalarType DType { get; }
    public Device Device { get; }
    public long VocabSize => Config.VocabSize;
    public long? MaxPositionEmbeddings => Config.MaxPositionEmbeddings;
    public IReadOnlyList<int> EosTokenIds => Config.EosTokenIds;
    /// <summary>The attention implementation the model runs (<see cref="ModelConfig.Attention"/>).</summary>
    public AttentionImplementation AttentionImplementation => AttentionRegistry.For(Config);

    private CausalLM(ModelConfig cfg, ScalarType dtype, Device device) : base(nameof(CausalLM))
    {
        Config = cfg;
        DType = dtype;
        Device = device;
        model = new DecoderModel(cfg, torch.META, device, dtype);
        if (!cfg.TieWordEmbeddings) lm_head = nn.Linear(cfg.HiddenSize, cfg.VocabSize, false, torch.META, dtype);
        RegisterComponents();
    }

    /// <summary>An unloaded model: the right shapes on the meta device (enough for parameter counts).</summary>
    public static CausalLM Create(ModelConfig cfg, ScalarType dtype, Device? device = null)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16))
            throw new HiciException($"dtype {dtype} is not supported (float32 or bfloat16)");
        ValidateConfig(cfg);
        var impl = AttentionRegistry.For(cfg);
        cfg = cfg with { Attention = cfg.Attention with { Options = impl.ValidateOptions(cfg.Attention.Options, cfg) } };
        return new CausalLM(cfg, dtype, device ?? torch.CPU);
    }

    /// <summary>Creates the model and loads every weight from <paramref name="weights"/> (which the caller keeps).</summary>
    public static CausalLM Load(ModelConfig cfg, IWeightSource weights, ScalarType dtype, Device? device = null)
    {
        var m = Create(cfg, dtype, device);
        try { m.LoadWeights(weights); return m; }
        catch { m.Dispose(); throw; }
    }

    /// <summary>
    /// Loads an HF checkpoint folder (config.json + safetensors, single or sharded) in <paramref name="dtype"/>
    /// through <see cref="Hici.Loading.ModelLoader"/> (which also takes trainable weights and adapters).
    /// <paramref name="attention"/> selects the attention implementation and its options (not stored in
    /// config.json; options null = what the folder holds for it, e.g. hici_config.json).
    /// </summary>
    public static CausalLM FromPretrained(string dir, ScalarType dtype, Device? device = null, AttentionSetting? attention = null)
    {
        var loaded = Hici.Loading.ModelLoader.Load(new Hici.Loading.ModelLoadRequest(dir)
        {
            DType = dtype, Device = device, Attention = attention ?? AttentionSetting.Full,
        });
        if (loaded.Model is CausalLM lm) return lm;
        loaded.Dispose();
        throw new HiciException($"{dir}: model_type is not a Llama/Qwen3 decoder; load it with ModelLoader.Load");
    }

    /// <summary>Loads every weight, the source first prepared by the attention implementation (e.g. legacy key
    /// names, shapes checked against its options).</summary>
    public WeightLoadReport LoadWeights(IWeightSource weights, WeightLoadOptions? options = null)
    {
        var report = WeightLoader.Load(this, AttentionImplementation.PrepareCheckpoint(Config, weights), options);
        SetWeightLayout(options?.Layout ?? WeightLayout.Preferred);
        return report;
    }

    /// <summary>How the projection weights are stored (<see cref="WeightLayout"/>); set by <see cref="LoadWeights"/>.</summary>
    public WeightLayout.Kind Layout { get; private set; } = WeightLayout.Kind.Row;

    /// <summary>Stores every plain Linear projection and the untied lm_head in layout <paramref name="kind"/> and packs
    /// q/k/v and gate/up (<see cref="PackProjections"/>). Values, parameter names and keys stay the same.</summary>
    public void SetWeightLayout(WeightLayout.Kind kind)
    {
        Layout = kind;
        PackProjections();
        foreach (var layer in model.layers) { WeightLayout.Apply(layer.self_attn.o_proj, kind); WeightLayout.Apply(layer.mlp.down_proj, kind); }
        if (lm_head is not null) WeightLayout.Apply(lm_head, kind);
    }

    /// <summary>
    /// Packs every layer's q/k/v and gate/up projections for one-GEMM inference (<see cref="PackedProjections"/>;
    /// weights, keys and memory unchanged). Done by <see cref="LoadWeights"/>; call again after replacing weights.
    /// </summary>
    /// <param name="enable">false: back to one GEMM per projection (weights stay where they are; for A/B benchmarks)</param>
    public void PackProjections(bool enable = true)
    {
        foreach (var layer in model.layers) { layer.self_attn.PackProjections(enable, Layout); layer.mlp.PackProjections(enable, Layout); }
    }

    /// <summary>True once no parameter is a meta placeholder.</summary>
    public bool IsMaterialized => parameters().All(p => !p.is_meta);

    public override CausalLMOutput forward(CausalLMInput x)
    {
        if (!IsMaterializedFast()) throw new HiciException("the model has no weights yet (built on the meta device); call LoadWeights first");
        using var scope = torch.NewDisposeScope();
        var h = model.call(new DecoderModelInput(x.InputIds, x.State, x.AttentionMask));
        if (x.LastOnly) h = h.narrow(1, h.shape[1] - 1, 1);
        return new CausalLMOutput(LmHead(h).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The final normalised hidden states [B, L, hidden] (no lm_head), same inputs as <see cref="Forward"/>.
    /// For scoring a long sequence in one forward (HiCI segments need it whole) without holding [L, vocab] logits.
    /// </summary>
    public Tensor Hidden(Tensor ids, IModelState? state = null, Tensor? attentionMask = null)
    {
        if (!IsMaterializedFast()) throw new HiciException("the model has no weights yet (built on the meta device); call LoadWeights first");
        using var scope = torch.NewDisposeScope();
        var batched = ids.dim() == 1 ? ids.unsqueeze(0) : ids;
        if (batched.dtype != ScalarType.Int64) batched = batched.to(ScalarType.Int64);
        if (batched.device != Device) batched = batched.to(Device);
        var mask = attentionMask is null ? null : (attentionMask.dim() == 1 ? attentionMask.unsqueeze(0) : attentionMask).to(ScalarType.Bool).to(Device);
        return model.call(new DecoderModelInput(batched, state, mask)).MoveToOuterDisposeScope();
    }

    /// <summary>Logits for hidden states [.., hidden] from <see cref="Hidden"/> (lm_head, or the tied embedding).</summary>
    /// <remarks>
    /// The rows go through as a 2-D [rows, hidden] tensor with fresh strides. A last-position slice
    /// (<c>narrow(1, L-1, 1)</c> of [1, L, hidden]) is "contiguous" but keeps the stride L·hidden on its size-1
    /// dims, and libtorch 2.10 sends such a bf16 input to a naive GEMM: 36 ms instead of 1 ms for the 58M bench
    /// model's [32000, 512] head (fp32 is unaffected). Same kernel result, bit for bit.
    /// </remarks>
    public Tensor LmHead(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        long[] shape = hidden.shape;
        var rows = hidden.reshape(-1, shape[^1]).contiguous();
        var logits = lm_head is null ? nn.functional.linear(rows, model.embed_tokens.weight) : lm_head.call(rows);
        shape[^1] = logits.shape[^1];
        return logits.view(shape).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Logits [B, L, vocab] for <paramref name="ids"/> ([B, L] or [L]), continuing <paramref name="state"/> if given.
    /// <paramref name="attentionMask"/>: optional [B, cached + L] (or [cached + L]) padding mask, nonzero = real token.
    /// </summary>
    public Tensor Forward(Tensor ids, IModelState? state = null, bool lastOnly = false, Tensor? attentionMask = null)
    {
        using var scope = torch.NewDisposeScope();
        var batched = ids.dim() == 1 ? ids.unsqueeze(0) : ids;
        if (batched.dtype != ScalarType.Int64) batched = batched.to(ScalarType.Int64);
        if (batched.device != Device) batched = batched.to(Device);
        var mask = attentionMask;
        if (mask is not null)
        {
            if (mask.dim() == 1) mask = mask.unsqueeze(0);
            mask = mask.to(ScalarType.Bool);
            if (mask.device != Device) mask = mask.to(Device);
        }
        return call(new CausalLMInput(batched, state, lastOnly, mask)).Logits.MoveToOuterDisposeScope();
    }

    /// <summary>A preallocated cache for up to <paramref name="maxLength"/> positions.</summary>
    public KvCache NewCache(long maxLength, long batch = 1) => new(Config, batch, maxLength, DType, Device);

    /// <summary>The model's state: a preallocated <see cref="KvCache"/>.</summary>
    public IModelState NewState(long maxLength, long batch = 1) => NewCache(maxLength, batch);

    // The loader assigns all parameters or none, so one parameter witnesses the rest (checking all costs per call).
    private bool IsMaterializedFast() => !model.embed_tokens.weight.is_meta;

    private static void ValidateConfig(ModelConfig c)
    {
        var bad = new List<string>();
        if (c.ModelType is not ("llama" or "qwen3")) bad.Add($"model_type '{c.ModelType}' (supported: llama, qwen3)");
        if (c.NumAttentionHeads <= 0 || c.NumKeyValueHeads <= 0 || c.NumAttentionHeads % c.NumKeyValueHeads != 0)
            bad.Add($"num_attention_heads {c.NumAttentionHeads} is not a multiple of num_key_value_heads {c.NumKeyValueHeads}");
        if (c.HeadDim <= 0 || c.HeadDim % 2 != 0) bad.Add($"head_dim {c.HeadDim} must be positive and even (RoPE rotates pairs)");
        if (c.HiddenSize <= 0 || c.VocabSize <= 0 || c.NumHiddenLayers <= 0 || c.IntermediateSize <= 0)
            bad.Add("hidden_size, vocab_size, num_hidden_layers and intermediate_size must be positive");
        if (bad.Count > 0) throw new HiciException("unsupported model config: " + string.Join("; ", bad));
    }
}
