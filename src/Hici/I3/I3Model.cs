using Hici.IO;
using Hici.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hici.I3;

/// <summary>
/// i3 hybrid language model: x = E[tok] + P[position in chunk] → RWKV-4 blocks → attention blocks over
/// [compressed history ; chunk tokens] → LN → untied head. Streams run chunk by chunk (chunk = kernel window W):
/// when a chunk completes, its post-RWKV stream is compressed into L latents that join the history (≤ M chunks,
/// detached, oldest dropped, age embedding added at use), and the RWKV states reset (or carry, detached).
/// Field names are checkpoint keys. Float32 only: WKV and its max-shift representation need it.
/// </summary>
public sealed class I3Model : nn.Module, ICausalLM
{
    public Embedding emb, pos_emb;
    public ModuleList<RwkvBlock> blocks;
    public ModuleList<MemoryAttentionBlock> attn_blocks;
    public LayerNorm ln_out;
    public Linear head;
    public LatentCompressor compressor;
    public Embedding? age_emb;

    public I3Config Config { get; }
    public Device Device { get; }
    public ScalarType DType => ScalarType.Float32;
    public long VocabSize => Config.VocabSize;
    /// <summary>Unbounded: positions restart in every chunk and the history has a fixed size.</summary>
    public long? MaxPositionEmbeddings => null;
    /// <summary>&lt;EOS&gt;, &lt;|im_end|&gt;, &lt;|endoftext|&gt;, &lt;|eot_id|&gt;.</summary>
    public IReadOnlyList<int> EosTokenIds => I3Tokenizer.StopIds;

    /// <summary>Builds the modules (uninitialised on CPU; call <see cref="Initialize"/> or <see cref="LoadWeights"/>). On the meta device nothing is allocated.</summary>
    public I3Model(I3Config cfg, Device? device = null) : base(nameof(I3Model))
    {
        cfg.Validate();
        Config = cfg;
        Device = device ?? torch.CPU;
        int d = cfg.DModel;
        emb = nn.Embedding(cfg.VocabSize, d, device: Device);
        pos_emb = nn.Embedding(cfg.KernelWindow, d, device: Device);
        blocks = new ModuleList<RwkvBlock>(Enumerable.Range(0, cfg.NRwkvLayers).Select(_ => new RwkvBlock(cfg, Device)).ToArray());
        attn_blocks = new ModuleList<MemoryAttentionBlock>(Enumerable.Range(0, cfg.NAttnLayers).Select(_ => new MemoryAttentionBlock(cfg, Device)).ToArray());
        ln_out = nn.LayerNorm(d, cfg.LayerNormEps, device: Device);
        head = nn.Linear(d, cfg.VocabSize, hasBias: true, device: Device);
        compressor = new LatentCompressor(cfg, Device);
        if (cfg.UseAgeEmbedding && cfg.MaxCompressedChunks > 0) age_emb = nn.Embedding(cfg.MaxCompressedChunks, d, device: Device);
        RegisterComponents();
    }

    public long ParameterCount => parameters().Sum(p => p.numel());

    // ---------------------------------------------------------------- init, load, save

