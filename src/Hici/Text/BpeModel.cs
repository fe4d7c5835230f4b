using System.Collections.Concurrent;
using System.Text;

namespace Hici.Text;

/// <summary>
/// HF's BPE model: characters (or byte-fallback bytes) → symbols, then repeatedly apply the
/// lowest-ranked merge (leftmost on ties) until none applies. Merges are keyed by id pairs in one
/// dictionary; results per word are cached, as HF does, because real text repeats words.
/// </summary>
internal sealed class BpeModel
{
    public const int MaxCachedWordLength = 256;
    const int MaxCacheEntries = 500_000;

    readonly Dictionary<string, int> _vocab;
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabBySpan;
    readonly Dictionary<long, long> _merges; // (left id, right id) → (rank << 32) | merged id
    readonly int[] _charId;                  // BMP single-character tokens, -1 when absent
    readonly int[] _byteFallbackId;          // <0xNN> tokens, -1 when absent
    readonly int? _unkId;
    readonly bool _fuseUnk, _byteFallback, _ignoreMerges;
    readonly string? _prefix, _suffix;
    readonly ConcurrentDictionary<string, int[]> _cache = new();
    readonly Lazy<HashSet<long>> _bigrams;
    int _cacheCount;

    [ThreadStatic] static Scratch? t_scratch;

    public BpeModel(Dictionary<string, int> vocab, Dictionary<long, long> merges, int? unkId, bool fuseUnk,
        bool byteFallback, bool ignoreMerges, string? continuingSubwordPrefix, string? endOfWordSuffix)
    {
        _vocab = vocab;
        _vocabBySpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _merges = merges;
        _unkId = unkId;
        _fuseUnk = fuseUnk;
        _byteFallback = byteFallback;
        _ignoreMerges = ignoreMerges;
        _prefix = string.IsNullOrEmpty(continuingSubwordPrefix) ? null : continuingSubwordPrefix;
        _suffix = string.IsNullOrEmpty(endOfWordSuffix) ? null : endOfWordSuffix;
        _charId = new int[0x10000];
        Array.Fill(_charId, -1);
        foreach (var (token, id) in vocab)
            if (token.Length == 1) _charId[token[0]] = id;
        _bigrams = new Lazy<HashSet<long>>(BuildBigrams);
        _byteFallbackId = new int[256];
        for (int b = 0; b < 256; b++) _byteFallbackId[b] = vocab.GetValueOrDefault($"<0x{b:X2}>", -1);
    }

    /// <summary>The byte a byte-fallback token (&lt;0xNN&gt;, byte_fallback on) stands for, or -1.</summary>
    public int FallbackByte(int id)
    {
        if (!_byteFallback) return -1;
        for (int b = 0; b < 256; b++) if (_byteFallbackId[b] == id) return b;
        return -1;
    }

    public void Tokenize(string word, List<int> output)
    {
        if (word.Length == 0) return;
        if (_ignoreMerges && _vocab.TryGetValue(word, out int whole)) { output.Add(whole); return; }
        if (word.Length <= LongWord || _prefix is not null || _suffix is not null) { AddMerged(word, output); return; }
        // A long word (SentencePiece-style models see whole sentences as one word) is cut where no
        // vocabulary token contains the two adjacent characters: no merge can ever join across such
        // a cut, so both sides merge independently and the result is unchanged, while the pieces
        // ("▁word") become short and cacheable.
        var bigrams = _bigrams.Value;
        int start = 0, prevCp = -1;
        bool prevKnown = false;
        for (int i = 0; i < word.Length;)
        {
            int cp = Unicode.CanonicalNormalizer.CodePointAt(word, i, out int w);
            bool known = Lookup(word.AsSpan(i, w), first: true, last: false) >= 0;
            if (i > start && prevKnown && known && !bigrams.Contains(Bigram(prevCp, cp)))
            {
                AddMerged(word[start..i], output);
                start = i;
            }
            prevCp = cp;
            prevKnown = known;
            i += w;
        }
        AddMerged(word[start..], output);
    }

    void AddMerged(string word, List<int> output)
    {
        if (_cache.TryGetValue(word, out var cached)) { output.AddRange(cached); return; }
        var ids = Merge(word);
        if (word.Length < MaxCachedWordLength && _cacheCount < MaxCacheEntries && _cache.TryAdd(word, ids))
            Interlocked.Increment(ref _cacheCount);
        output.AddRange(ids);
    }

    const int LongWord = 48;

    static long Bigram(int a, int b) => ((long)a << 21) | (uint)b;

    // Every pair of adjacent code points inside any vocabulary token.
    HashSet<long> BuildBigrams()
    {
        var set = new HashSet<long>();
        foreach (var token in _vocab.Keys)
        {
            int prev = -1;
            for (int i = 0; i < token.Length;)
            {
                int cp = Unicode.CanonicalNormalizer.CodePointAt(token, i, out int w);
                if (prev >= 0) set.Add(Bigram(prev, cp));
                prev = cp;
                i += w;
            }
        }
        return set;
    }

