#!/usr/bin/python3
"""Golden fixtures for the model tests: tiny random Llama / Llama-3 / Qwen3 checkpoints in HF layout and
the log-probabilities HF transformers would compute for them.

Run with Debian's torch (transformers is not needed and not used):
    /usr/bin/python3 tools/make_model_fixtures.py

The forward pass below is written from HF transformers' LlamaForCausalLM / Qwen3ForCausalLM (eager
attention, modeling_rope_utils for the RoPE variants) in plain torch. It is the independent reference the
C# model is tested against, so it must never be derived from the C# code.

Per fixture folder (tests/fixtures/models/<name>/):
    config.json                    HF config
    model.safetensors              weights (or model-0000k-of-0000n.safetensors + model.safetensors.index.json)
    expected.safetensors           input_ids  I64 [T]
                                   logprobs_fp32  F32 [T, V]  log_softmax of the float32 forward
                                   logits_bf16    BF16 [T, V] logits of the bfloat16 forward (torch CPU),
                                                  as HF returns them (lm_head output in bf16)
"""
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "models")
SEQ_LEN = 40

# ---------------------------------------------------------------- safetensors (no pip package here)

_DT = {torch.float32: "F32", torch.bfloat16: "BF16", torch.int64: "I64", torch.float16: "F16"}


