using Hici.Hierarchical;
using Hici.Models;

namespace Hici.Tests;

/// <summary>The attention a test asks for, in the terms the tests were written in.</summary>
public enum AttentionKind { Full, Hici, Chunk }

public static class TestAttention
{
    /// <summary>
    /// full without a HiCI config = plain attention; full with one = HiCI modules held, not run; hici = HiCI
    /// (null config: the setting without options, which the model refuses).
    /// </summary>
    public static AttentionSetting Setting(AttentionKind kind, HiciConfig? hici) => kind switch
    {
        AttentionKind.Full when hici is null => AttentionSetting.Full,
        AttentionKind.Full => HiciAttentionOptions.Setting(hici, run: false),
        AttentionKind.Hici when hici is null => new AttentionSetting(HiciImplementation.Id),
        AttentionKind.Hici => HiciAttentionOptions.Setting(hici),
        _ => new AttentionSetting(kind.ToString().ToLowerInvariant()),
    };
}
