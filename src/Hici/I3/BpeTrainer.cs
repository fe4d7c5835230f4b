using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Hici.IO;
using Hici.Text;

namespace Hici.I3;

/// <summary>
/// Byte-level BPE training for i3 (GPT-2 pre-tokenization without a prefix space, all 256 bytes always in the
/// vocabulary so nothing is ever unknown). Word counts are gathered streaming, then merges are learned with
/// incremental pair counts (a pair → words index, a lazy max-heap), ties broken by (count desc, left id asc,
/// right id asc): the same corpus and settings give bit-identical merges. Written as an HF tokenizer.json.
/// Hand-written because no .NET library trains BPE (Microsoft.ML.Tokenizers only encodes).
/// </summary>
public sealed class BpeTrainer
{
    private readonly ISplitPattern _split = SplitPatterns.FromRegex(SplitPatterns.Gpt2, "i3 tokenizer");
    private readonly Dictionary<string, long> _wordCounts = new(StringComparer.Ordinal);
    private readonly List<(int Start, int End)> _matches = [];

    public long CharactersSeen { get; private set; }

    /// <summary>Counts the pre-tokens of one piece of text (a document, or a line with its newline).</summary>
    public void Add(string text)
    {
        CharactersSeen += text.Length;
        _matches.Clear();
        _split.FindMatches(text, _matches);
        foreach (var (s, e) in _matches)
        {
            var w = ByteLevelPreTokenizer.ToByteLevel(text[s..e]);
            _wordCounts[w] = _wordCounts.TryGetValue(w, out long c) ? c + 1 : 1;
        }
    }

    /// <summary>A line longer than this is not text to count words in.</summary>
    public const long MaxLineBytes = 256L << 20;

    /// <summary>Streams a UTF-8 text file line by line (lines keep their newline). <paramref name="progress"/> gets bytes read.</summary>
    public void AddFile(string path, Func<string, string>? transformLine = null, Action<long>? progress = null)
    {
        long read = 0, lastReport = 0;
        foreach (var (_, line) in InputFiles.ReadLines(path, MaxLineBytes, keepBlank: true))
        {
            Add((transformLine?.Invoke(line) ?? line) + "\n");
            read += Encoding.UTF8.GetByteCount(line) + 1;
            if (progress is not null && read - lastReport > 1 << 20) { lastReport = read; progress(read); }
        }
        progress?.Invoke(read);
    }

    public sealed record Result(IReadOnlyList<string> Tokens, IReadOnlyList<(string Left, string Right)> Merges)
    {
        public int VocabSize => Tokens.Count;
    }

    /// <summary>Learns merges until the vocabulary has <paramref name="vocabSize"/> tokens or the best pair occurs fewer than <paramref name="minFrequency"/> times.</summary>
    public Result Train(int vocabSize, int minFrequency = 2, Action<int, int>? progress = null)
    {
        if (vocabSize < I3Tokenizer.FirstMergeId) throw new HiciException($"--vocab {vocabSize}: must be at least {I3Tokenizer.FirstMergeId} (13 special tokens + 256 bytes)");
        var tokens = new List<string>(I3Tokenizer.SpecialTokens);
        var idOf = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < tokens.Count; i++) idOf[tokens[i]] = i;
        for (int b = 0; b < 256; b++) { var s = ByteLevel.ByteToChar[b].ToString(); idOf[s] = tokens.Count; tokens.Add(s); }

        // Words in a fixed order (ordinal) so everything downstream is deterministic.
        var entries = _wordCounts.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToArray();
        var words = new int[entries.Length][];
        var counts = new long[entries.Length];
        for (int w = 0; w < entries.Length; w++)
        {
            words[w] = entries[w].Key.Select(ch => I3Tokenizer.FirstByteId + ByteLevel.CharToByte(ch)).ToArray();
            counts[w] = entries[w].Value;
        }
        var pairCount = new Dictionary<long, long>();
        var pairWords = new Dictionary<long, HashSet<int>>();
        var heap = new PriorityQueue<long, (long NegCount, long Key)>();
        void AddPairs(int w, long sign)
        {
            var s = words[w];
            for (int i = 0; i + 1 < s.Length; i++)
            {
                long key = ((long)s[i] << 32) | (uint)s[i + 1];
                long c = (pairCount.TryGetValue(key, out long old) ? old : 0) + sign * counts[w];
                pairCount[key] = c;
                if (sign > 0)
                {
                    if (!pairWords.TryGetValue(key, out var set)) pairWords[key] = set = [];
                    set.Add(w);
                    heap.Enqueue(key, (-c, key));
                }
            }
        }
        for (int w = 0; w < words.Length; w++) AddPairs(w, +1);

