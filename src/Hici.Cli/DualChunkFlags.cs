using System.CommandLine;
using Hici.DualChunk;

namespace Hici.Cli;

/// <summary>The flags of --attention chunk (part of <see cref="ModelOptions"/>), named after ChunkLlama's
/// replace_with_chunkllama(pretraining_length, local_window_size).</summary>
public static class DualChunkFlags
{
    public static readonly Option<int?> PretrainingLength = new("--pretraining-length")
    {
        Description = "chunk: the model's pretraining length L; chunk size = L·3/4 (default: max_position_embeddings)",
    };
    public static readonly Option<int?> LocalWindow = new("--local-window")
    {
        Description = "chunk: local window (default L/8 for Llama, L/16 for Qwen3, as the reference)",
    };
    public static readonly Option<string?> MergeWeights = new("--chunk-merge")
    {
        Description = "chunk: prefill merge weights bf16 | fp32 (default: bf16 for Llama, as chunkllama_attn_replace.py; fp32 for Qwen3)",
    };
    public static readonly Option<string?> Mscale = new("--chunk-mscale")
    {
        Description = "chunk: sticky | off — Llama's mscale of the longest input seen (default sticky for Llama, off for Qwen3)",
    };

    public static void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { PretrainingLength, LocalWindow, MergeWeights, Mscale }) cmd.Options.Add(o);
    }

    /// <summary>The options these flags give (validated against the model config when it is loaded).</summary>
    public static DualChunkOptions Resolve(ParseResult pr) => new()
    {
        PretrainingLength = pr.GetValue(PretrainingLength),
        LocalWindow = pr.GetValue(LocalWindow),
        Bf16MergeWeights = pr.GetValue(MergeWeights)?.ToLowerInvariant() switch
        {
            null => null,
            "bf16" => true,
            "fp32" => false,
            var s => throw new HiciException($"--chunk-merge: '{s}' is not supported (use bf16 or fp32)"),
        },
        Mscale = pr.GetValue(Mscale) is { } m ? DualChunkOptions.ParseMscale(m) : null,
    };

    /// <summary>A chunk flag without --attention chunk is a mistake worth saying.</summary>
    public static void RefuseWithout(ParseResult pr, string attention)
    {
        foreach (var o in new Option[] { PretrainingLength, LocalWindow, MergeWeights, Mscale })
            if (pr.GetResult(o) is { Implicit: false })
                throw new HiciException($"{o.Name} is an option of --attention chunk (this run uses {attention})");
    }
}
