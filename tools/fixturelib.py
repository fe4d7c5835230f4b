"""Helpers shared by the python fixture generators in tools/ (make_*_fixtures.py, make_hici_reference_folder.py,
hici_model_reference.py). Needs only torch (Debian's /usr/bin/python3); nothing here is derived from the C# code.

  * safetensors written and read by hand (8-byte LE header length + JSON header + raw bytes; no pip package),
    JSON files (config.json, hici_config.json, adapter_config.json, ...);
  * the tiny HF configs (llama_config, qwen3_config), PEFT's adapter_config (peft_config) and random_state_dict (random checkpoints, rounded to the
    storage dtype);
  * the HF reference math, written from transformers' LlamaForCausalLM / Qwen3ForCausalLM (eager attention,
    modeling_rope_utils for the RoPE variants) in plain torch: rms_norm, RoPE, q/k/v projection, eager
    attention, MLP, and one decoder loop (decoder_logits) whose attention is a callback, so the plain HF
    forward (forward) and the HiCI forwards run the same layer math;
  * HiCI modules of tools/hici_reference.py: random (randomise / random_hici_modules) or loaded from a state
    dict (hici_modules_from), and the HiCI attention of one layer (hici_attention).
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import hici_reference as ref  # noqa: E402

# ---------------------------------------------------------------- files

ST_DTYPE = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.float64: "F64",
            torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
            torch.bool: "BOOL"}
_FROM_ST = {v: k for k, v in ST_DTYPE.items()}


def tensor_bytes(t):
    """The raw little-endian bytes safetensors stores (bf16/f16 as their bits, bool as one byte each)."""
    t = t.detach().contiguous().cpu()
    if t.dtype in (torch.bfloat16, torch.float16):   # numpy has no bfloat16: reinterpret the bits
        t = t.view(torch.int16)
    elif t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None, sort=False, max_bytes=None, log=False):
    """tensors: name -> tensor, written in insertion order (sort=True: by name); metadata values as strings,
    after the tensors in the header; header padded with spaces to 8 bytes. Returns the file size."""
    header, blobs, off = {}, [], 0
    for name in (sorted(tensors) if sort else tensors):
        b = tensor_bytes(tensors[name])
        header[name] = {"dtype": ST_DTYPE[tensors[name].dtype], "shape": list(tensors[name].shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # the format recommends 8-byte alignment of the data
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    size = os.path.getsize(path)
    assert max_bytes is None or size < max_bytes, "%s is %d bytes (limit %d)" % (path, size, max_bytes)
    if log:
        print("wrote %s (%d bytes, %d tensors)" % (os.path.relpath(path, REPO), size, len(tensors)))
    return size


def read_safetensors(path):
    """name -> tensor (a copy), any dtype of ST_DTYPE."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        dt = _FROM_ST[e["dtype"]]
        raw = bytearray(data[base + b:base + end])
        if dt in (torch.bfloat16, torch.float16):
            t = torch.frombuffer(raw, dtype=torch.int16).view(dt)
        else:
            t = torch.frombuffer(raw, dtype=dt)
        out[name] = t.reshape(e["shape"]).clone()
    return out


def write_json(path, obj, **kw):
    """json.dump(obj, **kw) into path (no trailing newline); callers pass indent=2 etc."""
    with open(path, "w") as f:
        json.dump(obj, f, **kw)


def read_json(path):
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------- tiny HF configs and random checkpoints

def llama_config(**kw):
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "vocab_size": 256, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 64,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": None, "tie_word_embeddings": False,
        "attention_bias": False, "mlp_bias": False, "bos_token_id": 1, "eos_token_id": 2,
        "torch_dtype": "bfloat16", "use_cache": True,
    }
    cfg.update(kw)
    return cfg


def qwen3_config():
    """Qwen3: head_dim 32 with hidden 64 (heads × head_dim ≠ hidden), q_norm/k_norm, GQA 4/2, tied."""
    return {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_act": "silu",
        "vocab_size": 256, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "max_position_embeddings": 128,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "rope_scaling": None, "tie_word_embeddings": True,
        "attention_bias": False, "use_sliding_window": False, "sliding_window": None,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16",
    }


