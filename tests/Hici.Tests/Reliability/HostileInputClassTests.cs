using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Hici.Cli;
using Hici.IO;
using Hici.Lora;
using Hici.Models;
using Hici.Runtime;
using Hici.Tests.Cli;
using Hici.Tests.IO;
using Hici.Tests.Models;
using Hici.Text;
using TorchSharp;

namespace Hici.Tests.Reliability;

/// <summary>
/// One test (or a few) per class of hostile input in issue 10, each with inputs made here: every one must end in
/// one clean line with exit 1 (or a one-line HiciException in the library), within seconds.
/// </summary>
[Collection("Console")]
public sealed class HostileInputClassTests : IDisposable
{
    readonly string _dir = CliRunner.TempDir();
    static string Model => ModelFixtures.Dir("qwen3-gqa");

    public void Dispose() { try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } }

    string Write(string name, string text) => Write(name, Encoding.UTF8.GetBytes(text));

    string Write(string name, byte[] bytes)
    {
        var p = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    static string OneLine(params string[] args) => CliRunner.AssertOneLineError(CliRunner.Run(args));

    // 1. A JSON syntax error names file, line and column, and quotes nothing of the file.
    [Fact]
    public void JsonErrorInAHugeOneLineFileIsShort()
    {
        var ids = "[" + string.Join(",", Enumerable.Range(0, 150_000).Select(i => i % 200)) + ",1x2]";
        var p = Write("ids.json", ids);
        var line = OneLine("score", "--model", Model, "--ids", p);
        Assert.Contains("ids.json: not valid JSON at line 1, column ", line);
        Assert.True(line.Length < 300, line);
    }

    [Fact]
    public void JsonErrorNamesLineAndColumnInCharacters()
    {
        var e = Assert.Throws<HiciException>(() => HfConfigReader.Read(Write("config.json", "{\n  \"model_type\": \"qwen3\",\n  \"é\": tru\n}")));
        Assert.Contains("config.json: not valid JSON at line 3, column ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    // 2. Split regexes: catastrophic backtracking and per-match cost that grows with the text.
    static string TokenizerWithPattern(string pattern) =>
        "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": " + System.Text.Json.JsonSerializer.Serialize(pattern) +
        "}, \"behavior\": \"Isolated\", \"invert\": false}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"!\": 2, \"z\": 3}, \"merges\": []}}";

    [Theory]
    [InlineData("(a|aa)+$|!")]   // backtracking only: lookahead-free but the text defeats it… NonBacktracking runs it linearly
    [InlineData("(?=(a+)+!)a")]  // lookahead: backtracking engine, catastrophic, stopped by the per-match timeout
    [InlineData("a(?=.*z)|a")]  // lookahead scanning to the end per match: quadratic, stopped by the total budget
    public void HostileSplitPatternEndsWithinSeconds(string pattern)
    {
        var tok = HfTokenizer.Load(Write("tok/tokenizer.json", TokenizerWithPattern(pattern)));
        var text = new string('a', 400_000) + "b";
        var sw = Stopwatch.StartNew();
        try { tok.Encode(text); }
        catch (HiciException e) { Assert.Contains("Split pattern", e.Message); Assert.DoesNotContain('\n', e.Message); }
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"took {sw.Elapsed}");
    }

    [Fact]
    public void NonBacktrackingSplitsExactlyAsTheBacktrackingEngine()
    {
        // A lookahead-free pattern runs on the linear engine; "|(?!)" (never matches) forces the backtracking one.
        // A BPE that merges every adjacent pair of the text gives other ids wherever the splits differ.
        const string pattern = @"'s|'t|'re| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+";
        var text = "It's 2026: naive cafes, 12345 tests -- and   spaces!\n\tOK's";
        var chars = text.Distinct().Select(c => c.ToString()).ToList();
        var pairs = Enumerable.Range(0, text.Length - 1).Select(i => text.Substring(i, 2)).Distinct().Where(p => !p.Any(char.IsWhiteSpace)).ToList();
        var vocab = chars.Concat(pairs).Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i);
        string Tok(string pat) => System.Text.Json.JsonSerializer.Serialize(new
        {
            pre_tokenizer = new { type = "Split", pattern = new { Regex = pat }, behavior = "Isolated", invert = false },
            model = new { type = "BPE", vocab, merges = pairs.Select(p => $"{p[0]} {p[1]}").ToArray() },
        });
        var linear = HfTokenizer.Load(Write("lin/tokenizer.json", Tok(pattern))).Encode(text);
        var backtracking = HfTokenizer.Load(Write("bt/tokenizer.json", Tok(pattern + "|(?!)"))).Encode(text);
        Assert.Equal(backtracking, linear);
        Assert.True(linear.Length < text.Length);   // merges happened, so the splits were exercised
    }

    // 3. Invalid UTF-8 and lone surrogates in every JSON the tool reads.
    [Fact]
    public void InvalidUtf8InTokenizerJson()
    {
        var bytes = Encoding.UTF8.GetBytes(TokenizerWithPattern("a")).ToList();
        bytes.InsertRange(bytes.IndexOf((byte)'v'), new byte[] { 0xC3, 0x28 });
        var p = Write("tok/tokenizer.json", bytes.ToArray());
        var line = OneLine("tokenize", "--tokenizer", p, "--text", "ab");
        Assert.Contains("not valid UTF-8 (line 1, column", line);
    }

    [Theory]
    [InlineData("config.json")]
    [InlineData("tokenizer.json")]
    [InlineData("adapter_config.json")]
    [InlineData("hici_config.json")]
    [InlineData("hici_config.json key")]
    [InlineData("input.jsonl")]
    public void LoneSurrogateEscapeIsAUserError(string kind)
    {
        string line = kind switch
        {
            "config.json" => OneLine("info", "--model", Path.GetDirectoryName(Write("m/config.json",
                File.ReadAllText(Path.Combine(Model, "config.json")).Replace("\"qwen3\"", "\"qwen3\\udc80\"")))!),
            "tokenizer.json" => OneLine("tokenize", "--tokenizer", Write("tok/tokenizer.json", TokenizerWithPattern("a").Replace("\"b\"", "\"\\ud800\"")), "--text", "ab"),
            "adapter_config.json" => OneLine("score", "--model", Model, "--ids", Write("ids.json", "[1,2,3]"), "--adapter",
                Path.GetDirectoryName(Write("ad/adapter_config.json", "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\\udc80\"]}"))!),
            "hici_config.json" => OneLine("info", "--model", Model, "--hici-config", Write("hici_config.json", "{\"causal_mode\": \"\\udc80\"}")),
            // in a key: the duplicate-key check unescapes names while parsing (fuzz case 11102, seed 7)
            "hici_config.json key" => OneLine("info", "--model", Model, "--hici-config", Write("hici_config.json", "{\"causal_mode\\udc80\": 1}")),
            _ => OneLine("tokenize", "--tokenizer", Write("tok/tokenizer.json", TokenizerWithPattern("a")), "--input-jsonl", Write("in.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"\\udc80\"}\n")),
        };
        Assert.Contains("lone UTF-16 surrogate", line);
    }

    // A value quoted into a message keeps the message one line (fuzz case 77657, seed 7: a causal mode "/*\none").
    [Fact]
    public void QuotedValuesWithNewlinesStayOnOneLine()
    {
        var line = OneLine("info", "--model", Model, "--hici-config", Write("hici_config.json", "{\"causal_mode\": \"/*\\none\"}"));
        Assert.Contains("'/*\\none'", line);
        Assert.Equal("a\\u0001b\\nc", HiciException.OneLine("a\u0001b\nc"));
    }

    // An argument starting with '@' is itself, never the contents of a file it names (System.CommandLine's response
    // files would read '/' or a device before any of our checks: fuzz case 13098, seed 7).
    [Fact]
    public void ArgumentsStartingWithAtAreNotResponseFiles()
    {
        var line = OneLine("generate", "--model", Model, "--prompt", "hello", "--top-p", "@/");
        Assert.Contains("--top-p '@/': expected a number", line);
    }

    // 4. Endless or special files: refused at once, never read.
    public static TheoryData<string, string> SpecialInputs()
    {
        var d = new TheoryData<string, string>();
        foreach (var special in new[] { "/dev/zero", "/dev/urandom", "fifo", "folder" })
            foreach (var flag in new[] { "--ids", "--text", "--tokenizer", "--hici-config", "--input-jsonl", "--trainable" })
                d.Add(flag, special);
        return d;
    }

    [Theory]
    [MemberData(nameof(SpecialInputs))]
    public void SpecialFilesAreRefusedFast(string flag, string special)
    {
        if (!OperatingSystem.IsLinux()) return;
        string path = special switch
        {
            "fifo" => MkFifo(Path.Combine(_dir, "fifo")),
            "folder" => Directory.CreateDirectory(Path.Combine(_dir, "folder")).FullName,
            _ => special,
        };
        if (special == "folder" && flag == "--tokenizer") return;   // a folder is what --tokenizer expects
        string[] args = flag switch
        {
            "--ids" => ["score", "--model", Model, "--ids", path],
            "--text" => ["score", "--model", Model, "--text", path, "--tokenizer", Path.GetDirectoryName(Write("tok/tokenizer.json", TokenizerWithPattern("a")))!],
            "--tokenizer" => ["tokenize", "--tokenizer", path, "--text", "ab"],
            "--hici-config" => ["info", "--model", Model, "--hici-config", path],
            "--input-jsonl" => ["tokenize", "--tokenizer", Write("tok/tokenizer.json", TokenizerWithPattern("a")), "--input-jsonl", path],
            _ => ["score", "--model", Model, "--ids", Write("ids.json", "[1,2,3]"), "--trainable", path],
        };
        var sw = Stopwatch.StartNew();
        var line = OneLine(args);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
        Assert.Matches("is a (character device|FIFO|folder)|no tokenizer.json|not a regular file|no such file", line);
    }

    [Fact]
    public void InputOverItsSizeLimitIsRefusedWithoutReadingIt()
    {
        var p = Write("big.json", new byte[2048]);
        var e = Assert.Throws<HiciException>(() => InputFiles.ReadBytes(p, 1024));
        Assert.Contains("over the limit", e.Message);
    }

    // The fuzz harness, run as root, once replaced /dev/urandom by renaming a score output over it. A FIFO stands
    // in for the device here (a failing test must not destroy a machine's /dev/null).
    [Fact]
    public void OutputOverASpecialFileIsRefusedAndTheFileKept()
    {
        if (!OperatingSystem.IsLinux()) return;
        var fifo = MkFifo(Path.Combine(_dir, "out-fifo"));
        var e = Assert.Throws<HiciException>(() => AtomicFile.Write(fifo, s => s.WriteByte(1)));
        Assert.Contains("is a FIFO", e.Message);
        Assert.Throws<HiciException>(() => AtomicFile.CheckTarget(fifo, "--out"));
        Assert.StartsWith("FIFO", InputFiles.FileKind(fifo));
        var line = OneLine(["score", "--model", Model, "--ids", Write("ids-out.json", "[1,2,3]"), "--out", fifo]);
        Assert.Contains("is a FIFO", line);
        Assert.StartsWith("FIFO", InputFiles.FileKind(fifo));
    }

    // The two folder writers are one: a trailing separator names the same folder (the temp sibling used to be named
    // after an empty file name), an existing non-empty folder is refused unless replacing, and no temp entry is left.
    [Fact]
    public void FolderWritesTakeATrailingSeparatorAndKeepNonEmptyFolders()
    {
        var target = Path.Combine(_dir, "folder-out");
        AtomicDirectory.Write(target + Path.DirectorySeparatorChar, d => File.WriteAllText(Path.Combine(d, "a.txt"), "a"));
        Assert.Equal("a", File.ReadAllText(Path.Combine(target, "a.txt")));
        var e = Assert.Throws<HiciException>(() => AtomicFile.WriteFolder(target, d => File.WriteAllText(Path.Combine(d, "b.txt"), "b")));
        Assert.Contains("exists and is not empty", e.Message);
        AtomicDirectory.Write(target, d => File.WriteAllText(Path.Combine(d, "b.txt"), "b"), replace: true);
        Assert.Equal(new[] { "b.txt" }, Directory.GetFiles(target).Select(Path.GetFileName).ToArray());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir, ".folder-out.tmp-*"));
    }

    [DllImport("libc", EntryPoint = "mkfifo")]
    static extern int MkFifoNative([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint mode);

    static string MkFifo(string p) { if (!File.Exists(p)) Assert.Equal(0, MkFifoNative(p, 0x180)); return p; }

    // 5. Empty paths.
    [Theory]
    [InlineData("score", "--out")]
    [InlineData("merge", "--output")]
    [InlineData("convert-trainable", "--input")]
    [InlineData("convert-trainable", "--output")]
    public void EmptyPathIsAUserError(string command, string flag)
    {
        var trainable = Path.Combine(ModelFixtures.Root, "tests", "fixtures", "lora", "qwen3-gqa", "trainable_params.bin");
        var adapter = Path.Combine(ModelFixtures.Root, "tests", "fixtures", "lora", "qwen3-gqa", "adapter");
        string[] args = command switch
        {
            "score" => ["score", "--model", Model, "--ids", Write("ids.json", "[1,2,3]"), "--out", ""],
            "merge" => ["merge", "--model", Model, "--adapter", adapter, "--output", ""],
            _ => flag == "--input"
                ? ["convert-trainable", "--input", "", "--output", Path.Combine(_dir, "o.safetensors")]
                : ["convert-trainable", "--input", trainable, "--output", ""],
        };
        Assert.Contains($"{flag}: the path is empty", OneLine(args));
    }

    // 6. Native exceptions: one line, details only under --verbose; allocation failures are user errors.
    [Fact]
    public void NativeAllocationFailureIsOneLineUserError()
    {
        Exception native;
        try { using var t = torch.empty(new long[] { 1L << 42 }, dtype: torch.ScalarType.Float32); native = new Exception("allocated?"); }
        catch (Exception e) { native = e; }
        Assert.Contains("\n", native.Message);   // libtorch's message carries its native stack
        var (exit, line) = Common.Classify(native);
        Assert.Equal(1, exit);
        Assert.StartsWith("out of memory: ", line);
        Assert.DoesNotContain('\n', line);
        Assert.DoesNotContain("frame #", line);
    }

    [Fact]
    public void OtherNativeErrorsAreOneLineInternalErrors()
    {
        var (exit, line) = Common.Classify(new ExternalException("shape '[2, 3]' is invalid for input of size 5\nException raised from view at aten/…\nframe #0: c10::Error::Error(…)\nframe #1: …"));
        Assert.Equal(70, exit);
        Assert.Equal("ExternalException: shape '[2, 3]' is invalid for input of size 5", line);
    }

    // 7. Views over one small storage cannot multiply it.
    [Fact]
    public void ManyViewsOverOneStorageAreRefused()
    {
        var sw = Stopwatch.StartNew();
        var e = Assert.Throws<HiciException>(() => TorchPickleWeightSource.Open(IoFixtures.Path("pickle", "hostile", "many_views_bomb.bin")).Dispose());
        Assert.Contains("expand to 50 GiB from 16 bytes of stored data", e.Message);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void TiedViewsAndRealCheckpointsStillLoad()
    {
        using var src = TorchPickleWeightSource.Open(IoFixtures.Path("pickle", "state_dict.bin"));
        Assert.NotEmpty(src.Keys);
    }

    // 8. Safetensors: the data region must be exactly covered.
    [Theory]
    [InlineData("append")]
    [InlineData("header+1")]
    [InlineData("gap")]
    public void SafeTensorsDataRegionMustBeExactlyCovered(string damage)
    {
        var good = File.ReadAllBytes(Path.Combine(Model, "model.safetensors"));
        byte[] bad = damage switch
        {
            "append" => [.. good, 0],
            "header+1" => HeaderPlusOne(good),
            _ => Gap(),
        };
        var dir = Path.GetDirectoryName(Write("m/model.safetensors", bad))!;
        File.Copy(Path.Combine(Model, "config.json"), Path.Combine(dir, "config.json"));
        var line = OneLine("score", "--model", dir, "--ids", Write("ids.json", "[1,2,3]"));
        Assert.Matches("belong to no tensor|the tensors end at byte|header: not valid (JSON|UTF-8)", line);

        static byte[] HeaderPlusOne(byte[] g)
        {
            var b = (byte[])g.Clone();
            BitConverter.TryWriteBytes(b.AsSpan(0, 8), BitConverter.ToInt64(g, 0) + 1);
            return b;
        }
        static byte[] Gap()
        {
            var header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
            var h = Encoding.UTF8.GetBytes(header);
            return [.. BitConverter.GetBytes((long)h.Length), .. h, .. new byte[8]];
        }
    }

    // 9. Memory is estimated before a long forward.
    [Fact]
    public void LongHiciForwardIsRefusedWithNumbers()
    {
        var cfg = HfConfigReader.Read(Model);
        var hici = cfg with { Attention = Hici.Hierarchical.HiciAttentionOptions.Setting(new Hici.Hierarchical.HiciConfig { SegmentSize = 2_000_000 }) };
        var est = MemoryEstimator.Score(hici, torch.ScalarType.Float32, 2_000_000, 512, wholeSequence: true);
        var e = Assert.Throws<HiciException>(() => est.EnsureFits(24L << 30, subject: "ids.json"));
        Assert.Contains("ids.json: scoring 2000000 tokens in one forward (HiCI) needs about", e.Message);
        Assert.Contains("attention scores", e.Message);
        Assert.Contains("--force", e.Message);
        est.EnsureFits(24L << 30, force: true);   // --force: the caller tries anyway
        // Full attention in chunks needs the KV cache and chunk × length scores, not length².
        var full = MemoryEstimator.Score(cfg, torch.ScalarType.Float32, 100_000, 512, wholeSequence: false);
        Assert.InRange(full.Total, 100_000 * 1024.0, 2e9);
    }

    [Fact]
    public void EstimateIsCloseToWhatLibtorchAllocates()
    {
        // The cache the estimate counts is the one KvCache allocates, byte for byte.
        var cfg = HfConfigReader.Read(Model);
        var est = MemoryEstimator.Generate(cfg, torch.ScalarType.Float32, 10, 90);
        using var cache = new KvCache(cfg, 1, 100, torch.ScalarType.Float32, torch.CPU);
        Assert.Equal(KvCache.Bytes(cfg, 1, 100, torch.ScalarType.Float32), est.KvCache);
        // Weights: the same count as the model built from the config.
        using var lm = CausalLM.FromPretrained(Model, torch.ScalarType.Float32);
        long actual = lm.parameters().Sum(p => p.NumberOfElements) * 4;
        Assert.Equal(actual, MemoryEstimator.WeightBytes(cfg, torch.ScalarType.Float32), 0.01 * actual);
    }

    [Fact]
    public void AuditOfAMillionIdsIsEstimatedBeforeRunning()
    {
        var line = CliRunner.AssertOneLineError(CliRunner.Run("audit-causality", "--model", Model, "--length", "50000000"));
        Assert.Contains("needs about", line);
        Assert.Contains("--force", line);
    }

    [Fact]
    public void ConfigSizesBeyondAnyModelAreRefused()
    {
        // head_dim 2^30 made `info` (meta device) allocate 14.8 GB for RoPE tables and take 47 s (found by the fuzzer).
        var dir = Path.GetDirectoryName(Write("m/config.json", File.ReadAllText(Path.Combine(Model, "config.json")).Replace("\"head_dim\": 32", "\"head_dim\": 1073741824")))!;
        var sw = Stopwatch.StartNew();
        Assert.Contains("head_dim 1073741824 is larger than any model this reads", OneLine("info", "--model", dir));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10));
    }

    // 10. Stale temp outputs of ours are removed by the next write.
    [Fact]
    public void StaleTempsOfDeadWritersAreRemoved()
    {
        var o = Path.Combine(_dir, "r.json");
        var staleFile = Write(".r.json.tmp-999999999-0123abcd", "half");
        var staleDir = Directory.CreateDirectory(Path.Combine(_dir, ".r.json.tmp-999999998-0123abce")).FullName;
        var live = Write($".r.json.tmp-{Environment.ProcessId}-0123abcf", "a live writer's");   // this process: kept
        var other = Write(".other.json.tmp-999999999-0123abcd", "not ours to remove");
        var r = CliRunner.Run("score", "--model", Model, "--ids", Write("ids.json", "[1,2,3]"), "--out", o, "--threads", "1");
        Assert.True(r.Code == 0, r.Err);
        Assert.False(File.Exists(staleFile));
        Assert.False(Directory.Exists(staleDir));
        Assert.True(File.Exists(live));
        Assert.True(File.Exists(other));
        Assert.True(File.Exists(o));
    }
}
