"""Independent plain-torch implementation of the HiCI reference math, written from
the reference's llama_attn_hici.py / qwen3_attn_hici.py (LocalConstructorMulti,
GlobalIntegratorShared, forward_flashattn_hierarchical[_inference]), as docs/hici.md describes them. Used only to make test fixtures; it needs torch
(>= 1.13) and nothing else (no transformers, no flash-attn).

Everything is written for clarity rather than speed: the per-segment attention is a Python loop over
(batch row, segment) with an explicit dense mask, which is the dense equivalent of the
flash-attn varlen call in the reference's forward_flashattn_hierarchical. Module attribute names equal the reference state-dict keys.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CAUSAL_MODES = ("none", "causal_gi", "causal_shift", "causal_shift_g", "causal_gi_gonly")


class LocalConstructorMulti(nn.Module):
    """Spec 2: M learned slots cross-attend (h heads) over one segment."""

    def __init__(self, hidden_size, num_local_slots=8, num_heads=8, use_bottleneck=True, bottleneck_dim=512):
        super().__init__()
        assert hidden_size % num_heads == 0
        if use_bottleneck:
            assert bottleneck_dim % num_heads == 0
        self.hidden_size = hidden_size
        self.num_slots = num_local_slots
        self.num_heads = num_heads
        self.e = bottleneck_dim if use_bottleneck else hidden_size
        self.head_dim = self.e // num_heads
        self.memory_slots = nn.Parameter(torch.randn(num_local_slots, hidden_size) * (1.0 / math.sqrt(hidden_size)))
        self.q_proj = nn.Linear(hidden_size, self.e, bias=False)
        self.k_proj = nn.Linear(hidden_size, self.e, bias=False)
        self.v_proj = nn.Linear(hidden_size, self.e, bias=False)
        self.o_proj = nn.Linear(self.e, hidden_size, bias=False) if use_bottleneck else None

    def forward(self, x, mask=None):
        # x [R, S, H]; mask [R, S] (1 = valid)
        R, S, _ = x.shape
        h, dh = self.num_heads, self.head_dim
        qs = self.q_proj(self.memory_slots.unsqueeze(0).expand(R, -1, -1))       # [R, M, e]
        kx = self.k_proj(x)
        vx = self.v_proj(x)
        qs = qs.view(R, self.num_slots, h, dh).transpose(1, 2)
        kx = kx.view(R, S, h, dh).transpose(1, 2)
        vx = vx.view(R, S, h, dh).transpose(1, 2)
        scores = torch.matmul(qs, kx.transpose(-2, -1)) / math.sqrt(dh)
        if mask is not None:
            scores = scores.masked_fill(~mask.bool()[:, None, None, :], torch.finfo(scores.dtype).min)
        attn = torch.softmax(scores, dim=-1)
        out = torch.matmul(attn, vx).transpose(1, 2).reshape(R, self.num_slots, self.e)
        return self.o_proj(out) if self.o_proj is not None else out


def _stats(z):
    """z [B, R, H] -> [B, 5, H]: mean, max, min, population std (fp32, clamp 1e-6), normalised mean."""
    mu = z.mean(dim=1)
    mx = z.max(dim=1).values
    mn = z.min(dim=1).values
    sd = z.float().std(dim=1, unbiased=False).clamp(min=1e-6).to(z.dtype)
    nm = F.normalize(mu, p=2, dim=-1, eps=1e-6)
    return torch.stack([mu, mx, mn, sd, nm], dim=1)


def _causal_stats(L):
    """L [B, N, M, H] -> [B*N, 5, H], prefix n over chunks 0..n (GlobalIntegratorShared.forward_causal op sequence)."""
    B, N, M, H = L.shape
    act = L.dtype
    chunk_sum = L.sum(dim=2)
    cs = torch.cumsum(chunk_sum, dim=1)
    cnt = (torch.arange(1, N + 1, dtype=act, device=L.device) * M).view(1, N, 1)
    cum_mean = cs / cnt
    cum_max = torch.cummax(L.max(dim=2).values, dim=1).values
    cum_min = torch.cummin(L.min(dim=2).values, dim=1).values
    sq = (L.float() ** 2).sum(dim=2)
    csq = torch.cumsum(sq, dim=1)
    e2 = csq / cnt.float()
    e1 = cs.float() / cnt.float()
    cum_std = torch.sqrt(torch.clamp(e2 - e1 ** 2, min=1e-12)).to(act)
    cum_nm = F.normalize(cum_mean, p=2, dim=-1, eps=1e-6)
    return torch.stack([cum_mean, cum_max, cum_min, cum_std, cum_nm], dim=2).reshape(B * N, 5, H)


class _GIBase(nn.Module):
    def _init_attention(self, hidden_size):
        # registered last, in this order (the state-dict order of both integrators)
        self.q_proj = nn.Linear(self.D, self.D, bias=False)
        self.k_proj = nn.Linear(self.D, self.D, bias=False)
        self.v_proj = nn.Linear(self.D, self.D, bias=False)
        self.o_proj = nn.Linear(self.D, self.D, bias=False)
        self.expand = nn.Linear(self.D, hidden_size, bias=False)

    def _attend(self, c):
        # c [B', 5, D] -> [B', K, H]
        Bp = c.shape[0]
        h, dg = self.num_heads, self.head_dim
        q = self.q_proj(self.global_queries.unsqueeze(0).expand(Bp, -1, -1)).view(Bp, self.num_global, h, dg).transpose(1, 2)
        k = self.k_proj(c).view(Bp, 5, h, dg).transpose(1, 2)
        v = self.v_proj(c).view(Bp, 5, h, dg).transpose(1, 2)
        a = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * (dg ** -0.5), dim=-1)
        o = torch.matmul(a, v).transpose(1, 2).reshape(Bp, self.num_global, self.D)
        return self.expand(self.o_proj(o)) * F.softplus(self.expand_scale_param)

    def forward(self, L):
        B = L.shape[0]
        return self._attend(self._compress(_stats(L.reshape(B, -1, L.shape[-1]))))

    def forward_causal(self, L):
        B, N = L.shape[0], L.shape[1]
        return self._attend(self._compress(_causal_stats(L))).view(B, N, self.num_global, -1)


class GlobalIntegratorShared(_GIBase):
    def __init__(self, hidden_size, global_slots=4, compress_dim=512, shared_compress_dim=128, num_heads=8,
                 output_scale_init=0.1):
        super().__init__()
        assert compress_dim % num_heads == 0
        self.num_global = global_slots
        self.num_heads = num_heads
        self.D = compress_dim if shared_compress_dim < compress_dim else shared_compress_dim
        self.head_dim = self.D // num_heads
        self.global_queries = nn.Parameter(torch.zeros(global_slots, self.D))
        self.expand_scale_param = nn.Parameter(torch.tensor(math.log(math.exp(output_scale_init) - 1.0)))
        self.shared_compressor = nn.Sequential(nn.Linear(hidden_size, shared_compress_dim, bias=False),
                                               nn.LayerNorm(shared_compress_dim))
        if shared_compress_dim < compress_dim:
            self.stat_expand = nn.Sequential(nn.Linear(shared_compress_dim, self.D, bias=False), nn.LayerNorm(self.D))
        else:
            self.stat_expand = nn.Identity()
        self._init_attention(hidden_size)

    def _compress(self, s):
        Bp, _, H = s.shape
        return self.stat_expand(self.shared_compressor(s.reshape(Bp * 5, H))).view(Bp, 5, self.D)


class GlobalIntegrator(_GIBase):
    def __init__(self, hidden_size, global_slots=4, compress_dim=512, num_heads=8, output_scale_init=0.1):
        super().__init__()
        self.num_global = global_slots
        self.num_heads = num_heads
        self.D = compress_dim
        self.head_dim = self.D // num_heads
        self.global_queries = nn.Parameter(torch.zeros(global_slots, self.D))
        self.expand_scale_param = nn.Parameter(torch.tensor(math.log(math.exp(output_scale_init) - 1.0)))
        self.stat_compressors = nn.ModuleList(
            [nn.Sequential(nn.Linear(hidden_size, self.D, bias=False), nn.LayerNorm(self.D)) for _ in range(5)])
        self._init_attention(hidden_size)

    def _compress(self, s):
        return torch.stack([self.stat_compressors[i](s[:, i]) for i in range(5)], dim=1)


# ----------------------------------------------------------------------------- segmentation

def training_segment_size(T, ratio=0.25, segment_size=None):
    if segment_size is not None:
        S = segment_size if T >= segment_size else T
    else:
        S = int(T * ratio)
    S = max(1, S)
    if T % S != 0:
        raise ValueError("T %d not divisible by S %d" % (T, S))
    return S


def inference_segment_size(T, ratio=0.25, segment_size=None):
    S = segment_size if segment_size is not None else int(T * ratio)
    if T < S:
        S = T
    return max(1, S)


# ----------------------------------------------------------------------------- attention

def _dense_segment_attention(q, k, v, P, mask_q, mask_kv):
    """q [nq, S, d]; k, v [nkv, P+S, d]; masks bool. Spec 4.8 dense rule. Returns [S, nq, d]."""
    nq, S, d = q.shape
    nkv = k.shape[0]
    rep = nq // nkv
    out = torch.zeros(S, nq, d, dtype=q.dtype)
    for i in range(nq):
        kv = i // rep
        logits = torch.matmul(q[i], k[kv].t()) / math.sqrt(d)       # [S, P+S]
        for a in range(S):
            if not mask_q[a]:
                continue
            allowed = torch.tensor([bool(mask_kv[j]) and (j < P or (j - P) <= a) for j in range(P + S)])
            row = logits[a].masked_fill(~allowed, float("-inf"))
            out[a, i] = torch.softmax(row, dim=-1) @ v[kv]
    return out


def hici_segmented(hidden, mask, q, k, v, k_proj_w, v_proj_w, lc, gi, S, mode, use_memory=True):
    """hidden [B,T,H]; mask [B,T] bool; q [B,nq,T,d]; k,v [B,nkv,T,d]; k_proj_w/v_proj_w: the host layer's
    k_proj/v_proj, as weights [nkv*d, H] or as callables. Returns [B, T, nq*d] (attention output before
    o_proj). T must be a multiple of S."""
    k_fn = k_proj_w if callable(k_proj_w) else (lambda m: m @ k_proj_w.t())
    v_fn = v_proj_w if callable(v_proj_w) else (lambda m: m @ v_proj_w.t())
    B, T, H = hidden.shape
    nq, d = q.shape[1], q.shape[3]
    nkv = k.shape[1]
    N = T // S
    assert N * S == T
    G_seg = [[None] * N for _ in range(B)]    # per (b, g): [P_g, H] or None
    mem_visible = [[True] * N for _ in range(B)]
    if use_memory and lc is not None:
        chunks = hidden.view(B, N, S, H).reshape(B * N, S, H)
        L = lc(chunks, mask.view(B * N, S)).view(B, N, -1, H)
        G_all = None
        G_one = None
        if gi is not None:
            if mode == "none":
                G_one = gi(L)                      # [B, K, H]
            else:
                G_all = gi.forward_causal(L)       # [B, N, K, H]
        for b in range(B):
            for g in range(N):
                parts = []
                if mode in ("causal_shift", "causal_shift_g"):
                    src = g - 1
                    if gi is not None:
                        parts.append(torch.zeros_like(G_all[b, 0]) if src < 0 else G_all[b, src])
                    if mode == "causal_shift":
                        parts.append(torch.zeros_like(L[b, 0]) if src < 0 else L[b, src])
                    mem_visible[b][g] = src >= 0
                else:
                    if gi is not None:
                        parts.append(G_one[b] if mode == "none" else G_all[b, g])
                    if mode != "causal_gi_gonly":
                        parts.append(L[b, g])
                G_seg[b][g] = torch.cat(parts, dim=0) if parts else None
    out = torch.zeros(B, T, nq * d, dtype=q.dtype)
    for b in range(B):
        for g in range(N):
            sl = slice(g * S, (g + 1) * S)
            mem = G_seg[b][g]
            tk, tv = k[b, :, sl], v[b, :, sl]
            mq = mask[b, sl]
            if mem is not None:
                P = mem.shape[0]
                km = k_fn(mem).view(P, nkv, d).transpose(0, 1)     # no RoPE, no k_norm
                vm = v_fn(mem).view(P, nkv, d).transpose(0, 1)
                kk = torch.cat([km, tk], dim=1)
                vv = torch.cat([vm, tv], dim=1)
                mkv = torch.cat([torch.full((P,), mem_visible[b][g], dtype=torch.bool), mq])
            else:
                P = 0
                kk, vv, mkv = tk, tv, mq
            o = _dense_segment_attention(q[b, :, sl], kk, vv, P, mq, mkv)      # [S, nq, d]
            out[b, sl] = o.reshape(S, nq * d)
    return out


def hici_training_forward(hidden, mask, q, k, v, k_proj_w, v_proj_w, lc, gi, mode="none", ratio=0.25, segment_size=None):
    T = hidden.shape[1]
    if mask is None:
        mask = torch.ones(hidden.shape[:2], dtype=torch.bool)
    S = training_segment_size(T, ratio, segment_size)
    return hici_segmented(hidden, mask.bool(), q, k, v, k_proj_w, v_proj_w, lc, gi, S, mode, True)


def hici_inference_forward(hidden, mask, q, k, v, k_proj_w, v_proj_w, lc, gi, mode="none", ratio=0.25, segment_size=None):
    B, T, H = hidden.shape
    if mask is None:
        mask = torch.ones(B, T, dtype=torch.bool)
    mask = mask.bool()
    S = inference_segment_size(T, ratio, segment_size)
    Tp = -(-T // S) * S
    if Tp != T:
        pad = Tp - T
        hidden = torch.cat([hidden, torch.zeros(B, pad, H)], dim=1)
        mask = torch.cat([mask, torch.zeros(B, pad, dtype=torch.bool)], dim=1)
        q = torch.cat([q, torch.zeros(B, q.shape[1], pad, q.shape[3])], dim=2)
        k = torch.cat([k, torch.zeros(B, k.shape[1], pad, k.shape[3])], dim=2)
        v = torch.cat([v, torch.zeros(B, v.shape[1], pad, v.shape[3])], dim=2)
    N = Tp // S
    out = hici_segmented(hidden, mask, q, k, v, k_proj_w, v_proj_w, lc, gi, S, mode, use_memory=N > 1)
    return out[:, :T]


def decode_attention(q, k, v):
    """q [B,nq,Tn,d], k,v [B,nkv,Tk,d]; bottom-right causal; returns [B,Tn,nq*d]."""
    B, nq, Tn, d = q.shape
    nkv, Tk = k.shape[1], k.shape[2]
    rep = nq // nkv
    out = torch.zeros(B, Tn, nq, d)
    for b in range(B):
        for i in range(nq):
            logits = q[b, i] @ k[b, i // rep].t() / math.sqrt(d)
            for a in range(Tn):
                row = logits[a].clone()
                row[a + (Tk - Tn) + 1:] = float("-inf")
                out[b, a, i] = torch.softmax(row, -1) @ v[b, i // rep]
    return out.reshape(B, Tn, nq * d)