def random_state_dict(cfg, gen, store_dtype):
    h, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    d = head_dim_of(cfg)
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]

    def w(out, inp):  # 1/sqrt(fan_in) keeps activations O(1), so attention and logits are not flat
        return torch.randn(out, inp, generator=gen) / math.sqrt(inp)

    def norm(n):  # not all ones, so a norm applied with the wrong weight shows
        return 1.0 + 0.2 * torch.randn(n, generator=gen)

    sd = {"model.embed_tokens.weight": 0.25 * torch.randn(v, h, generator=gen)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = norm(h)
        sd[p + "self_attn.q_proj.weight"] = w(nh * d, h)
        sd[p + "self_attn.k_proj.weight"] = w(nkv * d, h)
        sd[p + "self_attn.v_proj.weight"] = w(nkv * d, h)
        sd[p + "self_attn.o_proj.weight"] = w(h, nh * d)
        if cfg.get("attention_bias"):
            sd[p + "self_attn.q_proj.bias"] = 0.1 * torch.randn(nh * d, generator=gen)
            sd[p + "self_attn.k_proj.bias"] = 0.1 * torch.randn(nkv * d, generator=gen)
            sd[p + "self_attn.v_proj.bias"] = 0.1 * torch.randn(nkv * d, generator=gen)
        if cfg["model_type"] == "qwen3":
            sd[p + "self_attn.q_norm.weight"] = norm(d)
            sd[p + "self_attn.k_norm.weight"] = norm(d)
        sd[p + "post_attention_layernorm.weight"] = norm(h)
        sd[p + "mlp.gate_proj.weight"] = w(inter, h)
        sd[p + "mlp.up_proj.weight"] = w(inter, h)
        sd[p + "mlp.down_proj.weight"] = w(h, inter)
    sd["model.norm.weight"] = norm(h)
    if not cfg["tie_word_embeddings"]:
        sd["lm_head.weight"] = w(v, h) * 2.0
    # What the file holds is the truth: round to the storage dtype before computing anything.
    return {k: t.to(store_dtype) for k, t in sd.items()}


# ---------------------------------------------------------------- HF reference math

def head_dim_of(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def rms_norm(x, weight, eps):
    # LlamaRMSNorm / Qwen3RMSNorm
    input_dtype = x.dtype
    h = x if x.dtype == torch.float64 else x.to(torch.float32)   # float64 only in the gradient references
    variance = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(variance + eps)
    return weight * h.to(input_dtype)


def inv_freq_default(base, dim):
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=torch.float) / dim))


def rope_inv_freq(cfg, seq_len):
    """modeling_rope_utils: default / linear / dynamic / llama3; seq_len = max(position_ids) + 1."""
    dim = head_dim_of(cfg)
    base = cfg["rope_theta"]
    rs = cfg.get("rope_scaling")
    kind = None if rs is None else rs.get("rope_type", rs.get("type"))
    if kind is None or kind == "default":
        return inv_freq_default(base, dim)
    if kind == "linear":
        inv = inv_freq_default(base, dim)
        inv /= rs["factor"]
        return inv
    if kind == "dynamic":
        # _compute_dynamic_ntk_parameters with seq_len a tensor, as dynamic_rope_update passes it
        max_pos = cfg["max_position_embeddings"]
        factor = rs["factor"]
        s = torch.tensor(seq_len, dtype=torch.int64)
        s = torch.maximum(s, torch.tensor(max_pos, dtype=s.dtype))
        base = base * ((factor * s / max_pos) - (factor - 1)) ** (dim / (dim - 2))
        return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=torch.float) / dim))
    if kind == "llama3":
        inv_freq = inv_freq_default(base, dim)
        factor = rs["factor"]
        low_freq_factor = rs["low_freq_factor"]
        high_freq_factor = rs["high_freq_factor"]
        old_context_len = rs["original_max_position_embeddings"]
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
        is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)
    raise ValueError(kind)


