#!/usr/bin/python3
"""End-to-end HiCI golden fixtures: a tiny Qwen3-like (GQA, q_norm/k_norm) and a tiny Llama-like (MHA,
linear RoPE scaling) decoder with HiCI modules in every layer, and the log-probabilities of every HiCI
mode under the training and the inference forward, plus full attention with the HiCI weights unused and a
KV-cache decode after a HiCI prefill.

    /usr/bin/python3 tools/make_hici_model_fixtures.py

The decoder math is tools/fixturelib.py's (the models branch's independent HF reference, shared with
tools/make_model_fixtures.py); the attention is replaced by tools/hici_reference.py.
Per folder tests/fixtures/hici/model-<name>/:
    config.json, hici_config.json
    model.safetensors         base weights (bf16; the file is the truth, computed in fp32) + HiCI weights (bf16-rounded)
    expected_train.safetensors      input_ids [32]; lp.full, lp.<mode> [32, V] (training forward, ratio 1/4)
    expected_inference.safetensors  input_ids [30]; lp.<mode> [30, V] (inference forward: S = 7, padded to 35);
                                    decode.prefix_len, lp.decode [2, V] (prefill 24 with HiCI, then 2 decode steps)
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixturelib as fl  # noqa: E402
import hici_reference as ref  # noqa: E402
from make_hici_fixtures import write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(HERE), "tests", "fixtures", "hici")
HC = dict(num_local_slots=4, global_slots=2, num_heads=4, bottleneck_dim=32, shared_compress_dim=16)

MODELS = {
    "qwen3": fl.qwen3_config(),
    "llama": fl.llama_config(rope_scaling={"type": "linear", "factor": 2.0}),
}


def forward(cfg, sd, mods, ids, mode, kind, ratio=0.25, cache=None, start=0):
    """Log-probs [T, V]. mode None = full attention. cache: dict layer -> (k, v) (filled at start 0,
    extended afterwards: then the new tokens attend over cached + new token K/V, no memory)."""
    if cfg.get("rope_scaling") and cfg["rope_scaling"].get("type") == "dynamic":
        raise NotImplementedError

    def attend(i, a, hn, q, k, v):
        if cache is not None and start > 0:
            pk, pv = cache[i]
            k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
            cache[i] = (k, v)
            return ref.decode_attention(q, k, v)
        if cache is not None:
            cache[i] = (k, v)
        if mode is None:
            return ref.decode_attention(q, k, v)          # plain causal attention (Tn == Tk)
        lc, gi = mods[i]
        return fl.hici_attention(sd, a, hn, None, q, k, v, lc, gi, mode, kind, ratio=ratio)

    return torch.log_softmax(fl.decoder_logits(cfg, sd, ids[None], attend, start)[0].float(), dim=-1)


def main():
    torch.set_num_threads(1)
    for n, (name, cfg) in enumerate(MODELS.items()):
        gen = torch.Generator().manual_seed(4321 + n)
        torch.manual_seed(4321 + n)
        sd = fl.random_state_dict(cfg, gen, torch.bfloat16)
        mods = [fl.random_hici_modules(cfg, HC, gen) for _ in range(cfg["num_hidden_layers"])]
        hsd = {}
        for i, (lc, gi) in enumerate(mods):
            for k, v in lc.state_dict().items():
                hsd[f"model.layers.{i}.self_attn.local_constructor.{k}"] = v
            for k, v in gi.state_dict().items():
                hsd[f"model.layers.{i}.self_attn.global_integrator.{k}"] = v
        folder = os.path.join(ROOT, "model-" + name)
        os.makedirs(folder, exist_ok=True)
        fl.write_json(os.path.join(folder, "config.json"), cfg, indent=2)
        fl.write_json(os.path.join(folder, "hici_config.json"), HC, indent=2)
        all_w = dict(sd)
        all_w.update({k: v.to(torch.bfloat16) for k, v in hsd.items()})
        write_safetensors(os.path.join(folder, "model.safetensors"), all_w, {"format": "pt"})
        # the file is the truth: compute from the bf16-rounded weights, in fp32
        sd32 = {k: v.float() for k, v in sd.items()}
        with torch.no_grad():
            for i, (lc, gi) in enumerate(mods):
                for m, pre in ((lc, "local_constructor."), (gi, "global_integrator.")):
                    for k, v in m.state_dict().items():
                        v.copy_(all_w[f"model.layers.{i}.self_attn.{pre}{k}"].float())
            ids = torch.randint(0, cfg["vocab_size"], (32,), generator=gen)
            out = {"input_ids": ids, "lp.full": forward(cfg, sd32, mods, ids, None, "train")}
            for mode in ref.CAUSAL_MODES:
                out["lp." + mode] = forward(cfg, sd32, mods, ids, mode, "train")
            for mode in ref.CAUSAL_MODES:
                d = (out["lp." + mode] - out["lp.full"]).abs().max().item()
                assert d > 1e-2, f"{name} {mode}: HiCI barely changes the log-probs ({d})"
            write_safetensors(os.path.join(folder, "expected_train.safetensors"), out, {"source": "tools/make_hici_model_fixtures.py"})

            ids = ids[:30].clone()
            out = {"input_ids": ids}
            for mode in ref.CAUSAL_MODES:
                out["lp." + mode] = forward(cfg, sd32, mods, ids, mode, "inference")
            # prefill 24 tokens with HiCI (inference forward, S = 6, 4 segments), then decode 2 steps
            cache = {}
            forward(cfg, sd32, mods, ids[:24], "causal_gi", "inference", cache=cache, start=0)
            lp = [forward(cfg, sd32, mods, ids[24 + j:25 + j], None, "inference", cache=cache, start=24 + j) for j in range(2)]
            out["lp.decode"] = torch.cat(lp, dim=0)
            out["decode.prefix_len"] = torch.tensor([24])
            write_safetensors(os.path.join(folder, "expected_inference.safetensors"), out, {"source": "tools/make_hici_model_fixtures.py"})


if __name__ == "__main__":
    main()
