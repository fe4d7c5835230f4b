using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Hici.Models;

/// <summary>
/// Token embedding table. Managed (unlike TorchSharp's native nn.Embedding) so it can be built on the meta
/// device and have its weight replaced by the loader, and so a tied lm_head can read the same tensor.
/// </summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")] private Parameter _weight;

    public TokenEmbedding(long vocab, long dim, Device? device = null, ScalarType? dtype = null) : base(nameof(TokenEmbedding))
    {
        _weight = new Parameter(torch.empty(vocab, dim, dtype: dtype, device: device), requires_grad: false);
        _weight.DetachFromDisposeScope();
        RegisterComponents();
    }

    public Parameter weight
    {
        get => _weight;
        set { if (!ReferenceEquals(value, _weight)) { _weight.Dispose(); _weight = value; value.DetachFromDisposeScope(); ConditionallyRegisterParameter("weight", value); } }
    }

    public override Tensor forward(Tensor ids)
    {
        // TorchSharp has no functional.embedding; index_select on the flattened ids is the same gather.
        using var flat = ids.reshape(-1);
        using var rows = _weight.index_select(0, flat);
        var shape = ids.shape.Append(_weight.shape[1]).ToArray();
        return rows.view(shape);
    }
}
