using System.Text.Json;

namespace Hici.IO;

/// <summary>Typed, validated access to one JSON object of a config file; every error names the file and field.</summary>
internal sealed class HfConfigFields
{
    private readonly JsonElement _o;
    private readonly string _path;
    private readonly string _prefix;

    public HfConfigFields(JsonElement o, string path, string prefix = "")
    {
        if (o.ValueKind != JsonValueKind.Object)
            throw new HiciException($"{path}: {(prefix.Length == 0 ? "config" : prefix.TrimEnd('.'))} must be a JSON object, got {o.ValueKind}");
        _o = o;
        _path = path;
        _prefix = prefix;
    }

    public HfConfigFields Nested(JsonElement o, string name) => new(o, _path, _prefix + name + ".");

    public HiciException Error(string field, string problem) => new($"{_path}: {_prefix}{field} {problem}");

    /// <summary>The value, or null when absent or JSON null (HF writes null for "use the default").</summary>
    private JsonElement? Get(string field) =>
        _o.TryGetProperty(field, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public string? String(string field)
    {
        if (Get(field) is not { } v) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw Error(field, $"must be a string, got {v.GetRawText()}");
    }

    public bool? Bool(string field)
    {
        if (Get(field) is not { } v) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(field, $"must be true or false, got {v.GetRawText()}"),
        };
    }

    public JsonElement? Object(string field)
    {
        if (Get(field) is not { } v) return null;
        return v.ValueKind == JsonValueKind.Object ? v : throw Error(field, $"must be an object or null, got {v.GetRawText()}");
    }

    /// <summary>An integer (integral floats such as 8192.0 are accepted, as python's json does).</summary>
    public long? Integer(string field)
    {
        if (Get(field) is not { } v) return null;
        return AsInteger(v) ?? throw Error(field, $"must be an integer, got {v.GetRawText()}");
    }

    /// <param name="max">a bound beyond any real model, where a size would only drive an allocation nothing can fill</param>
    public int? Positive(string field, int max = int.MaxValue)
    {
        if (Integer(field) is not { } n) return null;
        if (n <= 0 || n > int.MaxValue) throw Error(field, $"must be a positive integer, got {n}");
        if (n > max) throw Error(field, $"{n} is larger than any model this reads (at most {max})");
        return (int)n;
    }

    public double? PositiveDouble(string field)
    {
        if (Get(field) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d) || !double.IsFinite(d))
            throw Error(field, $"must be a number, got {v.GetRawText()}");
        if (d <= 0) throw Error(field, $"must be positive, got {v.GetRawText()}");
        return d;
    }

    public int? TokenId(string field, int vocab)
    {
        if (Integer(field) is not { } id) return null;
        return CheckToken(field, id, vocab);
    }

    /// <summary>eos_token_id is an int or, for chat models, a list of ints.</summary>
    public IReadOnlyList<int> TokenIds(string field, int vocab)
    {
        if (Get(field) is not { } v) return Array.Empty<int>();
        if (v.ValueKind != JsonValueKind.Array) return new[] { TokenId(field, vocab)!.Value };
        var ids = new List<int>();
        foreach (var e in v.EnumerateArray())
            ids.Add(CheckToken(field, AsInteger(e) ?? throw Error(field, $"must hold integers, got {e.GetRawText()}"), vocab));
        return ids;
    }

    /// <summary>Old Llama conversions write pad_token_id -1 to mean "none".</summary>
    public int? PadTokenId(int vocab)
    {
        if (Integer("pad_token_id") is not { } id) return null;
        return id < 0 ? null : CheckToken("pad_token_id", id, vocab);
    }

    private int CheckToken(string field, long id, int vocab) =>
        id >= 0 && id < vocab ? (int)id : throw Error(field, $"{id} is outside the vocabulary [0, {vocab})");

    private static long? AsInteger(JsonElement v)
    {
        if (v.ValueKind != JsonValueKind.Number) return null;
        if (v.TryGetInt64(out var n)) return n;
        if (v.TryGetDouble(out var d) && double.IsFinite(d) && Math.Floor(d) == d && Math.Abs(d) < 1e15) return (long)d;
        return null;
    }
}
