using System.CommandLine;
using Hici.Hierarchical;
using Hici.Models;

namespace Hici.Cli;

/// <summary>
/// The HiCI flags shared by the commands that build a model (score, info, …): where the HiCI config comes
/// from (--hici-config FILE, else the model folder's hici_config.json, else the published defaults) and the
/// per-field overrides.
/// </summary>
public static class HiciOptions
{
    public static readonly Option<string?> Attention = new("--attention") { Description = "Attention: full | hici (default full)" };
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
        foreach (var o in new Option[] { Attention, Forward, SegmentRatio, SegmentSize, CausalMode, ConfigFile, LocalSlots, GlobalSlots, Heads, Bottleneck, SharedCompressDim })
            cmd.Options.Add(o);
    }

    public static AttentionKind AttentionKind(ParseResult pr) => (pr.GetValue(Attention) ?? "full").ToLowerInvariant() switch
    {
        "full" => Models.AttentionKind.Full,
        "hici" => Models.AttentionKind.Hici,
        var s => throw new HiciException($"--attention: '{s}' is not supported (use full or hici)"),
    };

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
        if (cfg is null && !anyFlag && !always && AttentionKind(pr) != Models.AttentionKind.Hici) return null;
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
