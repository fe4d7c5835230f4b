#!/usr/bin/python3
"""Gradient-parity fixtures for training: on the tiny HiCI Llama and Qwen3 models of tests/fixtures/hici/model-*,
with LoRA, the gradient of every trainable tensor after one forward + backward of the causal-LM loss, and the
parameters after one AdamW step — computed here, independently of the C# code, in plain torch.

    /usr/bin/python3 tools/make_training_fixtures.py

The decoder math is tools/fixturelib.py's (HF LlamaForCausalLM / Qwen3ForCausalLM op for op; its `linear` adds
PEFT 0.5's LoRA term when the state dict carries a pair), the HiCI attention tools/hici_reference.py's
training forward; HiCI's own q/k/v/o projections carry LoRA through LoraWrap below (PEFT's suffix match wraps
them because the reference registers HiCI before get_peft_model). The loss is transformers' (labels shifted
inside, -100 ignored, mean). Trainable, as fine-tune_hici.py with --trainable_params
embed,norm,local_constructor,global_integrator: LoRA A/B, the input embedding, every norm (Qwen3's q_norm/k_norm
included) and every HiCI tensor (their projections' base weights included); lm_head and the rest frozen.

Per tests/fixtures/training/<model>-<placement>/ (placement "attn": LoRA on the attention q/k/v/o only, a PEFT
regex; "all": on every q/k/v/o, HiCI's included):
    adapter_config.json, adapter_model.safetensors   the LoRA pairs (random, non-zero B so A has a gradient)
    trainable.safetensors                             the trainable tensors' starting values (= the base's)
    expected.safetensors   input_ids, labels; loss.<mode> and grad.<mode>.<key> for every HiCI causal mode;
                           step.<key>: every trainable tensor after one AdamW step (mode causal_shift; lr 1e-2,
                           HiCI group 3e-2, weight decay 0.01, betas 0.9/0.999, eps 1e-8; no clipping)
"""
import copy
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixturelib as fl  # noqa: E402
import hici_reference as ref  # noqa: E402

ROOT = os.path.join(os.path.dirname(HERE), "tests", "fixtures")
R, ALPHA = 4, 8.0
SCALE = ALPHA / R
PROJ = ("q_proj", "k_proj", "v_proj", "o_proj")
LR, HICI_LR, WD = 1e-2, 3e-2, 0.01
STEP_MODE = "causal_shift"


class LoraWrap(nn.Module):
    """PEFT 0.5 lora.Linear around a HiCI projection: base(x) + scale * B(A(x))."""

    def __init__(self, base, a, b):
        super().__init__()
        self.base = base
        self.lora_A = nn.Parameter(a.clone())
        self.lora_B = nn.Parameter(b.clone())

    def forward(self, x):
        return self.base(x) + SCALE * F.linear(F.linear(x, self.lora_A), self.lora_B)


def is_trainable(key):
    return any(s in key for s in ("embed", "norm", "local_constructor", "global_integrator"))


def lora_targets(cfg, placement, mods):
    """[(module path, in, out)] LoRA wraps, in a fixed order."""
    t = []
    for i in range(cfg["num_hidden_layers"]):
        a = f"model.layers.{i}.self_attn."
        for p in PROJ:
            t.append((a + p, None, None))
        if placement == "all":
            lc, gi = mods[i]
            for mname, m in (("local_constructor", lc), ("global_integrator", gi)):
                for p in PROJ:
                    lin = getattr(m, p, None)
                    if lin is not None:
                        t.append((a + mname + "." + p, lin.in_features, lin.out_features))
    return t


