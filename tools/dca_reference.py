"""Dual chunk attention (DCA, ChunkLlama) in plain torch: an independent re-implementation of the reference's
ChunkLlama/chunkllama_attn_replace.py (Llama) and ChunkLlama/chunkqwen3_attn_replace.py (Qwen3), written from
their functions, for the golden fixtures of tools/make_dca_fixtures.py. Needs only torch (Debian python3-torch).

What it reproduces, function by function:
  * replace_with_chunkllama(pretraining_length, local_window_size) / replace_with_chunkqwen3(...):
    chunk_size = L*3//4, local_window = local_window_size or L//8 (Llama) / L//16 (Qwen3),
    chunk_len = chunk_size - local_window;
  * ChunkLlamaRotaryEmbedding._set_cos_sin_cache / forward (ChunkQwen3RotaryEmbedding for Qwen3):
    keys at (p % chunk_len)/f, intra queries at (p % chunk_len)/f, successive queries at
    min(p % chunk_len + chunk_len, chunk_size)/f, inter queries at the successive position of chunk_len-1;
    Llama multiplies every cos/sin table by mscale = 0.05*ln(s)+1, s = seq_len/max_position_embeddings, and
    rebuilds the tables only when a call's kv_seq_len exceeds the largest seen so far (the mscale "sticks");
    Qwen3 has no mscale and f = 1; Llama's f is config.rope_scaling['factor'] whatever the rope type;
  * forward, prefill (q_len == kv_len): chunk 0 causal; each later chunk: intra (causal), successive (the
    previous chunk, non-causal), inter (everything before the previous chunk, non-causal), each with its
    log-sum-exp as flash_attn_func(return_attn_probs=True) returns it;
  * merge_attn_outputs: weights softmax over the partial lse's in fp32; Llama casts them to bf16 before the
    in-place multiply (round_weights=True), Qwen3 keeps fp32 but multiplies in place into the output dtype;
  * forward, decoding (q_len != kv_len): scores of the three key ranges concatenated in key order, one fp32
    softmax, one matmul with all values.
Nothing here is derived from the C# code.
"""
import math

import torch

MAX_NEW_TOKENS = 512


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):
    b, kv, s, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, kv, n_rep, s, d).reshape(b, kv * n_rep, s, d)


def get_mscale(scale):
    return 1.0 if scale <= 1 else 0.05 * math.log(scale) + 1.0


class Settings:
    """One DCA configuration. variant: 'llama' | 'qwen3'. round_weights / mscale default to the variant's
    reference behaviour; mscale: 'sticky' (Llama) | 'off' (Qwen3)."""

    def __init__(self, variant, pretraining_length, local_window=None, head_dim=8, base=10000.0,
                 scaling_factor=1.0, max_position_embeddings=4096, round_weights=None, mscale=None):
        self.variant = variant
        self.chunk_size = pretraining_length * 3 // 4
        default_lw = pretraining_length // 8 if variant == "llama" else pretraining_length // 16
        self.local_window = local_window if local_window else default_lw
        self.chunk_len = self.chunk_size - self.local_window
        self.dim = head_dim
        self.base = base
        self.f = scaling_factor if variant == "llama" else 1.0
        self.max_pos = max_position_embeddings
        self.round_weights = (variant == "llama") if round_weights is None else round_weights
        self.mscale = ("sticky" if variant == "llama" else "off") if mscale is None else mscale


class ChunkRotary:
    """Per-layer tables with the reference's rebuild-on-longer-input state (Llama: initial seq_len
    max_position_embeddings, Qwen3: 16384; only the Llama tables carry mscale)."""

    def __init__(self, s):
        self.s = s
        self.max_seq_len = s.max_pos if s.variant == "llama" else 16384
        self._build(self.max_seq_len)

    def _build(self, seq_len):
        s = self.s
        m = get_mscale(seq_len / s.max_pos) if s.mscale == "sticky" else 1.0
        self.mscale_value = m
        inv_freq = 1.0 / (s.base ** (torch.arange(0, s.dim, 2).float() / s.dim))
        c = s.chunk_len
        q_t = torch.arange(c, dtype=torch.float32) / s.f
        qc_t = (torch.arange(c, dtype=torch.float32) + c).clamp(max=s.chunk_size) / s.f
        k_t = (torch.arange(seq_len + MAX_NEW_TOKENS, dtype=torch.float32) % c) / s.f

        def table(t):
            fr = torch.outer(t, inv_freq)
            emb = torch.cat((fr, fr), dim=-1)
            return emb.cos() * m, emb.sin() * m

        self.q = table(q_t)
        self.qc = table(qc_t)
        self.k = table(k_t)

    def __call__(self, seq_len):
        if seq_len > self.max_seq_len:
            self._build(seq_len)
            self.max_seq_len = seq_len
        return self.q, self.qc, self.k


def rope_at(x, table, idx, dtype):
    """x [B, H, T, d] rotated with rows idx [T] of (cos, sin) (cast to x's dtype as forward does)."""
    cos = table[0][idx].to(dtype)[None, None]
    sin = table[1][idx].to(dtype)[None, None]
    return x * cos + rotate_half(x) * sin


