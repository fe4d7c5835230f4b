"""Independent reference of the i3 hybrid model (RWKV-4 + memory attention + latent compression), written from the
model's definition in docs/i3.md in plain torch float64, NOT from the C# code:

  * WKV evaluated from its definition: for every t the explicit sum over all earlier tokens i (no recurrence, no
    max-shift; moderate magnitudes only), plus the carried (A, B) sums in un-normalised form;
  * a whole stream processed chunk by chunk (chunk = kernel window W); the memory of chunk c is the compressor
    output of the newest M completed chunks before c, each plus age embedding A[n-1-j];
  * attention as explicit matmul + softmax over [memory ; chunk] with a causal mask on chunk columns.
"""
import math

import torch
import torch.nn.functional as F

P_NEG = -1e30


def layer_norm(x, sd, name, eps):
    return F.layer_norm(x, (x.shape[-1],), sd[name + ".weight"], sd[name + ".bias"], eps)


def linear(x, sd, name):
    b = sd.get(name + ".bias")
    y = x @ sd[name + ".weight"].T
    return y if b is None else y + b


def wkv_definition(k, v, w, u, A, Bs):
    """k, v: [T, d]; w, u: [d]; A, Bs: carried un-normalised sums [d] (zeros for a fresh state).
    Returns outputs [T, d] and the exit sums (A', B')."""
    T = k.shape[0]
    out = []
    for t in range(T):
        num = torch.exp(t * w) * A + torch.exp(u + k[t]) * v[t]
        den = torch.exp(t * w) * Bs + torch.exp(u + k[t])
        for i in range(t):
            e = torch.exp((t - 1 - i) * w + k[i])
            num = num + e * v[i]
            den = den + e
        out.append(num / den)
    A2 = torch.exp(T * w) * A
    B2 = torch.exp(T * w) * Bs
    for i in range(T):
        e = torch.exp((T - 1 - i) * w + k[i])
        A2 = A2 + e * v[i]
        B2 = B2 + e
    return torch.stack(out), A2, B2


def canonical(A, Bs, logmax):
    """(a, b, p) of sums whose largest log-weight is logmax: a = A·e^{-p}."""
    return A * torch.exp(-logmax), Bs * torch.exp(-logmax), logmax


def rwkv_block(cfg, sd, p, x, st):
    """x: [T, d] for one batch row; st: dict with shift_att, shift_ffn, A, B (un-normalised). Returns x, new st."""
    eps = cfg["layer_norm_eps"]
    z = layer_norm(x, sd, p + "ln1", eps)
    prev = torch.cat([st["shift_att"][None], z[:-1]], 0)
    mix = lambda mu: z * sd[p + "att." + mu] + prev * (1 - sd[p + "att." + mu])
    k = linear(mix("time_mix_k"), sd, p + "att.key")
    v = linear(mix("time_mix_v"), sd, p + "att.value")
    r = torch.sigmoid(linear(mix("time_mix_r"), sd, p + "att.receptance"))
    w = -torch.exp(sd[p + "att.time_decay"])
    u = sd[p + "att.time_first"]
    y, A2, B2 = wkv_definition(k, v, w, u, st["A"], st["B"])
    x = x + linear(r * y, sd, p + "att.output")
    z2 = layer_norm(x, sd, p + "ln2", eps)
    prev2 = torch.cat([st["shift_ffn"][None], z2[:-1]], 0)
    mix2 = lambda mu: z2 * sd[p + "ffn." + mu] + prev2 * (1 - sd[p + "ffn." + mu])
    kk = torch.relu(linear(mix2("time_mix_k"), sd, p + "ffn.key")) ** 2
    x = x + torch.sigmoid(linear(mix2("time_mix_r"), sd, p + "ffn.receptance")) * linear(kk, sd, p + "ffn.value")
    return x, {"shift_att": z[-1], "shift_ffn": z2[-1], "A": A2, "B": B2}


def heads_for(d, req):
    return max(h for h in range(1, req + 1) if d % h == 0)


def attention_block(cfg, sd, p, x, mem):
    """x: [T, d] chunk tokens (from chunk position 0); mem: [S, d] or None."""
    eps, d = cfg["layer_norm_eps"], cfg["d_model"]
    H = heads_for(d, cfg["n_heads_requested"])
    hd = d // H
    W = sd[p + "qkv.weight"]
    bq = sd[p + "qkv.bias"]
    hx = layer_norm(x, sd, p + "ln1", eps)
    qkv = hx @ W.T + bq
    q, k, v = qkv[:, :d], qkv[:, d:2 * d], qkv[:, 2 * d:]
    T = x.shape[0]
    S = 0
    if mem is not None:
        hm = layer_norm(mem, sd, p + "ln1", eps)
        m = hm @ W.T + bq
        k = torch.cat([m[:, d:2 * d], k], 0)
        v = torch.cat([m[:, 2 * d:], v], 0)
        S = mem.shape[0]
    allowed = torch.ones(T, S + T, dtype=torch.bool)
    for t in range(T):
        for j in range(T):
            allowed[t, S + j] = j <= t
    outs = []
    for h in range(H):
        sl = slice(h * hd, (h + 1) * hd)
        score = q[:, sl] @ k[:, sl].T / math.sqrt(hd)
        score = score.masked_fill(~allowed, float("-inf"))
        outs.append(torch.softmax(score, -1) @ v[:, sl])
    x = x + linear(torch.cat(outs, -1), sd, p + "proj")
    h2 = layer_norm(x, sd, p + "ln2", eps)
    return x + linear(F.gelu(linear(h2, sd, p + "fc1")), sd, p + "fc2")


