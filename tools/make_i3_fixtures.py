#!/usr/bin/python3
"""Writes tests/fixtures/i3/: tiny random i3 models with the logits of a multi-chunk stream, and WKV cases, all from
tools/i3_reference.py (float64, the model's definition evaluated directly). Run: python3 tools/make_i3_fixtures.py"""
import os

import torch

import fixturelib as fl
import i3_reference as ref

OUT = os.path.join(fl.REPO, "tests", "fixtures", "i3")


def config(**kw):
    cfg = {"model_type": "i3", "vocab_size": 300, "d_model": 20, "n_rwkv_layers": 2, "n_attn_layers": 2,
           "n_heads_requested": 8, "ffn_mult": 4, "kernel_window": 16, "latents_per_chunk": 4,
           "max_compressed_chunks": 2, "compressor_heads_requested": 8, "compressor_ffn_mult": 4, "wkv_block": 5,
           "carry_rwkv_state": False, "compress_from": "post_rwkv", "use_age_embedding": True,
           "layer_norm_eps": 1e-5, "compression_start": 100, "compression_ramp": 50}
    cfg.update(kw)
    return cfg


def model_fixture(name, cfg, seed, n_tokens):
    gen = torch.Generator().manual_seed(seed)
    sd = ref.random_weights(cfg, gen)
    sd = {k: v.to(torch.float32).to(torch.float64) for k, v in sd.items()}   # the stored (fp32) weights are the truth
    ids = torch.randint(0, cfg["vocab_size"], (n_tokens,), generator=gen).tolist()
    logits = ref.stream_logits(cfg, sd, ids)
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    fl.write_json(os.path.join(d, "config.json"), cfg, indent=2)
    fl.write_safetensors(os.path.join(d, "model.safetensors"), {k: v.to(torch.float32) for k, v in sd.items()}, sort=True, log=True)
    fl.write_safetensors(os.path.join(d, "expected.safetensors"),
                         {"ids": torch.tensor(ids, dtype=torch.int64), "logprobs": torch.log_softmax(logits, -1).to(torch.float32)}, log=True)


def wkv_fixture(seed):
    gen = torch.Generator().manual_seed(seed)
    B, T, d = 2, 37, 5
    k = torch.randn(B, T, d, generator=gen, dtype=torch.float64) * 2
    v = torch.randn(B, T, d, generator=gen, dtype=torch.float64)
    w = -torch.exp(-3 + 4 * torch.rand(d, generator=gen, dtype=torch.float64))
    u = torch.randn(d, generator=gen, dtype=torch.float64)
    # a carried state of some earlier tokens: canonical (a, b, p) of random un-normalised sums
    p_in = torch.randn(B, d, generator=gen, dtype=torch.float64)
    b_in = 1 + torch.rand(B, d, generator=gen, dtype=torch.float64)
    a_in = b_in * torch.randn(B, d, generator=gen, dtype=torch.float64)
    outs, a_out, b_out, p_out = [], [], [], []
    for r in range(B):
        A, Bs = a_in[r] * torch.exp(p_in[r]), b_in[r] * torch.exp(p_in[r])
        y, A2, B2 = ref.wkv_definition(k[r], v[r], w, u, A, Bs)
        # the exit p is the largest log-weight of the represented sums
        logw = torch.stack([p_in[r] + T * w] + [(T - 1 - i) * w + k[r, i] for i in range(T)])
        pm = logw.max(0).values
        a2, b2, _ = ref.canonical(A2, B2, pm)
        outs.append(y); a_out.append(a2); b_out.append(b2); p_out.append(pm)
    fl.write_safetensors(os.path.join(OUT, "wkv.safetensors"), {
        "k": k, "v": v, "w": w, "u": u, "a_in": a_in, "b_in": b_in, "p_in": p_in,
        "out": torch.stack(outs), "a_out": torch.stack(a_out), "b_out": torch.stack(b_out), "p_out": torch.stack(p_out)}, log=True)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    wkv_fixture(11)
    # 4 full chunks + 6 tokens: the history fills (M = 2), then drops its oldest entry twice.
    model_fixture("reset-postrwkv", config(), 21, 70)
    model_fixture("carry-final", config(carry_rwkv_state=True, compress_from="final", d_model=24, n_heads_requested=5,
                                        compressor_heads_requested=3, wkv_block=4), 22, 53)