    /// <summary>
    /// Matrices, embeddings, latent queries and age embedding ~ N(0, 0.02), biases 0, LayerNorm (1, 0); the time
    /// parameters get RWKV-4's layer- and channel-dependent init (decay speeds from fast to slow over channels,
    /// a zig-zag bonus around ln 0.3, token-shift mixes that shift more in lower layers).
    /// </summary>
    public void Initialize(long seed)
    {
        using var noGrad = torch.no_grad();
        var gen = new torch.Generator((ulong)seed);
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else if (p.dim() >= 2) p.normal_(0, 0.02, gen);
            else p.fill_(1.0);   // LayerNorm weights; time parameters are overwritten below
        }
        int d = Config.DModel, nr = Config.NRwkvLayers;
        var f = torch.arange(d, dtype: ScalarType.Float64) / d;
        var ramp = torch.arange(d, dtype: ScalarType.Float64) / Math.Max(d - 1, 1);
        var zig = (torch.arange(d, dtype: ScalarType.Float64) + 1).remainder(3) - 1;
        for (int l = 0; l < nr; l++)
        {
            double r0 = nr > 1 ? l / (double)(nr - 1) : 0, r1 = 1 - l / (double)nr;
            var att = blocks[l].att;
            att.time_decay.copy_(-5 + 8 * ramp.pow(0.7 + 1.3 * r0));
            att.time_first.copy_(Math.Log(0.3) + 0.5 * zig);
            att.time_mix_k.copy_(f.pow(r1));
            att.time_mix_v.copy_(f.pow(r1) + 0.3 * r0);
            att.time_mix_r.copy_(f.pow(0.5 * r1));
            blocks[l].ffn.time_mix_k.copy_(f.pow(r1));
            blocks[l].ffn.time_mix_r.copy_(f.pow(r1));
        }
    }

    public const string WeightsFile = "model.safetensors";

    /// <summary>Loads every parameter from <paramref name="weights"/>: all keys present, none unexpected, shapes equal (all problems reported together).</summary>
    public void LoadWeights(IWeightSource weights)
    {
        var ours = named_parameters().ToList();
        var names = ours.Select(p => p.name).ToHashSet(StringComparer.Ordinal);
        var bad = new List<string>();
        foreach (var (name, p) in ours)
        {
            if (!weights.Contains(name)) { bad.Add($"missing {name}"); continue; }
            var shape = weights.Shape(name);
            if (!shape.SequenceEqual(p.shape)) bad.Add($"{name} is [{string.Join(", ", shape)}], the config needs [{string.Join(", ", p.shape)}]");
        }
        foreach (var k in weights.Keys.Where(k => !names.Contains(k)).OrderBy(k => k, StringComparer.Ordinal)) bad.Add($"unexpected {k}");
        if (bad.Count > 0) throw new HiciException($"{weights.Origin}: does not match the i3 config: {string.Join("; ", bad.Take(12))}{(bad.Count > 12 ? $" (+{bad.Count - 12} more)" : "")}");
        using var noGrad = torch.no_grad();
        foreach (var (name, p) in ours)
        {
            using var t = weights.Load(name, ScalarType.Float32, Device);
            if (!t.isfinite().all().item<bool>()) throw new HiciException($"{weights.Origin}: {name} has non-finite values");
            p.copy_(t);
        }
    }

    /// <summary>Writes config.json and model.safetensors into <paramref name="dir"/> (each atomically).</summary>
    public void Save(string dir, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Directory.CreateDirectory(dir);
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>())
        {
            ["format"] = "pt", ["model_type"] = I3Config.ModelType,
            ["num_heads_effective"] = Config.Heads.ToString(), ["compressor_heads_effective"] = Config.CompressorHeads.ToString(),
        };
        SafeTensorsWriter.Save(Path.Combine(dir, WeightsFile), named_parameters().Select(p => (p.name, (Tensor)p.parameter.detach())), meta);
        Config.Save(dir);
    }

    /// <summary>Loads an i3 folder (config.json with model_type "i3" + model.safetensors).</summary>
    public static I3Model FromPretrained(string dir, Device? device = null)
    {
        if (!Directory.Exists(dir)) throw new HiciException($"{dir}: no such model folder");
        var cfg = I3Config.Load(dir);
        var path = Path.Combine(dir, WeightsFile);
        if (!File.Exists(path)) throw new HiciException($"{path}: no such file");
        var m = new I3Model(cfg, device);
        try
        {
            using var w = SafeTensorsWeightSource.Open(path);
            m.LoadWeights(w);
            m.eval();
            return m;
        }
        catch { m.Dispose(); throw; }
    }

    // ---------------------------------------------------------------- building blocks of a step

    /// <summary>A fresh stream state; <paramref name="historyCapacity"/> (≤ M) limits how many compressed chunks it keeps (for ablations).</summary>
    public I3State NewStream(long batch = 1, int? historyCapacity = null) => new(Config, batch, DType, Device, historyCapacity);

    /// <summary>ICausalLM: a stream state; <paramref name="maxLength"/> does not matter (the state has a fixed size).</summary>
    public IModelState NewState(long maxLength, long batch = 1) => NewStream(batch);

    public Tensor Hidden(Tensor ids, IModelState? state = null, Tensor? attentionMask = null)
    {
        if (attentionMask is not null) throw new HiciException("i3 models take no padding mask: a stream's rows advance in lock-step (run rows of different lengths separately)");
        if (state is null)
        {
            using var tmp = NewStream(ids.dim() == 1 ? 1 : ids.shape[0]);
            return Hidden(ids, tmp);
        }
        return Hidden(ids, state as I3State ?? throw new HiciException($"an i3 model needs its own state, not a {state.GetType().Name}"));
    }

    public Tensor Forward(Tensor ids, IModelState? state = null, bool lastOnly = false, Tensor? attentionMask = null)
    {
        using var scope = torch.NewDisposeScope();
        var h = Hidden(ids, state, attentionMask);
        if (lastOnly) h = h.narrow(1, h.shape[1] - 1, 1);
        return LmHead(h).MoveToOuterDisposeScope();
    }

    /// <summary>E[ids] + P[pos0 .. pos0+T−1]; ids [B, T].</summary>
    public Tensor Embed(Tensor ids, long pos0)
    {
        using var scope = torch.NewDisposeScope();
        var pos = torch.arange(pos0, pos0 + ids.shape[1], dtype: ScalarType.Int64, device: Device);
        return (emb.call(ids) + pos_emb.call(pos)).MoveToOuterDisposeScope();
    }

    /// <summary>The RWKV stack over x [B, T, d] from the given layer states; returns the stream and the new states.</summary>
    public (Tensor X, RwkvLayerState[] States) RunRwkv(Tensor x, IReadOnlyList<RwkvLayerState> states, bool chunked)
    {
        var outStates = new RwkvLayerState[blocks.Count];
        int? q = chunked ? Config.WkvBlock : null;
        Tensor cur = x;
        for (int l = 0; l < blocks.Count; l++)
        {
            var (y, s) = blocks[l].Run(cur, states[l], q);
            if (!ReferenceEquals(cur, x)) cur.Dispose();
            cur = y;
            outStates[l] = s;
        }
        return (cur, outStates);
    }

    /// <summary>Memory rows [B, L·n, d] from n history blocks (oldest first), each plus the embedding of its age (newest = 0).</summary>
    public Tensor Memory(IReadOnlyList<Tensor> entries)
    {
        using var scope = torch.NewDisposeScope();
        int n = entries.Count;
        var rows = new Tensor[n];
        for (int j = 0; j < n; j++)
            rows[j] = age_emb is null ? entries[j] : entries[j] + age_emb.weight![n - 1 - j];
        return torch.cat(rows, 1).MoveToOuterDisposeScope();
    }

    /// <summary>The attention stack over x with the memory rows (null = none) at gate α.</summary>
    public Tensor RunAttention(Tensor x, Tensor? memory, double alpha)
    {
        using var scope = torch.NewDisposeScope();
        for (int l = 0; l < attn_blocks.Count; l++)
        {
            MemoryKv? mkv = memory is null || alpha <= 0 ? null : attn_blocks[l].MemoryKeys(memory);
            x = attn_blocks[l].Run(x, mkv, alpha, null);
        }
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>LN_f: the normalised hidden states the head reads.</summary>
    public Tensor Normalize(Tensor x) => ln_out.call(x);

    /// <summary>Logits for normalised hidden states [.., d].</summary>
    public Tensor LmHead(Tensor hidden) => head.call(hidden);

    /// <summary>Logits [B, T, V] (or the last position only) continuing the stream <paramref name="state"/>.</summary>
    public Tensor Forward(Tensor ids, I3State state, bool lastOnly = false) => Forward(ids, (IModelState)state, lastOnly);

    // ---------------------------------------------------------------- streaming (inference)

    /// <summary>
    /// Normalised hidden states [B, T, d] of <paramref name="ids"/> [B, T] (or [T]) continuing <paramref name="state"/>;
    /// any length: the call is split at chunk boundaries, where the completed chunk is compressed into the history.
    /// Run it under no_grad (the state keeps detached tensors).
    /// </summary>
    public Tensor Hidden(Tensor ids, I3State state)
    {
        using var scope = torch.NewDisposeScope();
        var batched = ids.dim() == 1 ? ids.unsqueeze(0) : ids;
        if (batched.dtype != ScalarType.Int64) batched = batched.to(ScalarType.Int64);
        if (batched.device != Device) batched = batched.to(Device);
        if (batched.shape[0] != state.Batch) throw new HiciException($"batch {batched.shape[0]} does not match the state's {state.Batch}");
        long T = batched.shape[1];
        var outs = new List<Tensor>();
        for (long pos = 0; pos < T;)
        {
            long n = Math.Min(T - pos, Config.KernelWindow - state.ChunkPos);
            outs.Add(Step(batched.narrow(1, pos, n), state));
            pos += n;
        }
        var h = outs.Count == 1 ? outs[0] : torch.cat(outs, 1);
        return h.MoveToOuterDisposeScope();
    }


    /// <summary>One call that stays inside the current chunk (T ≤ W − ChunkPos).</summary>
    private Tensor Step(Tensor ids, I3State state)
    {
        using var scope = torch.NewDisposeScope();
        long n = ids.shape[1];
        var x = Embed(ids, state.ChunkPos);
        var (post, states) = RunRwkv(x, state.Rwkv, chunked: n > 1);
        for (int l = 0; l < states.Length; l++) { state.SetRwkv(l, states[l]); states[l].Dispose(); }
        if (Config.CompressFrom == CompressSource.PostRwkv) CopyToBuffer(state, post, n);
        if (state.MemKv is null && state.History.Count > 0)
        {
            using var mem = Memory(state.History.Entries);
            state.MemKv = attn_blocks.Select(b =>
            {
                var m = b.MemoryKeys(mem);
                return new MemoryKv(m.K.detach().DetachFromDisposeScope(), m.V.detach().DetachFromDisposeScope());
            }).ToArray();
        }
        var h = post;
        for (int l = 0; l < attn_blocks.Count; l++) h = attn_blocks[l].Run(h, state.MemKv?[l], 1.0, state.Kv[l]);
        if (Config.CompressFrom == CompressSource.Final) CopyToBuffer(state, h, n);
        var outH = ln_out.call(h);
        state.ChunkPos += (int)n;
        state.Advance(n);
        // Boundary: the logits just computed (position W−1 included) used the old history; the next chunk sees the new one.
        if (state.ChunkPos == Config.KernelWindow) CloseChunk(state);
        return outH.MoveToOuterDisposeScope();
    }

    private static void CopyToBuffer(I3State state, Tensor rows, long n)
    {
        using var noGrad = torch.no_grad();
        state.ChunkBuffer.narrow(1, state.ChunkPos, n).copy_(rows);
    }

    private void CloseChunk(I3State state)
    {
        using var scope = torch.NewDisposeScope();
        using (torch.no_grad()) state.History.Push(compressor.Run(state.ChunkBuffer));
        state.ChunkPos = 0;
        state.ClearMemKv();
        foreach (var c in state.Kv) c.Reset();
        if (!Config.CarryRwkvState) state.ResetRwkv();
    }

    // ---------------------------------------------------------------- training

    /// <summary>
    /// Teacher-forced forward of one whole chunk [B, W] for training. <paramref name="history"/>: detached latents of
    /// older chunks; <paramref name="pending"/>: the detached compressor input of the previous chunk (compressed here,
    /// inside the graph, so the compressor's parameters get a gradient — nothing else of the previous chunk does).
    /// Memory is used only when α &gt; 0. Returns logits, the detached compressor input of this chunk, the fresh latents
    /// (or null) and the RWKV states after the chunk (detached).
    /// </summary>
    public (Tensor Logits, Tensor NextPending, Tensor? Fresh, RwkvLayerState[] States) TrainChunk(
        Tensor ids, IReadOnlyList<Tensor> history, Tensor? pending, double alpha, IReadOnlyList<RwkvLayerState>? carry)
    {
        using var scope = torch.NewDisposeScope();
        long B = ids.shape[0];
        var x = Embed(ids, 0);
        var fresh = carry is null ? Enumerable.Range(0, blocks.Count).Select(_ => RwkvLayerState.Fresh(B, Config.DModel, DType, Device)).ToArray() : null;
        var (post, states) = RunRwkv(x, carry ?? fresh!, chunked: true);
        Tensor? latents = alpha > 0 && pending is not null ? compressor.Run(pending) : null;
        Tensor? memory = null;
        if (alpha > 0)
        {
            var entries = history.ToList();
            if (latents is not null) entries.Add(latents);
            if (entries.Count > Config.MaxCompressedChunks) entries = entries.Skip(entries.Count - Config.MaxCompressedChunks).ToList();
            if (entries.Count > 0) memory = Memory(entries);
        }
        var h = RunAttention(post, memory, alpha);
        var logits = head.call(ln_out.call(h));
        var next = (Config.CompressFrom == CompressSource.PostRwkv ? post : h).detach();
        var kept = states.Select(s => s.Detached()).ToArray();
        foreach (var s in states) s.Dispose();
        if (fresh is not null) foreach (var s in fresh) s.Dispose();
        return (logits.MoveToOuterDisposeScope(), next.MoveToOuterDisposeScope(), latents?.MoveToOuterDisposeScope(), kept);
    }
}
