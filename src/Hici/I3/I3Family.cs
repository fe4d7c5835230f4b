using Hici.Loading;
using Hici.Models;
using TorchSharp;

namespace Hici.I3;

/// <summary>Loads i3 folders (config.json with model_type "i3", model.safetensors, tokenizer.json) for every command.</summary>
public sealed class I3Family : IModelFamily
{
    public static readonly I3Family Instance = new();

    public ModelPlan Plan(ModelLoadRequest request)
    {
        var cfg = I3Config.Load(request.ModelDir);
        CheckRequest(request);
        return new ModelPlan(null, cfg.VocabSize, null, I3Tokenizer.StopIds)
        {
            DescribeAttention = tokens => ($"i3: {cfg.NRwkvLayers} RWKV-4 + {cfg.NAttnLayers} attention layers over [≤ {cfg.MaxCompressedChunks}×{cfg.LatentsPerChunk} latents ; {cfg.KernelWindow}-token chunk]" +
                $" ({(tokens + cfg.KernelWindow - 1) / cfg.KernelWindow} chunks)", null),
            ScoresWholeSequence = false,
        };
    }

    public LoadedModel Load(ModelLoadRequest request)
    {
        CheckRequest(request);
        var m = I3Model.FromPretrained(request.ModelDir, request.Device);
        return new LoadedModel { Model = m, Base = new WeightLoadReport(m.parameters().Count(), [], []) };
    }

    private static void CheckRequest(ModelLoadRequest r)
    {
        if (r.DType != torch.ScalarType.Float32) throw new HiciException($"{r.ModelDir}: i3 models run in float32 only (WKV's max-shifted state needs it); pass --dtype fp32");
        if (r.TrainableFile is not null || r.AdapterDir is not null) throw new HiciException($"{r.ModelDir}: --trainable/--adapter are not supported for i3 models");
        if (r.Attention.Name != AttentionSetting.Full.Name) throw new HiciException($"{r.ModelDir}: --attention does not apply to i3 models");
    }
}