def rotary_cos_sin(cfg, position_ids, dtype):
    # LlamaRotaryEmbedding.forward: float32 matmul of inv_freq and positions, cast at the end
    inv_freq = rope_inv_freq(cfg, int(position_ids.max()) + 1)
    inv_freq_expanded = inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
    position_ids_expanded = position_ids[:, None, :].float()
    freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = emb.cos() * 1.0  # attention_scaling is 1 for these rope types
    sin = emb.sin() * 1.0
    return cos.to(dtype), sin.to(dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    cos = cos.unsqueeze(1)
    sin = sin.unsqueeze(1)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


def repeat_kv(x, n_rep):
    b, kv, s, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, kv, n_rep, s, d).reshape(b, kv * n_rep, s, d)


def linear(x, sd, name):
    """F.linear with the weights of sd; a LoRA pair in sd (name.lora_A.weight [r, in], name.lora_B.weight
    [out, r], name.lora_scale = alpha / r) adds PEFT 0.5's scale * B(A x) (dropout 0)."""
    y = F.linear(x, sd[name + ".weight"], sd.get(name + ".bias"))
    if name + ".lora_A.weight" in sd:
        y = y + sd[name + ".lora_scale"] * F.linear(F.linear(x, sd[name + ".lora_A.weight"]), sd[name + ".lora_B.weight"])
    return y


def project_qkv(cfg, sd, p, x, cos, sin):
    """x [B, T, H] -> q [B, nq, T, d], k/v [B, nkv, T, d]: projections, Qwen3 q_norm/k_norm, RoPE on q and k."""
    b, t, _ = x.shape
    d = head_dim_of(cfg)
    q = linear(x, sd, p + "q_proj").view(b, t, -1, d)
    k = linear(x, sd, p + "k_proj").view(b, t, -1, d)
    v = linear(x, sd, p + "v_proj").view(b, t, -1, d).transpose(1, 2)
    if cfg["model_type"] == "qwen3":
        q = rms_norm(q, sd[p + "q_norm.weight"], cfg["rms_norm_eps"])
        k = rms_norm(k, sd[p + "k_norm.weight"], cfg["rms_norm_eps"])
    q, k = q.transpose(1, 2), k.transpose(1, 2)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    return q, k, v


