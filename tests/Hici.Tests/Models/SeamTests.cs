using Hici.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.Tests.Models;

/// <summary>The extension points other branches build on (LoRA, attention kinds) keep HF/PEFT key names.</summary>
public class SeamTests
{
    /// <summary>Stand-in for the LoRA branch's LoraLinear: a Linear plus lora_A/lora_B children.</summary>
    private sealed class ToyLora : nn.Module<Tensor, Tensor>
    {
        private Parameter _weight;
        public Linear lora_A;
        public Linear lora_B;

        public ToyLora(Linear baseLinear, int rank) : base(nameof(ToyLora))
        {
            _weight = baseLinear.weight;
            lora_A = nn.Linear(baseLinear.in_features, rank, false);
            lora_B = nn.Linear(rank, baseLinear.out_features, false);
            using (torch.no_grad()) lora_B.weight.zero_();
            register_parameter("weight", _weight);
            RegisterComponents();
        }

        public Parameter weight
        {
            get => _weight;
            set { _weight = value; _internal_params["weight"] = value; }
        }

        public override Tensor forward(Tensor x) => nn.functional.linear(x, _weight) + lora_B.call(lora_A.call(x));
    }

    [Fact]
    public void ProjectionsCanBeSwappedForALoraWrapperWithPeftKeys()
    {
        using var scope = torch.NewDisposeScope();
        using var lm = ModelFixtures.Load("qwen3-gqa", ScalarType.Float32);
        var (ids, _, _) = ModelFixtures.Expected("qwen3-gqa");
        var before = lm.Forward(ids);

        var attn = lm.model.layers[0].self_attn;
        var old = (Linear)attn.q_proj;
        attn.ReplaceProjection("q_proj", new ToyLora(old, rank: 4));

        var names = lm.named_parameters().Select(p => p.name).ToHashSet();
        Assert.Contains("model.layers.0.self_attn.q_proj.weight", names);
        Assert.Contains("model.layers.0.self_attn.q_proj.lora_A.weight", names);
        Assert.Contains("model.layers.0.self_attn.q_proj.lora_B.weight", names);
        // lora_B = 0: the adapted model computes exactly what the base model did
        Assert.Equal(0.0, (lm.Forward(ids) - before).abs().max().item<float>(), 6);
    }

    private sealed class ProbeAttention : Attention
    {
        public Linear local_constructor;
        public Tensor? SeenHidden;

        public ProbeAttention(ModelConfig cfg, int layer) : base(cfg, layer, name: nameof(ProbeAttention))
        {
            local_constructor = nn.Linear(cfg.HiddenSize, cfg.HiddenSize, false);
            RegisterComponents();
        }

        protected override Tensor Attend(AttentionHeads heads, AttentionInput x)
        {
            SeenHidden = x.Hidden.detach().clone().DetachFromDisposeScope();
            var (memK, memV) = ProjectKeyValue(x.Hidden.narrow(1, 0, 2), rope: null);   // own k_proj/v_proj on extra tokens
            Assert.Equal(new long[] { x.Hidden.shape[0], KvHeadsOf(this), 2, HeadDimOf(this) }, memK.shape);
            return base.Attend(heads, x);
        }

        private static long KvHeadsOf(ProbeAttention a) => a.Config.NumKeyValueHeads;
        private static long HeadDimOf(ProbeAttention a) => a.Config.HeadDim;
    }

    [Fact]
    public void AttentionSubclassAddsSubmodulesUnderSelfAttnAndSeesHiddenStates()
    {
        var cfg = ModelFixtures.Config("llama3-gqa-tied");
        using var lm = ModelFixtures.Load("llama3-gqa-tied", ScalarType.Float32);
        var probe = new ProbeAttention(cfg, 1);
        ModuleTree.ReplaceChild(lm.model.layers[1], "self_attn", (Attention)probe).Dispose();
        Assert.Contains(lm.named_parameters(), p => p.name == "model.layers.1.self_attn.local_constructor.weight");
        Assert.Contains(lm.named_parameters(), p => p.name == "model.layers.1.self_attn.q_proj.weight");
        using var logits = lm.Forward(torch.tensor(new long[] { 3, 1, 4, 1, 5 }));
        using var seen = probe.SeenHidden!;
        Assert.Equal(new long[] { 1, 5, cfg.HiddenSize }, seen.shape);
    }
}
