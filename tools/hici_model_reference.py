"""Batched tiny-decoder reference with HiCI and a padding mask, for the hici2 fixtures (padding, reference
folder, trainable_params overlay). Independent of the C# code: the decoder math is tools/make_model_fixtures.py
(the models branch's HF reference), the attention tools/hici_reference.py, and this file adds

  * a [B, T] padding mask (1 = real token) for full attention (padded keys masked, HF eager semantics)
    and for HiCI (passed to the reference forwards, spec 4.7-4.8);
  * reading a safetensors file without the safetensors package;
  * building the reference HiCI modules from a state dict.

Used by tools/make_hici_padding_fixtures.py and tools/make_hici_reference_folder.py. Needs only torch.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hici_reference as ref  # noqa: E402
import make_model_fixtures as mm  # noqa: E402

_ST = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "I64": torch.int64}


def read_safetensors(path):
    """name -> tensor (a copy), any of F32/BF16/F16/I64."""
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
        dt = _ST[e["dtype"]]
        raw = bytearray(data[base + b:base + end])
        if dt in (torch.bfloat16, torch.float16):
            t = torch.frombuffer(raw, dtype=torch.int16).view(dt)
        else:
            t = torch.frombuffer(raw, dtype=dt)
        out[name] = t.reshape(e["shape"]).clone()
    return out


def hici_modules_from(sd, cfg, hc, layers=None):
    """[(lc, gi)] per layer, fp32, weights from sd (keys model.layers.i.self_attn.{local_constructor,global_integrator}.*)."""
    H = cfg["hidden_size"]
    mods = []
    for i in range(layers if layers is not None else cfg["num_hidden_layers"]):
        lc = ref.LocalConstructorMulti(H, hc["num_local_slots"], hc["num_heads"], True, hc["bottleneck_dim"])
        gi = ref.GlobalIntegratorShared(H, hc["global_slots"], hc["bottleneck_dim"], hc["shared_compress_dim"], hc["num_heads"])
        for m, pre in ((lc, "local_constructor."), (gi, "global_integrator.")):
            p = f"model.layers.{i}.self_attn.{pre}"
            m.load_state_dict({k: sd[p + k].float() for k in m.state_dict().keys()})
        mods.append((lc, gi))
    return mods


def project(cfg, sd, p, x, cos, sin):
    b, t, _ = x.shape
    d = mm.head_dim_of(cfg)
    q = mm.linear(x, sd, p + "q_proj").view(b, t, -1, d)
    k = mm.linear(x, sd, p + "k_proj").view(b, t, -1, d)
    v = mm.linear(x, sd, p + "v_proj").view(b, t, -1, d).transpose(1, 2)
    if cfg["model_type"] == "qwen3":
        q = mm.rms_norm(q, sd[p + "q_norm.weight"], cfg["rms_norm_eps"])
        k = mm.rms_norm(k, sd[p + "k_norm.weight"], cfg["rms_norm_eps"])
    q, k = q.transpose(1, 2), k.transpose(1, 2)
    q, k = mm.apply_rotary_pos_emb(q, k, cos, sin)
    return q, k, v


def masked_full_attention(q, k, v, mask):
    """q [B,nq,T,d], k,v [B,nkv,T,d], mask [B,T] bool: causal, padded keys never attended. [B,T,nq*d]."""
    B, nq, T, d = q.shape
    rep = nq // k.shape[1]
    k = mm.repeat_kv(k, rep)
    v = mm.repeat_kv(v, rep)
    logits = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(d)
    allowed = torch.ones(T, T, dtype=torch.bool).tril()[None, None] & mask[:, None, None, :]
    logits = logits.masked_fill(~allowed, float("-inf"))
    o = torch.matmul(torch.softmax(logits, dim=-1), v)
    return o.transpose(1, 2).reshape(B, T, nq * d)


def forward(cfg, sd, mods, ids, mask=None, mode=None, kind="train", ratio=0.25, segment_size=None):
    """Log-probs [B, T, V] (fp32). ids [B, T]; mask [B, T] (1 = real token) or None; mode None = full
    attention, else a HiCI causal mode with the training ("train") or inference forward. sd: fp32 weights."""
    eps = cfg["rms_norm_eps"]
    B, T = ids.shape
    mask = torch.ones(B, T, dtype=torch.bool) if mask is None else mask.bool()
    x = sd["model.embed_tokens.weight"][ids]
    pos = torch.arange(T)[None]
    cos, sin = mm.rotary_cos_sin(cfg, pos, x.dtype)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = p + "self_attn."
        hn = mm.rms_norm(x, sd[p + "input_layernorm.weight"], eps)
        q, k, v = project(cfg, sd, a, hn, cos, sin)
        if mode is None:
            o = masked_full_attention(q, k, v, mask)
        else:
            lc, gi = mods[i]
            kfn = lambda m, a=a: mm.linear(m, sd, a + "k_proj")   # host k_proj: no RoPE, no k_norm
            vfn = lambda m, a=a: mm.linear(m, sd, a + "v_proj")
            f = ref.hici_training_forward if kind == "train" else ref.hici_inference_forward
            o = f(hn, mask, q, k, v, kfn, vfn, lc, gi, mode, ratio=ratio, segment_size=segment_size)
        x = x + mm.linear(o, sd, a + "o_proj")
        x = x + mm.mlp(sd, p + "mlp.", mm.rms_norm(x, sd[p + "post_attention_layernorm.weight"], eps))
    x = mm.rms_norm(x, sd["model.norm.weight"], eps)
    head = sd["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else sd["lm_head.weight"]
    return torch.log_softmax(F.linear(x, head).float(), dim=-1)
