using System.CommandLine;
using Hici.Hierarchical;
using Hici.Loading;
using Hici.Models;

namespace Hici.Cli;

/// <summary>
/// The options that describe a model, defined and bound here only, so they mean the same in every command
/// that loads one (score, generate, audit-causality, and the coming train/eval/profile): the attention
/// implementation and its flags (HiCI: where its config comes from — --hici-config FILE, else the model
/// folder's hici_config.json, else the published defaults — and per-field overrides), the weights put over
/// the folder (--trainable, --adapter, --strict) and how it runs (--dtype, --threads, --device).
/// </summary>
public static class ModelOptions
{
    public static readonly Option<string?> Attention = new("--attention") { Description = $"Attention implementation: {string.Join(" | ", AttentionRegistry.Names)} (default full)" };
    public static readonly Option<string?> Trainable = new("--trainable")
    {
        Description = "The reference's trainable_params.bin (embeddings, norms, HiCI weights; or a .safetensors with its keys) to load over the model",
    };
    public static readonly Option<string?> Adapter = new("--adapter")
    {
        Description = "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors/.bin), applied unmerged after --trainable; covers the HiCI projections too",
    };
    public static readonly Option<bool> Strict = new("--strict") { Description = "Missing or unexpected keys in --trainable or --adapter are errors" };

    /// <summary>Adds every model option (and --dtype, --threads, --device) to a command that loads a model.</summary>
    public static void AddTo(Command cmd)
    {
        cmd.Options.Add(Trainable);
        cmd.Options.Add(Adapter);
        cmd.Options.Add(Strict);
        HiciFlags.AddTo(cmd);
        DualChunkFlags.AddTo(cmd);
        Common.AddComputeOptions(cmd);
    }

    /// <summary>The load request these options describe for the model folder <paramref name="dir"/>
    /// (<paramref name="attention"/>: this setting instead of the one --attention and its flags describe).</summary>
    public static ModelLoadRequest Request(ParseResult pr, string dir, AttentionSetting? attention = null)
    {
        if (!Directory.Exists(dir)) throw new HiciException($"{dir}: no such model folder");
        string? trainable = pr.GetValue(Trainable);
        return new ModelLoadRequest(dir)
        {
            DType = Common.ParseDtype(pr.GetValue(Common.Dtype)!),
            Device = Common.ParseDevice(pr.GetValue(Common.Device)!),
            Attention = attention ?? AttentionSetting(pr, dir, trainable),
            TrainableFile = trainable,
            AdapterDir = pr.GetValue(Adapter),
            Strict = pr.GetValue(Strict),
        };
    }

    /// <summary>
    /// --attention and its flags. With full attention and a HiCI config at hand (flags, --hici-config, the
    /// folder's hici_config.json, or HiCI tensors in --trainable) the model holds and loads the HiCI modules
    /// without running them, as the reference's full-attention evaluation does.
    /// </summary>
    public static AttentionSetting AttentionSetting(ParseResult pr, string? dir, string? trainable)
    {
        string name = (pr.GetValue(Attention) ?? FullAttention.Id).ToLowerInvariant();
        if (!AttentionRegistry.Names.Contains(name))
            throw new HiciException($"--attention: '{name}' is not supported (use {string.Join(" or ", AttentionRegistry.Names)})");
        if (name == DualChunk.DualChunkImplementation.Id) return DualChunk.DualChunkImplementation.Setting(DualChunkFlags.Resolve(pr));
        DualChunkFlags.RefuseWithout(pr, name);
        switch (name)
        {
            case HiciImplementation.Id:
                return HiciAttentionOptions.Setting(HiciFlags.Resolve(pr, dir, always: true)!);
            case FullAttention.Id:
                bool trainableHasHici = false;
                if (trainable is not null)
                {
                    using var tr = TrainableParams.Open(trainable);
                    trainableHasHici = tr.HasHici;
                }
                return HiciFlags.Resolve(pr, dir, always: trainableHasHici) is { } held
                    ? HiciAttentionOptions.Setting(held, run: false)
                    : Models.AttentionSetting.Full;
            default:
                return new AttentionSetting(name);
        }
    }
}