def eager_attention(q, k, v, mask):
    """eager_attention_forward: additive mask [1, 1, T, T]; returns [B, T, nq*d] (before o_proj)."""
    b, nh, t, d = q.shape
    k = repeat_kv(k, nh // k.shape[1])
    v = repeat_kv(v, nh // v.shape[1])
    w = torch.matmul(q, k.transpose(2, 3)) * d ** -0.5
    w = w + mask
    w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
    return torch.matmul(w, v).transpose(1, 2).contiguous().reshape(b, t, -1).contiguous()


def mlp(sd, p, x):
    return linear(F.silu(linear(x, sd, p + "gate_proj")) * linear(x, sd, p + "up_proj"), sd, p + "down_proj")


def decoder_logits(cfg, sd, ids, attend, start=0):
    """Logits [B, T, V] of the HF decoder for ids [B, T] at positions start.. ; attend(i, prefix, hn, q, k, v)
    gives layer i's attention output [B, T, nq*d] before o_proj (prefix 'model.layers.i.self_attn.', hn the
    normed hidden state, q/k/v from project_qkv)."""
    eps = cfg["rms_norm_eps"]
    x = sd["model.embed_tokens.weight"][ids]  # [B, T, H]
    pos = torch.arange(start, start + ids.shape[1])[None]
    cos, sin = rotary_cos_sin(cfg, pos, x.dtype)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = p + "self_attn."
        hn = rms_norm(x, sd[p + "input_layernorm.weight"], eps)
        q, k, v = project_qkv(cfg, sd, a, hn, cos, sin)
        x = x + linear(attend(i, a, hn, q, k, v), sd, a + "o_proj")
        x = x + mlp(sd, p + "mlp.", rms_norm(x, sd[p + "post_attention_layernorm.weight"], eps))
    x = rms_norm(x, sd["model.norm.weight"], eps)
    head = sd["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else sd["lm_head.weight"]
    return F.linear(x, head)


def forward(cfg, sd, ids, dtype):
    """HF LlamaForCausalLM / Qwen3ForCausalLM: logits [T, V] for one sequence ids [T], every weight cast to
    dtype (as model.to(dtype)), causal eager attention."""
    sd = {k: v.to(dtype) for k, v in sd.items()}
    t = ids.shape[0]
    mask = torch.full((t, t), torch.finfo(dtype).min, dtype=dtype).triu(1)[None, None]
    return decoder_logits(cfg, sd, ids[None], lambda i, a, hn, q, k, v: eager_attention(q, k, v, mask))[0]


def peft_config(r, alpha, targets, dropout=0.0, base="tiny"):
    """The adapter_config.json fields PEFT 0.5 writes for LoraConfig(task_type="CAUSAL_LM")."""
    return {
        "auto_mapping": None, "base_model_name_or_path": base, "bias": "none", "fan_in_fan_out": False,
        "inference_mode": True, "init_lora_weights": True, "layers_pattern": None, "layers_to_transform": None,
        "lora_alpha": alpha, "lora_dropout": dropout, "modules_to_save": None, "peft_type": "LORA", "r": r,
        "revision": None, "target_modules": targets, "task_type": "CAUSAL_LM",
    }


# ---------------------------------------------------------------- HiCI modules (tools/hici_reference.py)

def randomise(module, gen):
    """Random weights at a scale where every part of the module changes the output."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() == 0:
                p.copy_(torch.tensor(0.4))                          # softplus(0.4) ~ 0.91
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:                                      # LayerNorm weight
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name in ("memory_slots", "global_queries"):
                p.copy_(torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))


def new_hici_modules(cfg, hc):
    """(LocalConstructorMulti, GlobalIntegratorShared) for one layer; hc as in hici_config.json."""
    H = cfg["hidden_size"]
    lc = ref.LocalConstructorMulti(H, hc["num_local_slots"], hc["num_heads"], True, hc["bottleneck_dim"])
    gi = ref.GlobalIntegratorShared(H, hc["global_slots"], hc["bottleneck_dim"], hc["shared_compress_dim"], hc["num_heads"])
    return lc, gi


def random_hici_modules(cfg, hc, gen):
    lc, gi = new_hici_modules(cfg, hc)
    randomise(lc, gen)
    randomise(gi, gen)
    return lc, gi


def hici_modules_from(sd, cfg, hc, layers=None):
    """[(lc, gi)] per layer, fp32, weights from sd (keys model.layers.i.self_attn.{local_constructor,global_integrator}.*)."""
    mods = []
    for i in range(layers if layers is not None else cfg["num_hidden_layers"]):
        lc, gi = new_hici_modules(cfg, hc)
        for m, pre in ((lc, "local_constructor."), (gi, "global_integrator.")):
            p = f"model.layers.{i}.self_attn.{pre}"
            m.load_state_dict({k: sd[p + k].float() for k in m.state_dict().keys()})
        mods.append((lc, gi))
    return mods


def hici_attention(sd, a, hn, mask, q, k, v, lc, gi, mode, kind, ratio=0.25, segment_size=None):
    """One layer's HiCI attention (before o_proj): the training ("train") or inference forward of
    tools/hici_reference.py, memory K/V through the host k_proj/v_proj (prefix a), no RoPE, no k_norm."""
    kfn = lambda m: linear(m, sd, a + "k_proj")  # noqa: E731
    vfn = lambda m: linear(m, sd, a + "v_proj")  # noqa: E731
    f = ref.hici_training_forward if kind == "train" else ref.hici_inference_forward
    return f(hn, mask, q, k, v, kfn, vfn, lc, gi, mode, ratio=ratio, segment_size=segment_size)
