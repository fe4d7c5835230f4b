#!/usr/bin/python3
"""Writes the HiCI golden fixtures (tiny random weights + inputs + expected outputs) under
tests/fixtures/hici/ as safetensors, written by hand (8-byte LE header length + JSON header + raw bytes;
the writer is tools/fixturelib.py's).

Run with a Python that has torch (Debian's python3-torch 1.13 at /usr/bin/python3 is enough):
    /usr/bin/python3 tools/make_hici_fixtures.py
The expected outputs come from tools/hici_reference.py (an independent implementation of the reference math, see docs/hici.md).
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixturelib as fl  # noqa: E402
import hici_reference as ref  # noqa: E402
from fixturelib import randomise  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "hici")
MAX_BYTES = 400 * 1000


def write_safetensors(path, tensors, metadata=None):
    """Names sorted, metadata values as strings; each file must stay under MAX_BYTES."""
    fl.write_safetensors(path, tensors, metadata, sort=True, max_bytes=MAX_BYTES, log=True)


def prefixed(prefix, module):
    return {prefix + k: v for k, v in module.state_dict().items()}


def rope(x, base=10000.0):
    """x [B, n, T, d]: standard rotate-half RoPE at positions 0..T-1 (only to make realistic inputs)."""
    d = x.shape[-1]
    T = x.shape[2]
    inv = 1.0 / (base ** (torch.arange(0, d, 2).float() / d))
    ang = torch.outer(torch.arange(T).float(), inv)
    emb = torch.cat([ang, ang], dim=-1)
    cos, sin = emb.cos(), emb.sin()
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def modules_fixture():
    gen = torch.Generator().manual_seed(1234)
    torch.manual_seed(1234)
    H, M, h, beta = 64, 8, 8, 32
    t = {}
    lc = ref.LocalConstructorMulti(H, M, h, True, beta)
    randomise(lc, gen)
    x = torch.randn(6, 8, H, generator=gen)
    mask = torch.ones(6, 8, dtype=torch.bool)
    mask[1, 5:] = False
    mask[2, 0] = False
    mask[2, 3] = False
    mask[4, :] = False                        # fully padded row: uniform average over all S positions
    t.update(prefixed("lc.", lc))
    t["lc.x"] = x
    t["lc.mask"] = mask
    t["lc.out_masked"] = lc(x, mask)
    t["lc.out_nomask"] = lc(x, None)

    lcnb = ref.LocalConstructorMulti(H, 4, 4, False, 0)
    randomise(lcnb, gen)
    t.update(prefixed("lcnb.", lcnb))
    t["lcnb.out"] = lcnb(x, mask)

    write_safetensors(os.path.join(OUT, "local_constructor.safetensors"),
                      t, {"H": H, "M": M, "h": h, "beta": beta})

    t = {}
    L = torch.randn(2, 4, M, H, generator=gen) * 0.7 + 0.1
    L[1, 2] *= 3.0
    t["gi.L"] = L
    for name, gi in (("gis", ref.GlobalIntegratorShared(H, 4, beta, 16, h)),            # C < D: stat_expand
                     ("gisid", ref.GlobalIntegratorShared(H, 4, 32, 48, h)),            # C >= D: identity, D = C
                     ("gii", ref.GlobalIntegrator(H, 4, beta, h))):
        randomise(gi, gen)
        t.update(prefixed(name + ".", gi))
        t[name + ".out"] = gi(L)
        t[name + ".out_causal"] = gi.forward_causal(L)
    # causal prefix 0..N-1 over all chunks is close to, but not the same op sequence as, forward()
    write_safetensors(os.path.join(OUT, "global_integrator.safetensors"),
                      t, {"H": H, "M": M, "K": 4, "h": h, "beta": beta})


SHAPES = {
    # name: (H, n_q, n_kv, d)
    "qwen": (64, 4, 2, 16),     # GQA
    "llama": (48, 4, 4, 12),    # MHA (n_q·d = H)
}
HC = dict(M=4, K=2, h=4, beta=32, C=16)


def attention_fixture(shape, forward):
    H, nq, nkv, d = SHAPES[shape]
    seed = {"qwen": 11, "llama": 22}[shape] + (0 if forward == "train" else 100)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    B = 2
    T = 32 if forward == "train" else 30
    lc = ref.LocalConstructorMulti(H, HC["M"], HC["h"], True, HC["beta"])
    gi = ref.GlobalIntegratorShared(H, HC["K"], HC["beta"], HC["C"], HC["h"])
    randomise(lc, gen)
    randomise(gi, gen)
    wk = torch.randn(nkv * d, H, generator=gen) / math.sqrt(H)
    wv = torch.randn(nkv * d, H, generator=gen) / math.sqrt(H)
    x = torch.randn(B, T, H, generator=gen)
    q = rope(torch.randn(B, nq, T, d, generator=gen))
    k = rope((x @ wk.t()).view(B, T, nkv, d).transpose(1, 2)).contiguous()
    v = (x @ wv.t()).view(B, T, nkv, d).transpose(1, 2).contiguous()
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, T - 3:] = False
    mask[1, 9] = False
    t = {}
    t.update(prefixed("local_constructor.", lc))
    t.update(prefixed("global_integrator.", gi))
    t["k_proj.weight"] = wk
    t["v_proj.weight"] = wv
    t["hidden"] = x
    t["q"] = q
    t["k"] = k
    t["v"] = v
    t["mask"] = mask
    outs = {}
    if forward == "train":
        for mode in ref.CAUSAL_MODES:
            outs["out." + mode] = ref.hici_training_forward(x, mask, q, k, v, wk, wv, lc, gi, mode, ratio=0.25)
        # no padding mask at all (the pre-training case; HiciAttentionCore's mask-free causal path)
        outs["out.causal_gi.nomask"] = ref.hici_training_forward(x, None, q, k, v, wk, wv, lc, gi, "causal_gi", 0.25)
        for mode in ref.CAUSAL_MODES:
            if mode != "causal_gi":
                outs["nomask." + mode] = ref.hici_training_forward(x, None, q, k, v, wk, wv, lc, gi, mode, 0.25)
        # one segment still runs HiCI in the training forward
        outs["out.causal_gi.one_segment"] = ref.hici_training_forward(x, mask, q, k, v, wk, wv, lc, gi, "causal_gi", 1.0)
        # fixed segment size
        outs["out.none.segment16"] = ref.hici_training_forward(x, mask, q, k, v, wk, wv, lc, gi, "none", segment_size=16)
        # decode: the last 2 positions as new queries over all 32 cached keys
        t["decode.q"] = q[:, :, T - 2:].contiguous()
        outs["decode.out"] = ref.decode_attention(q[:, :, T - 2:], k, v)
    else:
        for mode in ref.CAUSAL_MODES:   # ratio 1/4 at T = 30: S = 7, padded to 35 (5 segments)
            outs["out." + mode] = ref.hici_inference_forward(x, mask, q, k, v, wk, wv, lc, gi, mode, ratio=0.25)
        outs["out.none.segment8"] = ref.hici_inference_forward(x, mask, q, k, v, wk, wv, lc, gi, "none", segment_size=8)
        # no padding mask and no padding (S = 6 divides 30): the mask-free causal path
        for mode in ref.CAUSAL_MODES:
            outs["nomask." + mode] = ref.hici_inference_forward(x, None, q, k, v, wk, wv, lc, gi, mode, segment_size=6)
        # one segment: HiCI off, plain causal attention
        outs["out.none.one_segment"] = ref.hici_inference_forward(x, mask, q, k, v, wk, wv, lc, gi, "none", segment_size=64)
    modes = ["out." + m for m in ref.CAUSAL_MODES]
    for i in range(len(modes)):
        for j in range(i + 1, len(modes)):
            diff = (outs[modes[i]] - outs[modes[j]]).abs().max().item()
            assert diff > 1e-3, "%s %s: %s and %s agree (%g): fixture would not tell modes apart" % (
                shape, forward, modes[i], modes[j], diff)
    t.update(outs)
    meta = dict(H=H, n_q=nq, n_kv=nkv, d=d, B=B, T=T, **HC)
    write_safetensors(os.path.join(OUT, "attn_%s_%s.safetensors" % (shape, forward)), t, meta)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    modules_fixture()
    for shape in SHAPES:
        for forward in ("train", "inference"):
            attention_fixture(shape, forward)


if __name__ == "__main__":
    main()