def attn_lse(q, k, v, causal):
    """flash_attn_func(..., causal, return_attn_probs=True) in exact math: output in q's dtype, lse fp32 [B, H, Tq].
    causal is only used with Tq == Tk (as the reference calls it)."""
    d = q.shape[-1]
    s = torch.matmul(q.float(), k.float().transpose(2, 3)) / math.sqrt(d)
    if causal:
        tq, tk = s.shape[-2], s.shape[-1]
        assert tq == tk
        s = s.masked_fill(torch.ones(tq, tk, dtype=torch.bool).triu(1), float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.softmax(s, dim=-1)
    return torch.matmul(p, v.float()).to(q.dtype), lse


def merge(parts, round_weights):
    """merge_attn_outputs for one chunk's [(O, lse), ...] (intra, successive[, inter])."""
    outs = torch.stack([o for o, _ in parts])
    logits = torch.stack([l for _, l in parts]).to(torch.float32)
    mx = torch.max(logits, dim=0).values
    w = torch.exp(logits - mx.unsqueeze(0))
    w = w / torch.sum(w, dim=0)
    if round_weights:
        w = w.to(torch.bfloat16)
    outs *= w.unsqueeze(-1)
    return outs.sum(dim=0)


class DcaLayer:
    """One layer's DCA attention (before o_proj) with its own rotary state and KV cache (rotated keys)."""

    def __init__(self, s):
        self.s = s
        self.rotary = ChunkRotary(s)
        self.k_cache = None
        self.v_cache = None

    def __call__(self, q, k, v, use_cache=False):
        """q [B, H, T, d], k/v [B, Hkv, T, d] unrotated (after Qwen3's q_norm/k_norm); returns [B, H, T, d].
        With use_cache the keys/values are appended to this layer's cache and the positions continue it."""
        s = self.s
        c = s.chunk_len
        past = 0 if self.k_cache is None else self.k_cache.shape[2]
        t = q.shape[2]
        kv_len = past + t
        qt, qct, kt = self.rotary(kv_len)
        pos = torch.arange(past, kv_len)
        k = rope_at(k, kt, pos, k.dtype)
        if use_cache:
            self.k_cache = k if self.k_cache is None else torch.cat([self.k_cache, k], dim=2)
            self.v_cache = v if self.v_cache is None else torch.cat([self.v_cache, v], dim=2)
            k, v = self.k_cache, self.v_cache
        g = q.shape[1] // k.shape[1]
        k, v = repeat_kv(k, g), repeat_kv(v, g)
        pm = pos % c
        dt = q.dtype
        if t == kv_len:
            results = [attn_lse(rope_at(q[:, :, :c], qt, pm[:c], dt), k[:, :, :c], v[:, :, :c], True)[0]]
            kp, vp = k[:, :, :c], v[:, :, :c]
            remain = kv_len - c
            while remain > 0:
                b = kv_len - remain
                e = b + min(c, remain)
                parts = [attn_lse(rope_at(q[:, :, b:e], qt, pm[b:e], dt), k[:, :, b:e], v[:, :, b:e], True),
                         attn_lse(rope_at(q[:, :, b:e], qct, pm[b:e], dt), kp, vp, False)]
                if b - kp.shape[2] > 0:
                    inter = torch.full((e - b,), c - 1, dtype=torch.long)
                    parts.append(attn_lse(rope_at(q[:, :, b:e], qct, inter, dt),
                                          k[:, :, :b - kp.shape[2]], v[:, :, :b - kp.shape[2]], False))
                results.append(merge(parts, s.round_weights))
                kp, vp = k[:, :, b:e], v[:, :, b:e]
                remain -= c
            return torch.cat(results, dim=2)
        assert t == 1, "the reference decodes one token at a time"
        cur = (kv_len - 1) // c
        d = q.shape[-1]
        scores = [torch.matmul(rope_at(q, qt, pm, dt), k[:, :, c * cur:kv_len].transpose(2, 3)) / math.sqrt(d)]
        if cur >= 1:
            scores = [torch.matmul(rope_at(q, qct, pm, dt), k[:, :, c * (cur - 1):c * cur].transpose(2, 3))
                      / math.sqrt(d)] + scores
        if cur >= 2:
            scores = [torch.matmul(rope_at(q, qct, torch.tensor([c - 1]), dt), k[:, :, :c * (cur - 1)].transpose(2, 3))
                      / math.sqrt(d)] + scores
        w = torch.softmax(torch.cat(scores, dim=-1), dim=-1, dtype=torch.float32).to(dt)
        return torch.matmul(w, v)


def union_softmax(q, k, v, s):
    """Cross-check of the prefill: for every query the softmax over all earlier keys with the three rotations
    chosen per key (no chunk loop, no merge), fp32, mscale off. Equal to DcaLayer when round_weights is off."""
    c = s.chunk_len
    t = q.shape[2]
    g = q.shape[1] // k.shape[1]
    k, v = repeat_kv(k, g).float(), repeat_kv(v, g).float()
    inv = 1.0 / (s.base ** (torch.arange(0, s.dim, 2).float() / s.dim))

    def rot(x, p):
        fr = torch.outer(torch.as_tensor(p, dtype=torch.float32).reshape(-1) / s.f, inv)
        emb = torch.cat((fr, fr), dim=-1)
        return x * emb.cos() + rotate_half(x) * emb.sin()

    kr = rot(k, [j % c for j in range(t)])
    out = torch.zeros_like(q, dtype=torch.float32)
    for i in range(t):
        qi = q[:, :, i:i + 1].float()
        ci, pi = i // c, i % c
        rows = []
        for j in range(i + 1):
            cj = j // c
            if cj == ci:
                p = pi
            elif cj == ci - 1:
                p = min(pi + c, s.chunk_size)
            else:
                p = min(c - 1 + c, s.chunk_size)
            rows.append((rot(qi, [p]) * kr[:, :, j:j + 1]).sum(-1) / math.sqrt(s.dim))
        w = torch.softmax(torch.cat(rows, dim=-1), dim=-1)
        out[:, :, i] = torch.matmul(w.unsqueeze(2), v[:, :, :i + 1])[:, :, 0]
    return out
