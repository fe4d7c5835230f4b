#!/usr/bin/python3
"""Golden fixtures for the LoRA / PEFT tests: PEFT adapter folders for the tiny model fixtures and the
log-probabilities of base + LoRA computed here, independently of the C# code.

Run with Debian's torch (no peft / transformers needed or used), after tools/make_model_fixtures.py:
    /usr/bin/python3 tools/make_lora_fixtures.py

The reference math is PEFT's: every wrapped Linear uses W + (lora_alpha / r) · B · A, evaluated in float32 with
the A/B values exactly as stored in the files. The forward pass is the one make_model_fixtures.py uses
(tools/fixturelib.py: HF Llama / Qwen3 in plain torch), imported, not copied.

Per fixture folder (tests/fixtures/lora/<name>/, <name> = the model fixture used):
    adapter/adapter_config.json           PEFT 0.5 config
    adapter/adapter_model.safetensors     keys base_model.model.<module>.lora_{A,B}.weight
    adapter/adapter_model.bin             the same tensors through torch.save (zip + pickle)
    expected.safetensors                  input_ids [T] (same ids as the model fixture)
                                          logprobs_fp32 [T, V]  base + LoRA
qwen3-gqa only, the published HiCI checkpoint layout (get_trainable_weights.py's split, LoRA on the HiCI projections):
    adapter-hici/                         attention LoRA + LoRA on the HiCI modules' q/k/v/o projections,
                                          the HiCI keys under the legacy prefixes global_memory /
                                          hierarchical_aggregator (bf16)
    trainable_params.bin                  fp32 overrides: embed, every norm incl. q_norm/k_norm, plus HiCI
                                          module tensors (local_constructor.*, global_integrator.*)
    zero_to_fp32/pytorch_model.bin        a zero_to_fp32-style state dict: base_model.model.-prefixed base
                                          weights plus LoRA under .lora_A.default.weight (fp32)
    expected.safetensors also holds       logprobs_trainable_fp32  base + LoRA + the non-HiCI overrides
                                          hici_merged.<key>        each HiCI projection weight + its LoRA delta
hici-qwen3/ (a real HiCI model: tests/fixtures/hici/model-qwen3, run through tools/hici_reference.py):
    adapter/                              LoRA on attention and HiCI q/k/v/o (HiCI keys under legacy prefixes)
    trainable_params.bin                  the model's HiCI weights (legacy prefixes) + embed/norm overrides
    expected.safetensors                  input_ids [32]; lp.full (HiCI loaded, unused), lp.train.causal_gi,
                                          lp.inference.causal_gi (first 30 ids), all with LoRA and overrides
"""
import collections
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixturelib as fl  # noqa: E402  (the independent HF forward, safetensors/JSON files)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
PREFIX = "base_model.model."
PROJ = ("q_proj", "k_proj", "v_proj", "o_proj")

def read_model(name):
    folder = os.path.join(ROOT, "models", name)
    cfg = fl.read_json(os.path.join(folder, "config.json"))
    sd = {}
    for fn in sorted(os.listdir(folder)):
        if fn.startswith("model") and fn.endswith(".safetensors"):
            sd.update(fl.read_safetensors(os.path.join(folder, fn)))
    ids = fl.read_safetensors(os.path.join(folder, "expected.safetensors"))["input_ids"]
    return cfg, sd, ids


def random_lora(gen, r, fan_in, fan_out, b_std):
    # A as PEFT initialises it (kaiming-uniform, a=sqrt(5) → U(-1/sqrt(in), 1/sqrt(in))); B nonzero so LoRA matters.
    bound = 1.0 / math.sqrt(fan_in)
    a = (torch.rand(r, fan_in, generator=gen) * 2 - 1) * bound
    b = torch.randn(fan_out, r, generator=gen) * b_std
    return a, b


def attention_lora(cfg, sd, gen, r, b_std):
    """{module path: (A, B)} for q/k/v/o of every layer."""
    out = {}
    for i in range(cfg["num_hidden_layers"]):
        for p in PROJ:
            module = f"model.layers.{i}.self_attn.{p}"
            w = sd[module + ".weight"]
            out[module] = random_lora(gen, r, w.shape[1], w.shape[0], b_std)
    return out


