using System.Text.Json;

namespace Hici.Text;

/// <summary>Reads the normalizer / pre_tokenizer / post_processor / decoder objects of tokenizer.json.
/// Types HiCI.NET does not implement are refused by name rather than skipped, since skipping one
/// would silently change ids.</summary>
internal static class HfComponents
{
    public static INormalizer Normalizer(JsonFile f, JsonElement n, string where)
    {
        var type = f.RequiredString(n, "type", where);
        return type switch
        {
            "NFC" => new NfcNormalizer(),
            "NFD" => new NfdNormalizer(),
            "Prepend" => new PrependNormalizer(f.RequiredString(n, "prepend", where)),
            "Replace" => new ReplaceNormalizer(Pattern(f, n, where), f.String(n, "content", where) ?? ""),
            "Strip" => new StripNormalizer(f.Bool(n, "strip_left", where, true), f.Bool(n, "strip_right", where, true)),
            "Sequence" => new SequenceNormalizer(f.Array(n, "normalizers", where).EnumerateArray()
                .Select((x, i) => Normalizer(f, x, $"{where}.normalizers[{i}]")).ToList()),
            _ => throw f.Error($"{where}.type", $"normalizer '{type}' is not supported (supported: NFC, NFD, Prepend, Replace, Strip, Sequence)"),
        };
    }

    public static IPreTokenizer PreTokenizer(JsonFile f, JsonElement p, string where)
    {
        var type = f.RequiredString(p, "type", where);
        switch (type)
        {
            case "Split":
                var behavior = f.String(p, "behavior", where) ?? "Isolated";
                if (!Enum.TryParse<SplitBehavior>(behavior, ignoreCase: true, out var b))
                    throw f.Error($"{where}.behavior", $"'{behavior}' is not a Split behavior");
                return new SplitPreTokenizer(Pattern(f, p, where), b, f.Bool(p, "invert", where, false));
            case "ByteLevel":
                return new ByteLevelPreTokenizer(f.Bool(p, "add_prefix_space", where, true), f.Bool(p, "use_regex", where, true));
            case "Metaspace":
                var (replacement, prepend) = MetaspaceOptions(f, p, where);
                return new MetaspacePreTokenizer(replacement, prepend, f.Bool(p, "split", where, true));
            case "Sequence":
                return new SequencePreTokenizer(f.Array(p, "pretokenizers", where).EnumerateArray()
                    .Select((x, i) => PreTokenizer(f, x, $"{where}.pretokenizers[{i}]")).ToList());
            default:
                throw f.Error($"{where}.type", $"pre-tokenizer '{type}' is not supported (supported: Split, ByteLevel, Metaspace, Sequence)");
        }
    }

    static (char, MetaspacePrepend) MetaspaceOptions(JsonFile f, JsonElement p, string where)
    {
        var rep = f.RequiredString(p, "replacement", where);
        if (rep.Length != 1) throw f.Error($"{where}.replacement", "expected one character");
        var scheme = f.String(p, "prepend_scheme", where);
        var prepend = scheme switch
        {
            null => f.Bool(p, "add_prefix_space", where, true) ? MetaspacePrepend.Always : MetaspacePrepend.Never,
            "always" => MetaspacePrepend.Always,
            "first" => MetaspacePrepend.First,
            "never" => MetaspacePrepend.Never,
            _ => throw f.Error($"{where}.prepend_scheme", $"'{scheme}' is not always/first/never"),
        };
        return (rep[0], prepend);
    }

    static ISplitPattern Pattern(JsonFile f, JsonElement owner, string where)
    {
        var pattern = f.Object(owner, "pattern", where);
        if (f.String(pattern, "Regex", $"{where}.pattern") is { } regex) return SplitPatterns.FromRegex(regex, f.Path);
        if (f.String(pattern, "String", $"{where}.pattern") is { } literal) return SplitPatterns.FromString(literal);
        throw f.Error($"{where}.pattern", "expected {\"String\": ...} or {\"Regex\": ...}");
    }