def run(cfg, base, mods0, lora, ids, labels, mode, step=False):
    """Loss, {key: grad} and (step=True) {key: value after one AdamW step} for one HiCI mode."""
    sd, params, groups = {}, {}, {"rest": [], "hici": []}
    for k, v in base.items():
        if is_trainable(k) and not k.startswith("lm_head"):
            sd[k] = v.clone().requires_grad_(True)
            params[k] = sd[k]
            groups["hici" if ("local_constructor" in k or "global_integrator" in k) else "rest"].append(k)
        else:
            sd[k] = v
    mods = copy.deepcopy(mods0)
    for i, (lc, gi) in enumerate(mods):
        for mname, m in (("local_constructor", lc), ("global_integrator", gi)):
            pre = f"model.layers.{i}.self_attn.{mname}."
            for p in PROJ:
                path = pre + p
                if path + ".lora_A.weight" in lora:
                    setattr(m, p, LoraWrap(getattr(m, p), lora[path + ".lora_A.weight"], lora[path + ".lora_B.weight"]))
            for n, prm in m.named_parameters():
                key = pre + n.replace("base.weight", "weight").replace("lora_A", "lora_A.weight").replace("lora_B", "lora_B.weight")
                prm.requires_grad_(True)
                params[key] = prm
                groups["hici"].append(key)
    for k, v in lora.items():
        if "local_constructor" in k or "global_integrator" in k:
            continue
        sd[k] = v.clone().requires_grad_(True)
        params[k] = sd[k]
        groups["rest"].append(k)
        sd[k.rsplit(".lora_", 1)[0] + ".lora_scale"] = SCALE

    def attend(i, a, hn, q, k, v):
        lc, gi = mods[i]
        return fl.hici_attention(sd, a, hn, None, q, k, v, lc, gi, mode, "train")

    logits = fl.decoder_logits(cfg, sd, ids[None], attend)[0]
    loss = F.cross_entropy(logits[:-1], labels[1:], ignore_index=-100)
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in params.items() if p.grad is not None}
    after = None
    if step:
        opt = torch.optim.AdamW([{"params": [params[k] for k in groups["rest"]], "lr": LR},
                                 {"params": [params[k] for k in groups["hici"]], "lr": HICI_LR}],
                                lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=WD)
        opt.step()
        after = {k: p.detach().clone() for k, p in params.items()}
    return loss.detach(), grads, after


def main():
    torch.set_num_threads(1)
    out_root = os.path.join(ROOT, "training")
    os.makedirs(out_root, exist_ok=True)
    for n, name in enumerate(("llama", "qwen3")):
        folder = os.path.join(ROOT, "hici", "model-" + name)
        cfg = fl.read_json(os.path.join(folder, "config.json"))
        hc = fl.read_json(os.path.join(folder, "hici_config.json"))
        # float64 throughout: the reference gradient is then exact to far below the fp32 tolerance tested
        allw = {k: v.double() for k, v in fl.read_safetensors(os.path.join(folder, "model.safetensors")).items()}
        mods = [(lc.double(), gi.double()) for lc, gi in fl.hici_modules_from(allw, cfg, hc)]
        base = {k: v for k, v in allw.items() if "local_constructor" not in k and "global_integrator" not in k}
        gen = torch.Generator().manual_seed(777 + n)
        ids = torch.randint(0, cfg["vocab_size"], (32,), generator=gen)
        labels = ids.clone()
        labels[[3, 10, 11, 30]] = -100
        for placement in ("attn", "all"):
            lora = {}
            for path, fin, fout in lora_targets(cfg, placement, mods):
                if fin is None:
                    w = allw[path + ".weight"]
                    fout, fin = w.shape
                # fp32-representable values, so the C# model (fp32) starts from exactly these
                lora[path + ".lora_A.weight"] = (0.3 * torch.randn(R, fin, generator=gen) / fin ** 0.5).double()
                lora[path + ".lora_B.weight"] = (0.3 * torch.randn(fout, R, generator=gen) / R ** 0.5).double()
            dst = os.path.join(out_root, f"{name}-{placement}")
            os.makedirs(dst, exist_ok=True)
            targets = r"model\.layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|o_proj)" if placement == "attn" else list(PROJ)
            fl.write_json(os.path.join(dst, "adapter_config.json"), fl.peft_config(R, ALPHA, targets, base="tests/fixtures/hici/model-" + name), indent=2)
            fl.write_safetensors(os.path.join(dst, "adapter_model.safetensors"),
                                 {"base_model.model." + k: v.float() for k, v in lora.items()}, {"format": "pt"})
            fl.write_safetensors(os.path.join(dst, "trainable.safetensors"),
                                 {k: v.float() for k, v in allw.items() if is_trainable(k)}, {"format": "pt"}, sort=True)
            exp = {"input_ids": ids, "labels": labels}
            for mode in ref.CAUSAL_MODES:
                loss, grads, after = run(cfg, base, mods, lora, ids, labels, mode, step=(mode == STEP_MODE))
                exp["loss." + mode] = loss.reshape(1).float()
                for k, g in grads.items():
                    exp[f"grad.{mode}.{k}"] = g.float()
                if after is not None:
                    for k, v in after.items():
                        exp["step." + k] = v.float()
            fl.write_safetensors(os.path.join(dst, "expected.safetensors"), exp,
                                 {"source": "tools/make_training_fixtures.py"}, log=True)


if __name__ == "__main__":
    main()
