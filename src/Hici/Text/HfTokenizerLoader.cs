using System.Text.Json;

namespace Hici.Text;

internal sealed record HfTokenizerParts(
    INormalizer? Normalizer, IPreTokenizer? PreTokenizer, BpeModel Model, IPostProcessor? PostProcessor,
    IDecoder? Decoder, string?[] IdToToken, Dictionary<string, int> TokenToId, IReadOnlyList<AddedToken> AddedTokens,
    string? BosToken, string? EosToken, bool CleanUpTokenizationSpaces, string? ChatTemplate, string? TokenizerClass,
    string SourcePath, string? ConfigPath);

/// <summary>Builds an <see cref="HfTokenizer"/> from tokenizer.json + tokenizer_config.json, rejecting
/// anything it cannot reproduce exactly with an error that names the file and the field.</summary>
internal static class HfTokenizerLoader
{
    public const long MaxTokenizerJsonBytes = 512L << 20;
    public const long MaxConfigBytes = 16L << 20;
    public const int MaxIds = 16_000_000;

    // transformers' LlamaTokenizerFast & co. rebuild the post-processor from add_bos_token/add_eos_token.
    static readonly HashSet<string> BosEosFromConfigClasses =
        ["LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast"];

    public static HfTokenizerParts Load(string path)
    {
        Hici.IO.InputFiles.CheckPath(path, "tokenizer");
        string jsonPath = Directory.Exists(path) ? System.IO.Path.Combine(path, "tokenizer.json") : path;
        if (!File.Exists(jsonPath))
            throw new HiciException(Directory.Exists(path)
                ? $"{path}: no tokenizer.json in this folder (expected a Hugging Face tokenizer folder)"
                : $"{path}: file or folder not found");
        string configPath = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(jsonPath))!, "tokenizer_config.json");
        using var config = File.Exists(configPath) ? JsonFile.Read(configPath, MaxConfigBytes) : null;
        using var f = JsonFile.Read(jsonPath, MaxTokenizerJsonBytes);
        var root = f.Root;

        var normalizer = f.Get(root, "normalizer") is { } n ? HfComponents.Normalizer(f, n, "normalizer") : null;
        var preTokenizer = f.Get(root, "pre_tokenizer") is { } p ? HfComponents.PreTokenizer(f, p, "pre_tokenizer") : null;
        var (model, vocab) = Model(f, f.Object(root, "model", "$"));
        var added = AddedTokens(f, root);

        int size = vocab.Count == 0 ? 0 : vocab.Values.Max() + 1;
        foreach (var t in added) size = Math.Max(size, t.Id + 1);
        var idToToken = new string?[size];
        foreach (var (token, id) in vocab) idToToken[id] = token;
        var tokenToId = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        foreach (var t in added)
        {
            // Decoding sees a normalized added token in its normalized form, as in HF.
            idToToken[t.Id] = t.Normalized && normalizer is not null ? normalizer.Normalize(t.Content) : t.Content;
            tokenToId[t.Content] = t.Id;
        }

        string? bos = null, eos = null, chatTemplate = null, tokenizerClass = null;
        bool cleanUp = false;
        IPostProcessor? post = f.Get(root, "post_processor") is { } pp ? HfComponents.PostProcessor(f, pp, "post_processor") : null;
        if (config is not null)
        {
            bos = TokenName(config, "bos_token");
            eos = TokenName(config, "eos_token");
            cleanUp = config.Bool(config.Root, "clean_up_tokenization_spaces", "$", false);
            tokenizerClass = config.String(config.Root, "tokenizer_class", "$");
            chatTemplate = ChatTemplate(config);
            if (tokenizerClass is not null && BosEosFromConfigClasses.Contains(tokenizerClass))
                post = BosEosPostProcessor(config, bos, eos, tokenToId);
        }
        return new HfTokenizerParts(normalizer, preTokenizer, model, post, f.Get(root, "decoder") is { } d ? HfComponents.Decoder(f, d, "decoder") : null, idToToken, tokenToId, added,
            bos, eos, cleanUp, chatTemplate, tokenizerClass, System.IO.Path.GetFullPath(jsonPath), config?.Path);
    }

    static (BpeModel, Dictionary<string, int>) Model(JsonFile f, JsonElement m)
    {
        var type = f.String(m, "type", "model") ?? (f.Get(m, "merges") is not null ? "BPE" : null);
        if (type != "BPE")
            throw f.Error("model.type", $"'{type ?? "(none)"}' is not supported: HiCI.NET implements BPE tokenizers (Llama-2, Mistral, Llama-3, Qwen); WordPiece, WordLevel and Unigram models are not implemented");
        if (f.Get(m, "dropout") is { ValueKind: JsonValueKind.Number } d && d.GetDouble() > 0)
            throw f.Error("model.dropout", "BPE dropout is a training-time randomisation; set it to null for inference");

        var vocabJson = f.Object(m, "vocab", "model");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        var seenIds = new HashSet<int>();
        foreach (var prop in vocabJson.EnumerateObject())
        {
            if (prop.Value.ValueKind != JsonValueKind.Number || !prop.Value.TryGetInt32(out int id) || id < 0 || id >= MaxIds)
                throw f.Error($"model.vocab[{Quote(prop.Name)}]", $"expected an id in [0, {MaxIds}), found {prop.Value.GetRawText()}");
            if (!seenIds.Add(id)) throw f.Error($"model.vocab[{Quote(prop.Name)}]", $"id {id} is used by two tokens");
            if (!vocab.TryAdd(prop.Name, id)) throw f.Error($"model.vocab[{Quote(prop.Name)}]", "token listed twice");
        }

        var prefix = f.String(m, "continuing_subword_prefix", "model");
        int prefixLen = prefix?.Length ?? 0;
        var mergesJson = f.Array(m, "merges", "model");
        var merges = new Dictionary<long, long>(mergesJson.GetArrayLength());
        int rank = 0, index = -1;
        foreach (var item in mergesJson.EnumerateArray())
        {
            index++;
            string a, b;
            if (item.ValueKind == JsonValueKind.String)
            {
                var line = item.GetString()!;
                if (line.StartsWith("#version", StringComparison.Ordinal)) continue;
                var parts = line.Split(' ');
                if (parts.Length != 2) throw f.Error($"model.merges[{index}]", $"{Quote(line)} is not two tokens separated by one space");
                (a, b) = (parts[0], parts[1]);
            }
            else if (item.ValueKind == JsonValueKind.Array && item.GetArrayLength() == 2
                     && item[0].ValueKind == JsonValueKind.String && item[1].ValueKind == JsonValueKind.String)
                (a, b) = (item[0].GetString()!, item[1].GetString()!);
            else throw f.Error($"model.merges[{index}]", "expected \"left right\" or [\"left\", \"right\"]");

            if (!vocab.TryGetValue(a, out int aId) || !vocab.TryGetValue(b, out int bId))
                throw f.Error($"model.merges[{index}]", $"{Quote(vocab.ContainsKey(a) ? b : a)} is not in model.vocab");
            var merged = b.Length >= prefixLen ? a + b[prefixLen..] : a + b;
            if (!vocab.TryGetValue(merged, out int mergedId))
                throw f.Error($"model.merges[{index}]", $"the merged token {Quote(merged)} is not in model.vocab");
            // A pair listed twice keeps its last rank, as HF's hash map does.
            merges[((long)aId << 32) | (uint)bId] = ((long)rank << 32) | (uint)mergedId;
            rank++;
        }

        var unk = f.String(m, "unk_token", "model");
        int? unkId = null;
        if (unk is not null)
            unkId = vocab.TryGetValue(unk, out int u) ? u : throw f.Error("model.unk_token", $"{Quote(unk)} is not in model.vocab");
        var model = new BpeModel(vocab, merges, unkId,
            fuseUnk: f.Bool(m, "fuse_unk", "model", false),
            byteFallback: f.Bool(m, "byte_fallback", "model", false),
            ignoreMerges: f.Bool(m, "ignore_merges", "model", false),
            continuingSubwordPrefix: prefix,
            endOfWordSuffix: f.String(m, "end_of_word_suffix", "model"));
        return (model, vocab);
    }

    static List<AddedToken> AddedTokens(JsonFile f, JsonElement root)
    {
        var list = new List<AddedToken>();
        if (f.Get(root, "added_tokens") is not { } arr) return list;
        if (arr.ValueKind != JsonValueKind.Array) throw f.Error("added_tokens", "expected an array");
        var byId = new Dictionary<int, string>();
        int i = 0;
        foreach (var t in arr.EnumerateArray())
        {
            var where = $"added_tokens[{i++}]";
            int id = f.Int(t, "id", where, max: MaxIds - 1);
            var content = f.RequiredString(t, "content", where);
            if (content.Length == 0) continue; // HF ignores empty added tokens
            if (byId.TryGetValue(id, out var other) && other != content)
                throw f.Error(where, $"id {id} is given to both {Quote(other)} and {Quote(content)}");
            byId[id] = content;
            list.Add(new AddedToken(id, content,
                Special: f.Bool(t, "special", where, false),
                SingleWord: f.Bool(t, "single_word", where, false),
                LStrip: f.Bool(t, "lstrip", where, false),
                RStrip: f.Bool(t, "rstrip", where, false),
                Normalized: f.Bool(t, "normalized", where, false)));
        }
        return list;
    }

    static TemplatePostProcessor BosEosPostProcessor(JsonFile config, string? bos, string? eos, Dictionary<string, int> tokenToId)
    {
        bool addBos = config.Bool(config.Root, "add_bos_token", "$", true);
        bool addEos = config.Bool(config.Root, "add_eos_token", "$", false);
        int[] Id(string? token, string name) => token is not null && tokenToId.TryGetValue(token, out int id) ? [id]
            : throw config.Error(name, $"add_{name} is true but {name} {(token is null ? "is not set" : Quote(token) + " is not in the vocabulary")}");
        var pieces = new List<int[]?>();
        if (addBos) pieces.Add(Id(bos, "bos_token"));
        pieces.Add(null);
        if (addEos) pieces.Add(Id(eos, "eos_token"));
        return new TemplatePostProcessor(pieces);
    }

    // bos_token etc. are a string, or an AddedToken object {"content": ...}, or null.
    static string? TokenName(JsonFile config, string name) => config.Get(config.Root, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } v => v.GetString(),
        { ValueKind: JsonValueKind.Object } v => config.RequiredString(v, "content", name),
        var v => throw config.Error(name, $"expected a string or an AddedToken object, found {v.Value.ValueKind}"),
    };

    // chat_template is a string, or a list of {name, template} of which "default" is the one used.
    static string? ChatTemplate(JsonFile config)
    {
        switch (config.Get(config.Root, "chat_template"))
        {
            case null: return null;
            case { ValueKind: JsonValueKind.String } s: return s.GetString();
            case { ValueKind: JsonValueKind.Array } arr:
                foreach (var item in arr.EnumerateArray())
                    if (config.String(item, "name", "chat_template[]") == "default")
                        return config.RequiredString(item, "template", "chat_template[default]");
                return null;
            case var v: throw config.Error("chat_template", $"expected a string or a list of templates, found {v.Value.ValueKind}");
        }
    }

    internal static string Quote(string s) => JsonSerializer.Serialize(s);
}