def _raw(t):
    t = t.contiguous()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = _raw(t)
        header[name] = {"dtype": _DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # the format recommends 8-byte alignment of the data
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------- HF reference math

def head_dim_of(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def rms_norm(x, weight, eps):
    # LlamaRMSNorm / Qwen3RMSNorm
    input_dtype = x.dtype
    h = x.to(torch.float32)
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
    return F.linear(x, sd[name + ".weight"], sd.get(name + ".bias"))


def attention(cfg, sd, p, x, cos, sin, mask):
    b, t, _ = x.shape
    d = head_dim_of(cfg)
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    q = linear(x, sd, p + "q_proj").view(b, t, -1, d)
    k = linear(x, sd, p + "k_proj").view(b, t, -1, d)
    v = linear(x, sd, p + "v_proj").view(b, t, -1, d).transpose(1, 2)
    if cfg["model_type"] == "qwen3":
        q = rms_norm(q, sd[p + "q_norm.weight"], cfg["rms_norm_eps"])
        k = rms_norm(k, sd[p + "k_norm.weight"], cfg["rms_norm_eps"])
    q, k = q.transpose(1, 2), k.transpose(1, 2)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    # eager_attention_forward
    k = repeat_kv(k, nh // nkv)
    v = repeat_kv(v, nh // nkv)
    w = torch.matmul(q, k.transpose(2, 3)) * d ** -0.5
    w = w + mask
    w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
    o = torch.matmul(w, v).transpose(1, 2).contiguous().reshape(b, t, -1).contiguous()
    return linear(o, sd, p + "o_proj")


def mlp(sd, p, x):
    return linear(F.silu(linear(x, sd, p + "gate_proj")) * linear(x, sd, p + "up_proj"), sd, p + "down_proj")


def forward(cfg, sd, ids, dtype):
    """Logits [T, V] for one sequence, every weight cast to dtype (as model.to(dtype))."""
    sd = {k: v.to(dtype) for k, v in sd.items()}
    eps = cfg["rms_norm_eps"]
    x = sd["model.embed_tokens.weight"][ids][None]  # [1, T, H]
    t = ids.shape[0]
    pos = torch.arange(t)[None]
    cos, sin = rotary_cos_sin(cfg, pos, x.dtype)
    min_val = torch.finfo(dtype).min
    mask = torch.full((t, t), min_val, dtype=dtype).triu(1)[None, None]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        r = x
        x = rms_norm(x, sd[p + "input_layernorm.weight"], eps)
        x = r + attention(cfg, sd, p + "self_attn.", x, cos, sin, mask)
        r = x
        x = r + mlp(sd, p + "mlp.", rms_norm(x, sd[p + "post_attention_layernorm.weight"], eps))
    x = rms_norm(x, sd["model.norm.weight"], eps)
    head = sd["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else sd["lm_head.weight"]
    return F.linear(x, head)[0]


# ---------------------------------------------------------------- random checkpoints

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


FIXTURES = {
    # Llama-2 style: MHA, untied lm_head, linear RoPE scaling, q/k/v biases.
    "llama-mha-linear": (llama_config(
        rope_scaling={"type": "linear", "factor": 2.0}, attention_bias=True), torch.bfloat16, 1),
    # Llama-3 style: GQA 4/2, tied embeddings, llama3 RoPE (high, medium and low frequency bands all
    # occur for head_dim 16 with these numbers), explicit head_dim, sharded checkpoint.
    "llama3-gqa-tied": (llama_config(
        num_key_value_heads=2, tie_word_embeddings=True, rope_theta=500000.0, head_dim=16,
        max_position_embeddings=256, eos_token_id=[2, 3],
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 64}), torch.bfloat16, 2),
    # Qwen3: head_dim 32 with hidden 64 (heads × head_dim ≠ hidden), q_norm/k_norm, GQA 4/2, tied.
    "qwen3-gqa": ({
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_act": "silu",
        "vocab_size": 256, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "max_position_embeddings": 128,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "rope_scaling": None, "tie_word_embeddings": True,
        "attention_bias": False, "use_sliding_window": False, "sliding_window": None,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16",
    }, torch.bfloat16, 1),
    # Dynamic NTK: the 40-token input is longer than max_position_embeddings (32), so the RoPE base is
    # recomputed for seq_len 40. Stored in float32 to exercise that path of the reader too.
    "llama-dynamic": (llama_config(
        hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=32, rope_scaling={"type": "dynamic", "factor": 2.0}, torch_dtype="float32"),
        torch.float32, 1),
}


def save_checkpoint(folder, sd, shards):
    keys = list(sd.keys())
    if shards == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), sd, {"format": "pt"})
        return
    per = math.ceil(len(keys) / shards)
    weight_map, total = {}, 0
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: sd[k] for k in keys[s * per:(s + 1) * per]}
        write_safetensors(os.path.join(folder, name), part, {"format": "pt"})
        for k, t in part.items():
            weight_map[k] = name
            total += t.numel() * t.element_size()
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def main():
    torch.set_num_threads(1)  # deterministic reductions
    for i, (name, (cfg, store_dtype, shards)) in enumerate(FIXTURES.items()):
        gen = torch.Generator().manual_seed(1234 + i)
        sd = random_state_dict(cfg, gen, store_dtype)
        ids = torch.randint(0, cfg["vocab_size"], (SEQ_LEN,), generator=gen)
        folder = os.path.join(ROOT, name)
        os.makedirs(folder, exist_ok=True)
        for f in os.listdir(folder):
            os.remove(os.path.join(folder, f))
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        save_checkpoint(folder, sd, shards)
        with torch.no_grad():
            lp32 = torch.log_softmax(forward(cfg, sd, ids, torch.float32).float(), dim=-1)
            logits16 = forward(cfg, sd, ids, torch.bfloat16)
        lp16 = torch.log_softmax(logits16.float(), dim=-1)
        write_safetensors(os.path.join(folder, "expected.safetensors"),
                          {"input_ids": ids, "logprobs_fp32": lp32, "logits_bf16": logits16},
                          {"source": "tools/make_model_fixtures.py", "torch": torch.__version__})
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        print(f"{name:18s} {size / 1024:6.1f} KB  logprob range [{lp32.min():.2f}, {lp32.max():.2f}]  "
              f"max|fp32-bf16| logprob {(lp32 - lp16).abs().max():.4f}  max|logit| {logits16.float().abs().max():.2f}")


if __name__ == "__main__":
    main()