/// <summary>The HiCI flags (part of <see cref="ModelOptions"/>; `info` takes them alone).</summary>
public static class HiciFlags
{
    public static readonly Option<string?> Forward = new("--hici-forward") { Description = "HiCI forward: train | inference (default train)" };
    public static readonly Option<double?> SegmentRatio = new("--segment-ratio") { Description = "HiCI segment length = int(T·R) (default 0.25)" };
    public static readonly Option<int?> SegmentSize = new("--segment-size") { Description = "HiCI fixed segment length (instead of --segment-ratio)" };
    public static readonly Option<string?> CausalMode = new("--causal-mode") { Description = "none | causal_gi | causal_shift | causal_shift_g | causal_gi_gonly" };
    public static readonly Option<string?> ConfigFile = new("--hici-config") { Description = "hici_config.json to use (default: the model folder's, if any)" };
    public static readonly Option<int?> LocalSlots = new("--local-slots") { Description = "HiCI local slots M (default 8)" };
    public static readonly Option<int?> GlobalSlots = new("--global-slots") { Description = "HiCI global slots K (default 4)" };
    public static readonly Option<int?> Heads = new("--hici-heads") { Description = "HiCI module heads h (default 8)" };
    public static readonly Option<int?> Bottleneck = new("--bottleneck") { Description = "HiCI bottleneck width β (default 512)" };
    public static readonly Option<int?> SharedCompressDim = new("--shared-compress-dim") { Description = "HiCI shared compressor width C (default 128)" };

    public static void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { ModelOptions.Attention, Forward, SegmentRatio, SegmentSize, CausalMode, ConfigFile, LocalSlots, GlobalSlots, Heads, Bottleneck, SharedCompressDim })
            cmd.Options.Add(o);
    }

    /// <summary>
    /// The HiCI config for a model folder, or null when there is none and nothing asks for one
    /// (<paramref name="always"/> = false, no HiCI flag, --attention full).
    /// </summary>
    public static HiciConfig? Resolve(ParseResult pr, string? modelDir, bool always = false)
    {
        HiciConfig? cfg = null;
        if (pr.GetValue(ConfigFile) is { } file) cfg = HiciConfig.Load(file);
        else if (modelDir is not null && File.Exists(Path.Combine(modelDir, HiciConfig.FileName)))
            cfg = HiciConfig.Load(Path.Combine(modelDir, HiciConfig.FileName));

        bool anyFlag = pr.GetValue(Forward) is not null || pr.GetValue(SegmentRatio) is not null || pr.GetValue(SegmentSize) is not null
            || pr.GetValue(CausalMode) is not null || pr.GetValue(LocalSlots) is not null || pr.GetValue(GlobalSlots) is not null
            || pr.GetValue(Heads) is not null || pr.GetValue(Bottleneck) is not null || pr.GetValue(SharedCompressDim) is not null;
        if (cfg is null && !anyFlag && !always) return null;
        cfg ??= new HiciConfig();

        if (pr.GetValue(SegmentRatio) is not null && pr.GetValue(SegmentSize) is not null)
            throw new HiciException("give --segment-ratio or --segment-size, not both");
        cfg = cfg with
        {
            LocalSlots = pr.GetValue(LocalSlots) ?? cfg.LocalSlots,
            GlobalSlots = pr.GetValue(GlobalSlots) ?? cfg.GlobalSlots,
            NumHeads = pr.GetValue(Heads) ?? cfg.NumHeads,
            BottleneckDim = pr.GetValue(Bottleneck) ?? cfg.BottleneckDim,
            SharedCompressDim = pr.GetValue(SharedCompressDim) ?? cfg.SharedCompressDim,
            CausalMode = pr.GetValue(CausalMode) is { } m ? HiciConfig.ParseCausalMode(m) : cfg.CausalMode,
            Forward = pr.GetValue(Forward) is { } f ? HiciConfig.ParseForward(f, "--hici-forward") : cfg.Forward,
        };
        if (pr.GetValue(SegmentRatio) is { } r) cfg = cfg with { SegmentRatio = r, SegmentSize = null };
        if (pr.GetValue(SegmentSize) is { } s) cfg = cfg with { SegmentSize = s };
        return cfg.Validate("HiCI flags");
    }
}
