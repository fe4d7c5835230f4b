using System.Text;
using System.Text.Json.Nodes;

namespace Hici.Fuzz;

/// <summary>The valid inputs mutations start from: the repository's test fixtures and two small tokenizers made here.</summary>
public sealed class Seeds
{
    public string Root { get; }
    public string ModelDir => Path.Combine(Root, "tests", "fixtures", "models", "qwen3-gqa");           // vocab 256
    public string TrainableFile => Path.Combine(Root, "tests", "fixtures", "lora", "qwen3-gqa", "trainable_params.bin");
    public string AdapterDir => Path.Combine(Root, "tests", "fixtures", "lora", "qwen3-gqa", "adapter");
    public byte[] ByteLevelTokenizer { get; } = Encoding.UTF8.GetBytes(MakeByteLevel());
    public byte[] ByteFallbackTokenizer { get; } = Encoding.UTF8.GetBytes(MakeByteFallback());
    public byte[] Ids { get; } = Encoding.UTF8.GetBytes("[1, 17, 200, 33, 4, 5, 99, 250, 0, 12]");
    public byte[] Text { get; } = Encoding.UTF8.GetBytes("The quick brown fox's 123 jumps — über naïve 漢字 🙂\nsecond line\r\n\tend ");

    /// <summary>Patterns that backtrack catastrophically or cost time per match that grows with the text.</summary>
    public static readonly string[] HostilePatterns =
    [
        "(a+)+$", "(a|aa)+$", "(\\w+\\s?)*$", "(.*a){20}", "a(?=.*z)", "(?=(a*)*b)", "(x+x+)+y", "(a*)*b", ".*.*.*=.*",
    ];

    public Seeds(string root) => Root = root;

    public static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "HiCI.slnx"))) return d.FullName;
        throw new InvalidOperationException("cannot find the repository root (HiCI.slnx) above " + AppContext.BaseDirectory);
    }

    /// <summary>GPT-2's byte → printable character table (the ByteLevel alphabet).</summary>
    static char[] ByteChars()
    {
        var bs = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)).ToList();
        var map = new char[256];
        foreach (var b in bs) map[b] = (char)b;
        int n = 0;
        for (int b = 0; b < 256; b++) if (!bs.Contains(b)) map[b] = (char)(256 + n++);
        return map;
    }

    /// <summary>A byte-level BPE (Qwen-style: Split regex + ByteLevel) over the 256 bytes, no merges: ids 0..255.</summary>
    static string MakeByteLevel()
    {
        var vocab = new JsonObject();
        var chars = ByteChars();
        for (int b = 0; b < 256; b++) vocab[chars[b].ToString()] = b;
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(),
            ["normalizer"] = new JsonObject { ["type"] = "NFC" },
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject
                    {
                        ["type"] = "Split",
                        ["pattern"] = new JsonObject { ["Regex"] = "(?i:'s|'t)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+" },
                        ["behavior"] = "Isolated", ["invert"] = false,
                    },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false }),
            },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false,
                ["ignore_merges"] = false, ["vocab"] = vocab, ["merges"] = new JsonArray(),
            },
        };
        return root.ToJsonString();
    }

    /// <summary>A SentencePiece-style BPE (Llama-2-like: ▁ for spaces, byte fallback) over &lt;0x00&gt;..&lt;0xFF&gt;.</summary>
    static string MakeByteFallback()
    {
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++) vocab[$"<0x{b:X2}>"] = b;
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(),
            ["normalizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" },
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" }),
            },
            ["pre_tokenizer"] = null,
            ["post_processor"] = null,
            ["decoder"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["decoders"] = new JsonArray(
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "▁" }, ["content"] = " " },
                    new JsonObject { ["type"] = "ByteFallback" }, new JsonObject { ["type"] = "Fuse" }),
            },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["fuse_unk"] = true, ["byte_fallback"] = true,
                ["ignore_merges"] = false, ["vocab"] = vocab, ["merges"] = new JsonArray(),
            },
        };
        return root.ToJsonString();
    }
}