def merged_state_dict(sd, lora, scale):
    """The reference math: W + scale · B · A in float32 for every LoRA'd module."""
    out = {k: v.float() for k, v in sd.items()}
    for module, (a, b) in lora.items():
        out[module + ".weight"] = out[module + ".weight"] + scale * (b.float() @ a.float())
    return out


def peft_tensors(lora, dtype, rename=lambda m: m, adapter_name=""):
    t = {}
    for module, (a, b) in lora.items():
        m = rename(module)
        t[f"{PREFIX}{m}.lora_A{adapter_name}.weight"] = a.to(dtype).contiguous()
        t[f"{PREFIX}{m}.lora_B{adapter_name}.weight"] = b.to(dtype).contiguous()
    return t


def write_adapter(folder, config, tensors):
    os.makedirs(folder, exist_ok=True)
    fl.write_json(os.path.join(folder, "adapter_config.json"), config, indent=2, sort_keys=True)
    fl.write_safetensors(os.path.join(folder, "adapter_model.safetensors"), tensors, {"format": "pt"})
    torch.save(collections.OrderedDict(tensors), os.path.join(folder, "adapter_model.bin"))


def start(name, seed):
    """The model fixture <name>, a generator seeded with seed, and an emptied tests/fixtures/lora/<name>/."""
    cfg, sd, ids = read_model(name)
    gen = torch.Generator().manual_seed(seed)
    folder = os.path.join(ROOT, "lora", name)
    fresh(folder)
    return cfg, sd, ids, gen, folder


def bf16(lora):
    """Published adapters are bf16: round first, compute with the stored values."""
    return {m: (a.to(torch.bfloat16), b.to(torch.bfloat16)) for m, (a, b) in lora.items()}


def write_expected(folder, tensors):
    fl.write_safetensors(os.path.join(folder, "expected.safetensors"), tensors,
                         {"source": "tools/make_lora_fixtures.py", "torch": torch.__version__})


def logprobs(cfg, sd, ids):
    with torch.no_grad():
        return torch.log_softmax(fl.forward(cfg, sd, ids, torch.float32).float(), dim=-1)


def fresh(folder):
    os.makedirs(folder, exist_ok=True)
    for dirpath, _, files in os.walk(folder, topdown=False):
        for f in files:
            os.remove(os.path.join(dirpath, f))


# ---------------------------------------------------------------- HiCI-shaped tensors (keys as register_hici_to_model names them)

HICI_BETA = 16     # LocalConstructor bottleneck β
HICI_D = 16        # GlobalIntegrator width D
HICI_M, HICI_K, HICI_C = 2, 2, 8

LEGACY = {"local_constructor": "global_memory", "global_integrator": "hierarchical_aggregator"}


def hici_tensors(cfg, gen):
    h = cfg["hidden_size"]
    sd = {}
    for i in range(cfg["num_hidden_layers"]):
        lc = f"model.layers.{i}.self_attn.local_constructor."
        sd[lc + "memory_slots"] = torch.randn(HICI_M, h, generator=gen) / math.sqrt(h)
        for p in ("q_proj", "k_proj", "v_proj"):
            sd[lc + p + ".weight"] = torch.randn(HICI_BETA, h, generator=gen) / math.sqrt(h)
        sd[lc + "o_proj.weight"] = torch.randn(h, HICI_BETA, generator=gen) / math.sqrt(HICI_BETA)
        gi = f"model.layers.{i}.self_attn.global_integrator."
        sd[gi + "global_queries"] = torch.randn(HICI_K, HICI_D, generator=gen)
        sd[gi + "expand_scale_param"] = torch.tensor(0.5)
        sd[gi + "shared_compressor.0.weight"] = torch.randn(HICI_C, h, generator=gen) / math.sqrt(h)
        for p in PROJ:
            sd[gi + p + ".weight"] = torch.randn(HICI_D, HICI_D, generator=gen) / math.sqrt(HICI_D)
        sd[gi + "expand.weight"] = torch.randn(h, HICI_D, generator=gen) / math.sqrt(HICI_D)
    return sd


