#!/usr/bin/python3
"""Padding-mask fixtures: a right-padded batch of 2 through the tiny HiCI models of
tools/make_hici_model_fixtures.py (tests/fixtures/hici/model-{qwen3,llama}), full attention and every HiCI
mode, training and inference forwards.

    /usr/bin/python3 tools/make_hici_padding_fixtures.py

Writes tests/fixtures/hici/model-<name>/expected_padded.safetensors:
    input_ids [2, 32], attention_mask [2, 32]   row 0: 32 real tokens; row 1: 19 real tokens + 13 pad (id 0),
                                                so with S = 8 segment 2 is partly and segment 3 fully padded
    lp.full [2, 32, V]                          full attention, padded keys masked
    lp.train.<mode> [2, 32, V]                  HiCI training forward (ratio 1/4)
    lp.inference.<mode> [2, 30, V]              HiCI inference forward on the first 30 columns (S = 7, padded to 35)
Only log-probs at real positions are meaningful (padded positions are compared nowhere).
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hici_model_reference as hm  # noqa: E402
import hici_reference as ref  # noqa: E402
from fixturelib import hici_modules_from, read_json, read_safetensors, write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(HERE), "tests", "fixtures", "hici")
VALID1 = 19


def main():
    torch.set_num_threads(1)
    for name in ("qwen3", "llama"):
        folder = os.path.join(ROOT, "model-" + name)
        cfg = read_json(os.path.join(folder, "config.json"))
        hc = read_json(os.path.join(folder, "hici_config.json"))
        sd = {k: v.float() for k, v in read_safetensors(os.path.join(folder, "model.safetensors")).items()}
        mods = hici_modules_from(sd, cfg, hc)
        row0 = read_safetensors(os.path.join(folder, "expected_train.safetensors"))["input_ids"]
        gen = torch.Generator().manual_seed(77)
        row1 = torch.randint(3, cfg["vocab_size"], (32,), generator=gen)
        row1[VALID1:] = 0
        ids = torch.stack([row0, row1])
        mask = torch.ones(2, 32, dtype=torch.int64)
        mask[1, VALID1:] = 0
        out = {"input_ids": ids, "attention_mask": mask}
        with torch.no_grad():
            out["lp.full"] = hm.forward(cfg, sd, mods, ids, mask, None)
            for mode in ref.CAUSAL_MODES:
                out["lp.train." + mode] = hm.forward(cfg, sd, mods, ids, mask, mode, "train")
                out["lp.inference." + mode] = hm.forward(cfg, sd, mods, ids[:, :30], mask[:, :30], mode, "inference")
            # row 0 alone must equal the unpadded fixture (guards this script against drift)
            exp = read_safetensors(os.path.join(folder, "expected_train.safetensors"))
            for key, mine in (("lp.full", out["lp.full"]), ("lp.causal_gi", out["lp.train.causal_gi"])):
                d = (mine[0] - exp[key]).abs().max().item()
                assert d < 1e-5, f"{name} {key}: row 0 differs from the unpadded fixture by {d}"
        write_safetensors(os.path.join(folder, "expected_padded.safetensors"), out, {"source": "tools/make_hici_padding_fixtures.py"})
        print(name, "ok")


if __name__ == "__main__":
    main()
