#!/usr/bin/python3
"""Writes tests/fixtures/eval/attention_stats.json: where HiCI attention puts its softmax mass (global memory
G, local slots L, segment tokens) per layer and segment, for the tiny HiCI fixture model
tests/fixtures/hici/model-qwen3 — an independent computation for `hici eval attention-stats`.

The model math is tools/hici_model_reference.py (fixturelib's HF decoder + tools/hici_reference.py's HiCI
attention). The per-segment dense attention of hici_reference (_dense_segment_attention) is wrapped: for
every segment it recomputes the masked softmax rows and sums them over the key ranges [0, K) (G, first in the
memory as the reference concatenates it), [K, P) (L) and [P, P+S) (tokens), averaged over heads and valid
queries. Run with Debian's torch:  /usr/bin/python3 tools/make_attention_stats_fixtures.py
"""
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixturelib as fl  # noqa: E402
import hici_model_reference as hm  # noqa: E402
import hici_reference as ref  # noqa: E402

MODEL = os.path.join(fl.REPO, "tests", "fixtures", "hici", "model-qwen3")
OUT = os.path.join(fl.REPO, "tests", "fixtures", "eval", "attention_stats.json")

calls = []
_dense = ref._dense_segment_attention


def recording(q, k, v, P, mask_q, mask_kv):
    nq, S, d = q.shape
    rep = nq // k.shape[0]
    sums = torch.zeros(3, dtype=torch.float64)
    rows = 0
    for i in range(nq):
        logits = torch.matmul(q[i], k[i // rep].t()) / math.sqrt(d)
        for a in range(S):
            if not mask_q[a]:
                continue
            allowed = torch.tensor([bool(mask_kv[j]) and (j < P or (j - P) <= a) for j in range(P + S)])
            p = torch.softmax(logits[a].masked_fill(~allowed, float("-inf")), dim=-1).double()
            sums += torch.stack([p[:K].sum(), p[K:P].sum(), p[P:].sum()]) if P > 0 else torch.stack([p[:0].sum(), p[:0].sum(), p.sum()])
            rows += 1
    calls.append((sums / rows).tolist())
    return _dense(q, k, v, P, mask_q, mask_kv)


ref._dense_segment_attention = recording


def main():
    global K
    torch.set_num_threads(1)
    cfg = fl.read_json(os.path.join(MODEL, "config.json"))
    hc = fl.read_json(os.path.join(MODEL, "hici_config.json"))
    K = hc["global_slots"]
    sd = {k: v.float() for k, v in fl.read_safetensors(os.path.join(MODEL, "model.safetensors")).items()}
    mods = fl.hici_modules_from(sd, cfg, hc)
    out = {"generator": "tools/make_attention_stats_fixtures.py", "segment_size": 16, "cases": []}
    for mode, n in (("causal_shift", 64), ("causal_shift_g", 48), ("causal_gi", 64), ("none", 48)):
        ids = torch.tensor([(i * 37 + 11) % 200 for i in range(n)])
        calls.clear()
        with torch.no_grad():
            hm.forward(cfg, sd, mods, ids[None], mode=mode, kind="train", segment_size=16)
        segs = n // 16
        layers = [calls[l * segs:(l + 1) * segs] for l in range(cfg["num_hidden_layers"])]
        out["cases"].append({"mode": mode, "tokens": n, "ids": ids.tolist(),
                             "global_per_segment": [[s[0] for s in l] for l in layers],
                             "local_per_segment": [[s[1] for s in l] for l in layers],
                             "tokens_per_segment": [[s[2] for s in l] for l in layers]})
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