def hici_lora(hici_sd, gen, r, b_std):
    out = {}
    for k, w in hici_sd.items():
        if k.endswith("_proj.weight"):
            out[k[: -len(".weight")]] = random_lora(gen, r, w.shape[1], w.shape[0], b_std)
    return out


def to_legacy(module):
    for cur, old in LEGACY.items():
        module = module.replace(f".self_attn.{cur}.", f".self_attn.{old}.")
    return module


def trainable_overrides(cfg, sd, gen):
    """What get_trainable_weights.py puts in trainable_params.bin besides HiCI: embed and every *norm* weight."""
    out = {}
    for k, v in sd.items():
        if k == "model.embed_tokens.weight":
            out[k] = v.float() + 0.02 * torch.randn(v.shape, generator=gen)
        elif "norm" in k:
            out[k] = v.float() * (1.0 + 0.1 * torch.randn(v.shape, generator=gen))
    return out


# ---------------------------------------------------------------- fixtures

def make_qwen3():
    name = "qwen3-gqa"
    cfg, sd, ids, gen, folder = start(name, 4321)
    r, alpha = 8, 16
    scale = alpha / r

    lora = bf16(attention_lora(cfg, sd, gen, r, 0.08))
    write_adapter(os.path.join(folder, "adapter"), fl.peft_config(r, alpha, list(PROJ), base="tiny-qwen3"),
                  peft_tensors(lora, torch.bfloat16))
    merged = merged_state_dict(sd, lora, scale)
    lp = logprobs(cfg, merged, ids)

    # HiCI layout: LoRA on HiCI projections too, stored under the legacy prefixes.
    hici = hici_tensors(cfg, gen)
    hlora = bf16(hici_lora(hici, gen, r, 0.08))
    write_adapter(os.path.join(folder, "adapter-hici"), fl.peft_config(r, alpha, list(PROJ), base="tiny-qwen3"),
                  {**peft_tensors(lora, torch.bfloat16), **peft_tensors(hlora, torch.bfloat16, rename=to_legacy)})
    overrides = trainable_overrides(cfg, sd, gen)
    trainable = collections.OrderedDict({**overrides, **hici})
    torch.save(trainable, os.path.join(folder, "trainable_params.bin"))
    lp_trainable = logprobs(cfg, merged_state_dict({**sd, **overrides}, lora, scale), ids)
    hici_merged = {f"hici_merged.{m}.weight": hici[m + ".weight"] + scale * (b.float() @ a.float()) for m, (a, b) in hlora.items()}

    # zero_to_fp32 output: the whole PEFT model in fp32, adapter name kept in the LoRA keys.
    # (Only the attention and norm base weights, to keep the file small; the real one has all of them.)
    z = collections.OrderedDict()
    for k, v in sd.items():
        if ".self_attn." in k or "norm" in k:
            z[PREFIX + k] = v.float()
    z.update(peft_tensors(lora, torch.float32, adapter_name=".default"))
    os.makedirs(os.path.join(folder, "zero_to_fp32"), exist_ok=True)
    torch.save(z, os.path.join(folder, "zero_to_fp32", "pytorch_model.bin"))

    write_expected(folder, {"input_ids": ids, "logprobs_fp32": lp, "logprobs_trainable_fp32": lp_trainable, **hici_merged})
    base = logprobs(cfg, {k: v.float() for k, v in sd.items()}, ids)
    print(f"{name:18s} max|lora - base| logprob {(lp - base).abs().max():.3f}  "
          f"max|trainable - lora| {(lp_trainable - lp).abs().max():.3f}")