    public static IDecoder Decoder(JsonFile f, JsonElement d, string where)
    {
        var type = f.RequiredString(d, "type", where);
        switch (type)
        {
            case "ByteLevel": return new ByteLevelDecoder();
            case "ByteFallback": return new ByteFallbackDecoder();
            case "Fuse": return new FuseDecoder();
            case "Replace": return new ReplaceDecoder(Pattern(f, d, where), f.String(d, "content", where) ?? "");
            case "Strip":
                var content = f.RequiredString(d, "content", where);
                if (content.Length != 1) throw f.Error($"{where}.content", "expected one character");
                return new StripDecoder(content[0], f.Int(d, "start", where, 0), f.Int(d, "stop", where, 0));
            case "Metaspace":
                var (replacement, prepend) = MetaspaceOptions(f, d, where);
                return new MetaspaceDecoder(replacement, prepend);
            case "Sequence":
                return new SequenceDecoder(f.Array(d, "decoders", where).EnumerateArray()
                    .Select((x, i) => Decoder(f, x, $"{where}.decoders[{i}]")).ToList());
            default:
                throw f.Error($"{where}.type", $"decoder '{type}' is not supported (supported: ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace, Sequence)");
        }
    }

    public static IPostProcessor PostProcessor(JsonFile f, JsonElement p, string where)
    {
        var type = f.RequiredString(p, "type", where);
        switch (type)
        {
            case "ByteLevel": return new IdentityPostProcessor();
            case "Sequence":
                return new SequencePostProcessor(f.Array(p, "processors", where).EnumerateArray()
                    .Select((x, i) => PostProcessor(f, x, $"{where}.processors[{i}]")).ToList());
            case "TemplateProcessing":
                return Template(f, p, where);
            case "RobertaProcessing":
            case "BertProcessing":
                int[] Special(string name)
                {
                    var pair = f.Array(p, name, where);
                    if (pair.GetArrayLength() != 2 || pair[1].ValueKind != JsonValueKind.Number)
                        throw f.Error($"{where}.{name}", "expected [token, id]");
                    return [pair[1].GetInt32()];
                }
                return new TemplatePostProcessor([Special("cls"), null, Special("sep")]);
            default:
                throw f.Error($"{where}.type", $"post-processor '{type}' is not supported (supported: TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence)");
        }
    }

    static TemplatePostProcessor Template(JsonFile f, JsonElement p, string where)
    {
        var specials = new Dictionary<string, int[]>();
        if (f.Get(p, "special_tokens") is { ValueKind: JsonValueKind.Object } st)
            foreach (var prop in st.EnumerateObject())
            {
                var ids = f.Array(prop.Value, "ids", $"{where}.special_tokens[{HfTokenizerLoader.Quote(prop.Name)}]");
                specials[prop.Name] = ids.EnumerateArray().Select(x => x.TryGetInt32(out int v) && v >= 0 ? v
                    : throw f.Error($"{where}.special_tokens[{HfTokenizerLoader.Quote(prop.Name)}].ids", "expected non-negative integers")).ToArray();
            }
        var pieces = new List<int[]?>();
        int i = 0;
        foreach (var item in f.Array(p, "single", where).EnumerateArray())
        {
            var at = $"{where}.single[{i++}]";
            if (f.Get(item, "SpecialToken") is { } sp)
            {
                var id = f.RequiredString(sp, "id", at + ".SpecialToken");
                pieces.Add(specials.TryGetValue(id, out var ids) ? ids : throw f.Error(at, $"special token {HfTokenizerLoader.Quote(id)} is not in {where}.special_tokens"));
            }
            else if (f.Get(item, "Sequence") is { } seq)
            {
                if (f.RequiredString(seq, "id", at + ".Sequence") != "A") throw f.Error(at, "a single-sequence template can only use sequence A");
                pieces.Add(null);
            }
            else throw f.Error(at, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
        }
        return new TemplatePostProcessor(pieces);
    }
}