def compressor(cfg, sd, X):
    eps, d = cfg["layer_norm_eps"], cfg["d_model"]
    H = heads_for(d, cfg["compressor_heads_requested"])
    hd = d // H
    c = "compressor."
    z0 = sd[c + "latents"]
    q = linear(layer_norm(z0, sd, c + "ln_q", eps), sd, c + "q_proj")
    kv = layer_norm(X, sd, c + "ln_kv", eps)
    k = linear(kv, sd, c + "k_proj")
    v = linear(kv, sd, c + "v_proj")
    outs = []
    for h in range(H):
        sl = slice(h * hd, (h + 1) * hd)
        outs.append(torch.softmax(q[:, sl] @ k[:, sl].T / math.sqrt(hd), -1) @ v[:, sl])
    z1 = z0 + linear(torch.cat(outs, -1), sd, c + "o_proj")
    z2 = z1 + linear(F.gelu(linear(layer_norm(z1, sd, c + "ln_f", eps), sd, c + "fc1")), sd, c + "fc2")
    return layer_norm(z2, sd, c + "ln_o", eps)


def fresh_rwkv(cfg):
    d = cfg["d_model"]
    z = torch.zeros(d, dtype=torch.float64)
    return [{"shift_att": z, "shift_ffn": z, "A": z, "B": z} for _ in range(cfg["n_rwkv_layers"])]


def stream_logits(cfg, sd, ids):
    """Logits [len(ids), V] of one row processed as a stream of chunks (the last one may be partial)."""
    W, M = cfg["kernel_window"], cfg["max_compressed_chunks"]
    carry = cfg["carry_rwkv_state"]
    final = cfg["compress_from"] == "final"
    history = []
    states = fresh_rwkv(cfg)
    out = []
    for c0 in range(0, len(ids), W):
        chunk = ids[c0:c0 + W]
        if not carry:
            states = fresh_rwkv(cfg)
        x = sd["emb.weight"][chunk] + sd["pos_emb.weight"][: len(chunk)]
        for l in range(cfg["n_rwkv_layers"]):
            x, states[l] = rwkv_block(cfg, sd, "blocks.%d." % l, x, states[l])
        post = x
        mem = None
        if history:
            n = len(history)
            rows = [history[j] + (sd["age_emb.weight"][n - 1 - j] if cfg["use_age_embedding"] else 0) for j in range(n)]
            mem = torch.cat(rows, 0)
        for l in range(cfg["n_attn_layers"]):
            x = attention_block(cfg, sd, "attn_blocks.%d." % l, x, mem)
        out.append(linear(layer_norm(x, sd, "ln_out", cfg["layer_norm_eps"]), sd, "head"))
        if len(chunk) == W:
            history.append(compressor(cfg, sd, x if final else post))
            history = history[-M:]
    return torch.cat(out, 0)


def random_weights(cfg, gen):
    """A random i3 state dict (float64) with non-trivial values; names are the checkpoint keys."""
    d, V, W, f = cfg["d_model"], cfg["vocab_size"], cfg["kernel_window"], cfg["ffn_mult"]
    cf, L, M = cfg["compressor_ffn_mult"], cfg["latents_per_chunk"], cfg["max_compressed_chunks"]
    sd = {}
    rn = lambda *s, std=0.3: torch.randn(*s, generator=gen, dtype=torch.float64) * std
    ru = lambda lo, hi, *s: lo + (hi - lo) * torch.rand(*s, generator=gen, dtype=torch.float64)

    def ln(name):
        sd[name + ".weight"] = 1 + rn(d, std=0.1)
        sd[name + ".bias"] = rn(d, std=0.1)

    def lin(name, i, o, bias=True):
        sd[name + ".weight"] = rn(o, i, std=1 / math.sqrt(i))
        if bias:
            sd[name + ".bias"] = rn(o, std=0.1)

    sd["emb.weight"] = rn(V, d, std=1.0)
    sd["pos_emb.weight"] = rn(W, d, std=0.5)
    for l in range(cfg["n_rwkv_layers"]):
        p = "blocks.%d." % l
        ln(p + "ln1"); ln(p + "ln2")
        sd[p + "att.time_decay"] = ru(-3, 1.5, d)
        sd[p + "att.time_first"] = ru(-1.5, 1.5, d)
        for mu in ("time_mix_k", "time_mix_v", "time_mix_r"):
            sd[p + "att." + mu] = ru(0, 1, d)
        for n in ("key", "value", "receptance", "output"):
            lin(p + "att." + n, d, d, bias=False)
        sd[p + "ffn.time_mix_k"] = ru(0, 1, d)
        sd[p + "ffn.time_mix_r"] = ru(0, 1, d)
        lin(p + "ffn.key", d, f * d, bias=False)
        lin(p + "ffn.value", f * d, d, bias=False)
        lin(p + "ffn.receptance", d, d, bias=False)
    for l in range(cfg["n_attn_layers"]):
        p = "attn_blocks.%d." % l
        ln(p + "ln1"); ln(p + "ln2")
        lin(p + "qkv", d, 3 * d); lin(p + "proj", d, d)
        lin(p + "fc1", d, f * d); lin(p + "fc2", f * d, d)
    ln("ln_out")
    lin("head", d, V)
    c = "compressor."
    sd[c + "latents"] = rn(L, d, std=1.0)
    for n in ("ln_q", "ln_kv", "ln_f", "ln_o"):
        ln(c + n)
    for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
        lin(c + n, d, d)
    lin(c + "fc1", d, cf * d); lin(c + "fc2", cf * d, d)
    if cfg["use_age_embedding"] and M > 0:
        sd["age_emb.weight"] = rn(M, d, std=0.5)
    return sd
