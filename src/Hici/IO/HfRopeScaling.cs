using System.Text.Json;
using Hici.Models;

namespace Hici.IO;

/// <summary>The <c>rope_scaling</c> block of a HF config: linear, dynamic (NTK) or llama3; "default" or null is none.</summary>
internal static class HfRopeScaling
{
    private static readonly string[] Supported = { "linear", "dynamic", "llama3" };

    public static RopeScaling? Read(HfConfigFields c)
    {
        var rs = c.Object("rope_scaling");
        if (rs is null) return null;
        var s = c.Nested(rs.Value, "rope_scaling");
        // transformers reads "rope_type" first and falls back to the legacy "type".
        var type = s.String("rope_type") ?? s.String("type") ?? throw c.Error("rope_scaling", "has neither 'rope_type' nor 'type'");
        if (type == "default") return null;
        if (!Supported.Contains(type))
            throw c.Error("rope_scaling", $"type '{type}' is not supported (supported: {string.Join(", ", Supported)})");
        double factor = s.PositiveDouble("factor") ?? throw s.Error("factor", "is missing");
        if (factor < 1.0) throw s.Error("factor", $"{factor} must be at least 1");
        int? original = s.Positive("original_max_position_embeddings");
        if (type != "llama3") return new RopeScaling(type, factor, original);

        double low = s.PositiveDouble("low_freq_factor") ?? throw s.Error("low_freq_factor", "is missing");
        double high = s.PositiveDouble("high_freq_factor") ?? throw s.Error("high_freq_factor", "is missing");
        if (high <= low) throw s.Error("high_freq_factor", $"{high} must be greater than low_freq_factor {low}");
        if (original is null) throw s.Error("original_max_position_embeddings", "is missing");
        return new RopeScaling(type, factor, original, low, high);
    }
}
