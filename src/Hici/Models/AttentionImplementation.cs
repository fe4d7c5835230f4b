using Hici.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>
/// Which attention implementation a model runs, by its registered name, and that implementation's options
/// record (null when it has none). Not part of config.json: chosen when the model is loaded.
/// </summary>
public sealed record AttentionSetting(string Name, object? Options = null)
{
    public static readonly AttentionSetting Full = new(FullAttention.Id);
}

/// <summary>
/// An attention implementation selectable by name (see <see cref="AttentionRegistry"/>). It brings its
/// modules (every kind is an <see cref="Attention"/>: same q/k/v/o weights and keys), its options record
/// and their validation, the checkpoint keys of its extra modules, and how a checkpoint is prepared for it.
/// Extra submodules are fields of the Attention subclass, so their keys read
/// <c>model.layers.N.self_attn.&lt;field&gt;.*</c> and need no mapping.
/// </summary>
public abstract class AttentionImplementation
{
    public abstract string Name { get; }

    /// <summary>One line for --help: what it is.</summary>
    public abstract string Summary { get; }

    /// <summary>
    /// Checks <paramref name="options"/> (the setting's options record) for this model config and returns
    /// them, normalised; a HiciException says what is wrong.
    /// </summary>
    public virtual object? ValidateOptions(object? options, ModelConfig cfg) =>
        options is null ? null : throw new HiciException($"attention '{Name}' takes no options (got {options.GetType().Name})");

    /// <summary>Options found in a model folder (e.g. a config file the implementation wrote beside the
    /// weights), used when a load request names none; null = none there.</summary>
    public virtual object? OptionsFromFolder(string modelDir) => null;

    /// <summary>The attention modules of all layers of one model (shared per-model parts, e.g. a seeded
    /// segmenter, are created here once).</summary>
    public abstract IReadOnlyList<Attention> CreateLayers(ModelConfig cfg, Device? device, ScalarType? dtype);

    /// <summary>One attention module per layer, made by <paramref name="make"/>(layer index).</summary>
    protected static IReadOnlyList<Attention> PerLayer(ModelConfig cfg, Func<int, Attention> make) =>
        Enumerable.Range(0, cfg.NumHiddenLayers).Select(make).ToArray();

    /// <summary>True for a checkpoint key of this implementation's extra modules (also legacy spellings).
    /// Such keys are identical to our parameter paths; a model built without the modules ignores them.</summary>
    public virtual bool OwnsKey(string key) => false;

    /// <summary>The source as this implementation reads it (e.g. legacy key names, shape checks against its
    /// options with clear errors). Must not own or dispose <paramref name="src"/>.</summary>
    public virtual IWeightSource PrepareCheckpoint(ModelConfig cfg, IWeightSource src) => src;

    /// <summary>
    /// After loading: <paramref name="notLoaded"/> are this implementation's tensors that none of the
    /// checkpoints <paramref name="origins"/> held (left zero). Throw when the setting needs them; return a
    /// note (or null) when it does not.
    /// </summary>
    public virtual string? CheckNotLoaded(ModelConfig cfg, IReadOnlyList<string> notLoaded, IReadOnlyList<string> origins) => null;

    /// <summary>
    /// One line on what runs for a <paramref name="tokens"/>-token forward; <paramref name="warning"/> when
    /// the setting makes predictions see later tokens. May throw for lengths the setting cannot run.
    /// </summary>
    public virtual string Describe(ModelConfig cfg, int tokens, out string? warning)
    {
        warning = null;
        return Name;
    }

    /// <summary>True when a sequence must be run in one forward to be scored (chunks through a state would
    /// see something else, e.g. HiCI's segment memory).</summary>
    public virtual bool ScoresWholeSequence(ModelConfig cfg) => false;
}
