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

    /// <summary>600 ids under the base model's vocabulary (256), as the flat files training and perplexity read.</summary>
    public int[] TokenIds { get; } = Enumerable.Range(0, 600).Select(i => (i * 37 + 11) % 256).ToArray();
    public byte[] TokenBytes16 => TokenIds.SelectMany(i => BitConverter.GetBytes((ushort)i)).ToArray();
    public byte[] TokenBytes32 => TokenIds.SelectMany(i => BitConverter.GetBytes((uint)i)).ToArray();
    public string TokenMeta(string dtype, int tokens) =>
        $"{{\"tokenizer\": \"fuzz\", \"dtype\": \"{dtype}\", \"tokens\": {tokens}, \"documents\": 1, \"vocab_size\": 256}}";

    /// <summary>A HiCI model (vocab 256) whose weights fit the config below: valid configs run a HiCI forward.</summary>
    public string HiciModelDir => Path.Combine(Root, "tests", "fixtures", "hici", "model-qwen3");
    /// <summary>That model's HiCI config with every key written out (more keys for the mutators to change).</summary>
    public byte[] HiciConfigJson => Encoding.UTF8.GetBytes(Hici.Hierarchical.HiciConfig.Load(Path.Combine(HiciModelDir, "hici_config.json")).ToJson());

    public string LongBenchSamples =>
        """{"input": "Who wrote it?", "context": "The quick brown fox. Written by Ann.", "answers": ["Ann"], "length": 7, "dataset": "qasper", "language": "en", "all_classes": null, "_id": "a1"}""" + "\n" +
        """{"input": "", "context": "Text to sum up.", "answers": ["sum"], "length": 4, "dataset": "gov_report", "language": "en", "all_classes": ["x", "y"], "_id": "a2"}""" + "\n";
    public string LongBenchPredictions =>
        """{"pred": "Ann", "answers": ["Ann"], "all_classes": null, "length": 7}""" + "\n" +
        """{"pred": "sum", "answers": ["sum", "total"], "all_classes": ["x", "y"], "length": 4}""" + "\n";
    public string TopicCases =>
        """{"test_id": 0, "prompt": "USER: I would like to discuss the topic of cats. ASSISTANT: Sure. USER: What was the first topic?", "topics": ["cats"]}""" + "\n";
    public string LineCases =>
        """{"random_idx": ["a-b", 0], "expected_number": 42, "num_lines": 1, "token_size": 20, "correct_line": "line a-b: REGISTER_CONTENT is <42>\\n", "prompt": "line a-b: REGISTER_CONTENT is <42>\\nWhat is the REGISTER_CONTENT in line a-b?"}""" + "\n";
    public string ResumeLogLines =>
        """{"run":"fuzz"}""" + "\n" + """{"key":"0","value":1.25}""" + "\n" +
        """{"key":"topics/1/0","value":{"Index":0,"Label":"cats","Output":"cats","PromptTokens":12,"Correct":true,"Line":"Label: cats, Predict: cats"}}""" + "\n";
    public string TopicResponses => "Label: cats, Predict: ['cats'], prompt length: 12\nLabel: dogs, Predict: ['birds'], prompt length: 9\n";

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