def make_llama():
    # MHA with q/k/v biases, target_modules as a regex string, scale 3, dropout set (inactive at eval), fp32.
    name = "llama-mha-linear"
    cfg, sd, ids, gen, folder = start(name, 8765)
    r, alpha = 4, 12
    lora = attention_lora(cfg, sd, gen, r, 0.08)
    write_adapter(os.path.join(folder, "adapter"),
                  fl.peft_config(r, alpha, r"model\.layers\.\d+\.self_attn\.(q|k|v|o)_proj", dropout=0.05, base="tiny-llama"),
                  peft_tensors(lora, torch.float32))
    lp = logprobs(cfg, merged_state_dict(sd, lora, alpha / r), ids)
    write_expected(folder, {"input_ids": ids, "logprobs_fp32": lp})
    base = logprobs(cfg, {k: v.float() for k, v in sd.items()}, ids)
    print(f"{name:18s} max|lora - base| logprob {(lp - base).abs().max():.3f}")


def make_hici_qwen3():
    """A HiCI model end to end: the tiny Qwen3 with HiCI modules of tests/fixtures/hici/model-qwen3, LoRA on the
    attention AND on the HiCI q/k/v/o projections (legacy prefixes in the file), a trainable_params.bin with
    the HiCI weights and embed/norm/q_norm/k_norm overrides; log-probs from tools/hici_reference.py via
    make_hici_model_fixtures.forward with every LoRA'd weight replaced by W + (alpha/r)·B·A."""
    import make_hici_model_fixtures as hm

    src = os.path.join(ROOT, "hici", "model-qwen3")
    cfg = fl.read_json(os.path.join(src, "config.json"))
    hc = fl.read_json(os.path.join(src, "hici_config.json"))
    stored = fl.read_safetensors(os.path.join(src, "model.safetensors"))
    base = {k: v for k, v in stored.items() if ".local_constructor." not in k and ".global_integrator." not in k}
    hici = {k: v.float() for k, v in stored.items() if k not in base}
    ids = fl.read_safetensors(os.path.join(src, "expected_train.safetensors"))["input_ids"]

    gen = torch.Generator().manual_seed(2468)
    folder = os.path.join(ROOT, "lora", "hici-qwen3")
    fresh(folder)
    r, alpha = 8, 16
    scale = alpha / r
    lora = bf16(attention_lora(cfg, base, gen, r, 0.08))
    hlora = bf16(hici_lora(hici, gen, r, 0.15))
    write_adapter(os.path.join(folder, "adapter"), fl.peft_config(r, alpha, list(PROJ), base="tiny-qwen3-hici"),
                  {**peft_tensors(lora, torch.bfloat16), **peft_tensors(hlora, torch.bfloat16, rename=to_legacy)})
    overrides = trainable_overrides(cfg, base, gen)
    torch.save(collections.OrderedDict({**overrides, **{to_legacy(k): v for k, v in hici.items()}}),
               os.path.join(folder, "trainable_params.bin"))

    sd = merged_state_dict({**base, **overrides}, lora, scale)
    hmerged = dict(hici)
    for m, (a, b) in hlora.items():
        hmerged[m + ".weight"] = hici[m + ".weight"] + scale * (b.float() @ a.float())
    mods = fl.hici_modules_from(hmerged, cfg, hc)
    with torch.no_grad():
        out = {"input_ids": ids,
               "lp.full": hm.forward(cfg, sd, mods, ids, None, "train"),
               "lp.train.causal_gi": hm.forward(cfg, sd, mods, ids, "causal_gi", "train"),
               "lp.inference.causal_gi": hm.forward(cfg, sd, mods, ids[:30].clone(), "causal_gi", "inference")}
        # the HiCI LoRA must matter in HiCI mode, or the test could not see it missing
        plain = fl.hici_modules_from(hici, cfg, hc)
        d = (hm.forward(cfg, sd, plain, ids, "causal_gi", "train") - out["lp.train.causal_gi"]).abs().max().item()
        assert d > 1e-2, f"HiCI LoRA barely changes the log-probs ({d})"
    write_expected(folder, out)
    print(f"{'hici-qwen3':18s} max|HiCI LoRA effect| logprob {d:.3f}")


def main():
    torch.set_num_threads(1)
    make_qwen3()
    make_llama()
    make_hici_qwen3()


if __name__ == "__main__":
    main()