        var merges = new List<(string, string)>();
        int target = vocabSize - tokens.Count;
        while (tokens.Count < vocabSize && heap.TryDequeue(out long best, out var prio))
        {
            long current = pairCount.GetValueOrDefault(best);
            if (current != -prio.NegCount) { if (current > 0) heap.Enqueue(best, (-current, best)); continue; }   // stale entry
            if (current < minFrequency) break;
            int a = (int)(best >> 32), b = (int)(best & 0xffffffff);
            string merged = tokens[a] + tokens[b];
            if (!idOf.TryGetValue(merged, out int c)) { c = tokens.Count; tokens.Add(merged); idOf[merged] = c; }
            merges.Add((tokens[a], tokens[b]));
            foreach (int w in pairWords[best].Order().ToArray())
            {
                AddPairs(w, -1);
                words[w] = MergeWord(words[w], a, b, c);
                AddPairs(w, +1);
            }
            pairCount.Remove(best);
            pairWords.Remove(best);
            progress?.Invoke(merges.Count, target);
        }
        return new Result(tokens, merges);
    }

    private static int[] MergeWord(int[] s, int a, int b, int c)
    {
        var r = new List<int>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (i + 1 < s.Length && s[i] == a && s[i + 1] == b) { r.Add(c); i++; }
            else r.Add(s[i]);
        }
        return r.ToArray();
    }

    /// <summary>Writes tokenizer.json (HF layout: BPE model, ByteLevel pre-tokenizer/decoder, specials as added tokens) and tokenizer_config.json.</summary>
    public static void Save(Result r, string dir)
    {
        Directory.CreateDirectory(dir);
        var opts = new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        AtomicFile.Write(Path.Combine(dir, "tokenizer.json"), s =>
        {
            using var j = new Utf8JsonWriter(s, opts);
            j.WriteStartObject();
            j.WriteString("version", "1.0");
            j.WriteNull("truncation");
            j.WriteNull("padding");
            j.WriteStartArray("added_tokens");
            for (int i = 0; i < I3Tokenizer.SpecialTokens.Length; i++)
            {
                j.WriteStartObject();
                j.WriteNumber("id", i);
                j.WriteString("content", I3Tokenizer.SpecialTokens[i]);
                j.WriteBoolean("single_word", false); j.WriteBoolean("lstrip", false); j.WriteBoolean("rstrip", false);
                j.WriteBoolean("normalized", false); j.WriteBoolean("special", true);
                j.WriteEndObject();
            }
            j.WriteEndArray();
            j.WriteNull("normalizer");
            WriteByteLevel(j, "pre_tokenizer", withRegex: true);
            j.WriteNull("post_processor");
            WriteByteLevel(j, "decoder", withRegex: false);
            j.WriteStartObject("model");
            j.WriteString("type", "BPE");
            j.WriteNull("dropout");
            j.WriteString("unk_token", "<UNK>");
            j.WriteNull("continuing_subword_prefix");
            j.WriteNull("end_of_word_suffix");
            j.WriteBoolean("fuse_unk", false);
            j.WriteBoolean("byte_fallback", false);
            j.WriteBoolean("ignore_merges", false);
            j.WriteStartObject("vocab");
            for (int i = 0; i < r.Tokens.Count; i++) j.WriteNumber(r.Tokens[i], i);
            j.WriteEndObject();
            j.WriteStartArray("merges");
            foreach (var (a, b) in r.Merges) { j.WriteStartArray(); j.WriteStringValue(a); j.WriteStringValue(b); j.WriteEndArray(); }
            j.WriteEndArray();
            j.WriteEndObject();
            j.WriteEndObject();
        });
        AtomicFile.Write(Path.Combine(dir, "tokenizer_config.json"), s =>
        {
            using var j = new Utf8JsonWriter(s, opts);
            j.WriteStartObject();
            j.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
            j.WriteString("bos_token", "<BOS>");
            j.WriteString("eos_token", "<EOS>");
            j.WriteString("unk_token", "<UNK>");
            j.WriteString("pad_token", "<PAD>");
            j.WriteNumber("model_max_length", 1 << 20);
            j.WriteEndObject();
        });
    }

    private static void WriteByteLevel(Utf8JsonWriter j, string name, bool withRegex)
    {
        j.WriteStartObject(name);
        j.WriteString("type", "ByteLevel");
        j.WriteBoolean("add_prefix_space", false);
        j.WriteBoolean("trim_offsets", true);
        j.WriteBoolean("use_regex", withRegex);
        j.WriteEndObject();
    }
}
