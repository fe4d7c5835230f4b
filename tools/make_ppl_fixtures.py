#!/usr/bin/python3
"""Writes tests/fixtures/eval/ppl/: a token file and the perplexities the reference protocol gives on the tiny
fixture models — an independent computation of eval_distributed_hici.py's windows and metric.

Protocol (HiCI eval_distributed_hici.py → Pg19Dataset / EvalMetricImpl): start offsets
range(0, len(data) − seq_len, stride); every position of each window data[s : s+seq_len] scored
(logits[:-1] vs ids[1:]); log-softmax in float32; perplexity = exp(total NLL / total tokens). RoPE
(run_eval): if context_size > max_position_embeddings, linear scaling with factor ceil(ctx/max_pos) for
Llama, ctx/max_pos for Qwen3, replacing any stored factor. The model math is tools/fixturelib.py's HF forward.

Run with Debian's torch:  /usr/bin/python3 tools/make_ppl_fixtures.py
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixturelib import REPO, forward, read_json, read_safetensors  # noqa: E402

OUT = os.path.join(REPO, "tests", "fixtures", "eval", "ppl")
MODELS = os.path.join(REPO, "tests", "fixtures", "models")


def windows(n, seq_len, stride):
    return list(range(0, n - seq_len, stride))


def rope_for(cfg, context_size):
    cfg = dict(cfg)
    if context_size > cfg["max_position_embeddings"]:
        f = context_size / cfg["max_position_embeddings"]
        if cfg["model_type"] == "llama":
            f = float(math.ceil(f))
        cfg["rope_scaling"] = {"type": "linear", "factor": f}
    return cfg


def run(model, data, seq_len, stride, context_size):
    cfg = rope_for(read_json(os.path.join(MODELS, model, "config.json")), context_size)
    sd = {k: v.float() for k, v in read_safetensors(os.path.join(MODELS, model, "model.safetensors")).items()}
    per_window = []
    for s in windows(len(data), seq_len, stride):
        ids = torch.tensor(data[s:s + seq_len].astype(np.int64))
        with torch.no_grad():
            logits = forward(cfg, sd, ids, torch.float32)
        lp = torch.log_softmax(logits[:-1].float(), dim=-1)
        nll = -lp.gather(1, ids[1:, None]).double().sum().item()
        per_window.append(nll)
    tokens = len(per_window) * (seq_len - 1)
    total = sum(per_window)
    return {"model": model, "seq_len": seq_len, "stride": stride, "context_size": context_size,
            "rope_scaling": cfg.get("rope_scaling"), "window_nll": per_window,
            "nll": total, "tokens": tokens, "windows": len(per_window), "ppl": math.exp(total / tokens)}


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261130)
    data = rng.integers(0, 256, size=1500, dtype=np.uint16)
    data.tofile(os.path.join(OUT, "tokens.bin"))          # bare .bin: vocab 256 → uint16
    cases = [
        run("qwen3-gqa", data, 256, 256, 256),               # ctx = seq: 256 > 128 → factor 2.0 (Qwen3: no ceil)
        run("qwen3-gqa", data, 300, 256, 100),               # ctx ≤ max_pos: the config's RoPE (none)
        run("llama-mha-linear", data, 256, 256, 200),        # Llama: ceil(200/64) = 4 replaces the stored 2
        run("llama-mha-linear", data, 256, 128, 64),         # stride 128; ctx ≤ max_pos keeps the stored factor 2
    ]
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"generator": "tools/make_ppl_fixtures.py", "cases": cases}, f, indent=1)
        f.write("\n")
    for c in cases:
        print(c["model"], c["seq_len"], c["stride"], c["context_size"], c["windows"], c["ppl"])


if __name__ == "__main__":
    main()