    int[] Merge(string word)
    {
        var sc = t_scratch ??= new Scratch();
        var symbols = sc.Symbols;
        symbols.Clear();
        InitialSymbols(word, symbols);
        int n = symbols.Count;
        if (n <= 1) return symbols.ToArray();

        sc.Ensure(n);
        int[] id = sc.Id, prev = sc.Prev, next = sc.Next;
        bool[] alive = sc.Alive;
        for (int i = 0; i < n; i++) { id[i] = symbols[i]; prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; alive[i] = true; }

        var queue = sc.Queue;
        queue.Clear();
        for (int i = 0; i + 1 < n; i++) Enqueue(queue, id[i], id[i + 1], i);

        int count = n;
        while (queue.TryDequeue(out int newId, out long priority))
        {
            int pos = (int)(priority & 0xFFFFFFFF);
            if (!alive[pos] || next[pos] < 0) continue;
            int right = next[pos];
            // Stale entries are recognised by the merged id, exactly as HF does: a changed pair at
            // this position always concatenates to a different (longer) token.
            if (!_merges.TryGetValue(Pair(id[pos], id[right]), out long m) || (int)m != newId) continue;
            id[pos] = newId;
            alive[right] = false;
            count--;
            next[pos] = next[right];
            if (next[pos] >= 0) prev[next[pos]] = pos;
            if (prev[pos] >= 0) Enqueue(queue, id[prev[pos]], id[pos], prev[pos]);
            if (next[pos] >= 0) Enqueue(queue, id[pos], id[next[pos]], pos);
        }
        var result = new int[count];
        for (int i = 0, k = 0; i >= 0; i = next[i]) result[k++] = id[i];
        return result;
    }

    /// <summary>Per-thread buffers, so merging a word allocates only its result.</summary>
    sealed class Scratch
    {
        public readonly List<int> Symbols = new();
        public readonly PriorityQueue<int, long> Queue = new();
        public int[] Id = [], Prev = [], Next = [];
        public bool[] Alive = [];

        public void Ensure(int n)
        {
            if (Id.Length >= n) return;
            int size = Math.Max(n, Id.Length * 2);
            Id = new int[size]; Prev = new int[size]; Next = new int[size]; Alive = new bool[size];
        }
    }

    void Enqueue(PriorityQueue<int, long> queue, int left, int right, int pos)
    {
        if (_merges.TryGetValue(Pair(left, right), out long m))
            queue.Enqueue((int)m, (m & ~0xFFFFFFFFL) | (uint)pos);
    }

    static long Pair(int a, int b) => ((long)a << 32) | (uint)b;

    // HF's merge_word: one symbol per character; unknown characters become their UTF-8 bytes
    // (byte_fallback) or the unk token, consecutive unks fused when fuse_unk is set.
    void InitialSymbols(string word, List<int> symbols)
    {
        bool pendingUnk = false;
        for (int i = 0; i < word.Length;)
        {
            int width = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            bool first = i == 0, last = i + width == word.Length;
            int tokenId = Lookup(word.AsSpan(i, width), first, last);
            if (tokenId >= 0)
            {
                if (pendingUnk) { symbols.Add(_unkId!.Value); pendingUnk = false; }
                symbols.Add(tokenId);
            }
            else if (_byteFallback && TryByteFallback(word.AsSpan(i, width), first, last, symbols))
            {
            }
            else if (_unkId is int unk)
            {
                if (pendingUnk && !_fuseUnk) symbols.Add(unk);
                pendingUnk = true;
            }
            i += width;
        }
        if (pendingUnk) symbols.Add(_unkId!.Value);
    }

    int Lookup(ReadOnlySpan<char> ch, bool first, bool last)
    {
        bool decorated = (_prefix is not null && !first) || (_suffix is not null && last);
        if (!decorated)
        {
            if (ch.Length == 1) return _charId[ch[0]];
            return _vocabBySpan.TryGetValue(ch, out int v) ? v : -1;
        }
        var s = string.Concat(!first && _prefix is not null ? _prefix : "", ch, last && _suffix is not null ? _suffix : "");
        return _vocab.TryGetValue(s, out int id) ? id : -1;
    }

    bool TryByteFallback(ReadOnlySpan<char> ch, bool first, bool last, List<int> symbols)
    {
        // HF converts the decorated symbol (prefix/suffix included) to bytes; all must exist. Like HF,
        // a pending unk is not flushed first: it lands after these bytes.
        var s = string.Concat(!first && _prefix is not null ? _prefix : "", ch, last && _suffix is not null ? _suffix : "");
        var bytes = Encoding.UTF8.GetBytes(s);
        foreach (var b in bytes) if (_byteFallbackId[b] < 0) return false;
        foreach (var b in bytes) symbols.Add(_byteFallbackId[b]);
        return true;
    }
}
