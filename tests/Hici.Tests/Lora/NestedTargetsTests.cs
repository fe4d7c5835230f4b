using Hici.Lora;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Hici.Tests.Lora;

/// <summary>
/// PEFT matches by name suffix, so HiCI's LocalConstructor / GlobalIntegrator projections get LoRA too
/// (target_modules q/k/v/o_proj in the reference's fine-tune_hici.py). These stand-ins have the shapes of that layout: private fields, a
/// [ComponentName] field, and a Linear that is not a target.
/// </summary>
public class NestedTargetsTests
{
    private sealed class Inner : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE1006, CS0649
        private nn.Module<Tensor, Tensor> q_proj;
        [ComponentName(Name = "k_proj")] private readonly nn.Module<Tensor, Tensor> _k;
        public Linear expand;
#pragma warning restore IDE1006, CS0649
        public Inner() : base("Inner")
        {
            q_proj = nn.Linear(4, 4, hasBias: false);
            _k = nn.Linear(4, 4, hasBias: false);
            expand = nn.Linear(4, 6, hasBias: false);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => expand.call(_k.call(q_proj.call(x)));
    }

    private sealed class Outer : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE1006
        public nn.Module<Tensor, Tensor> q_proj;
        public Inner local_constructor;
#pragma warning restore IDE1006
        public Outer() : base("Outer")
        {
            q_proj = nn.Linear(4, 4, hasBias: false);
            local_constructor = new Inner();
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => local_constructor.call(q_proj.call(x));
    }

    private sealed class TypedAsLinear : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE1006
        private readonly Linear q_proj;
#pragma warning restore IDE1006
        public TypedAsLinear() : base("TypedAsLinear") { q_proj = nn.Linear(4, 4); RegisterComponents(); }
        public override Tensor forward(Tensor x) => q_proj.call(x);
    }

    [Fact]
    public void WrapsProjectionsInsideSubmodulesWhateverTheFieldVisibility()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var m = new Outer();
        var x = torch.randn(2, 4);
        var before = m.call(x);
        var paths = LoraApplier.Apply(m, new LoraConfig { R = 2 });
        Assert.Equal(new[] { "local_constructor.k_proj", "local_constructor.q_proj", "q_proj" }, paths.OrderBy(p => p, StringComparer.Ordinal));
        var keys = m.state_dict().Keys.ToHashSet();
        Assert.Contains("local_constructor.q_proj.lora_A.weight", keys);
        Assert.Contains("local_constructor.k_proj.weight", keys);
        Assert.DoesNotContain("local_constructor.expand.lora_A.weight", keys);
        Assert.Equal(0f, (m.call(x) - before).abs().max().item<float>());
        LoraLinearTests.RandomizeB(m);
        Assert.True((m.call(x) - before).abs().max().item<float>() > 0, "the forward does not go through the wrappers");
    }

    [Fact]
    public void AFieldTypedAsLinearIsAClearError()
    {
        var e = Assert.Throws<InvalidOperationException>(() => LoraApplier.Apply(new TypedAsLinear(), new LoraConfig()));
        Assert.Contains("TypedAsLinear.q_proj is declared as Linear", e.Message);
        Assert.Contains("nn.Module<Tensor, Tensor>", e.Message);
    }
}
