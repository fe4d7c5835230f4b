#!/usr/bin/python3
"""Reference-layout checkpoint folders (what a user has after the reference's get_trainable_weights.py):
a plain HF base (config.json + model.safetensors, bf16, no HiCI) with the reference's trainable_params.bin
(torch.save of an OrderedDict, fp32: embed_tokens with the trained vocabulary, model.norm, the layer norms,
Qwen3 q_norm/k_norm, and every HiCI tensor), plus expected log-probs.

    /usr/bin/python3 tools/make_hici_reference_folder.py

tests/fixtures/hici/refdir-qwen3/   GQA + QK-norm, tied embeddings; vocabulary 256 → 250 (the reference
                                    shrinks Qwen3 to the trained vocabulary); current HiCI key names
tests/fixtures/hici/refdir-llama/   MHA, linear RoPE, untied lm_head; vocabulary 256 → 258 (grown like
                                    Llama-2's [PAD]; new lm_head rows = mean of the old rows); legacy prefixes
                                    global_memory / hierarchical_aggregator
Each folder also holds a PEFT 0.5 adapter (adapter_config.json r=4 alpha=8 on q/k/v/o, adapter_model.safetensors
bf16) whose LoRA covers the attention AND the HiCI-internal projections (local_constructor / global_integrator
q/k/v/o_proj: PEFT's suffix match of fine-tune_hici.py's target_modules; legacy module names in the Llama adapter), computed unmerged by
the reference as W x + (alpha/r) B A x, here as the fp32 effective weight W + (alpha/r) B A.
Each folder: config.json, model.safetensors, trainable_params.bin, adapter_*, and expected.safetensors:
    input_ids [32]                 ids < min(base, trained vocabulary) except one id of a new row (llama)
    lp.base_full [32, 256]         the base alone, full attention (nothing loaded from trainable_params.bin)
    lp.full [32, V']               base + overlay, full attention (HiCI loaded, unused: the paper's setting)
    lp.train.<mode> [32, V']       base + overlay, HiCI training forward (ratio 1/4), every causal mode
    lp.inference.causal_gi [30, V'] HiCI inference forward on the first 30 ids (S = 7, padded to 35)
    lp.train.causal_shift.s16 [32, V'] training forward with segment_size 16 (= ratio 1/2: 2 segments)
    lp.adapter.<key>                base + overlay + adapter: full, train.causal_gi, train.none, train.causal_shift,
                                    inference.causal_gi (same ids as without the adapter)
HiCI hyper-parameters (no hici_config.json: a foreign checkpoint): M=4 K=2 h=4 β=32 C=16, i.e.
--local-slots 4 --global-slots 2 --hici-heads 4 --bottleneck 32 --shared-compress-dim 16.
"""
import collections
import copy
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixturelib as fl  # noqa: E402
import hici_model_reference as hm  # noqa: E402
import hici_reference as ref  # noqa: E402

ROOT = os.path.join(os.path.dirname(HERE), "tests", "fixtures", "hici")
HC = dict(num_local_slots=4, global_slots=2, num_heads=4, bottleneck_dim=32, shared_compress_dim=16)

MODELS = {
    "qwen3": (fl.qwen3_config(), 250, False),
    "llama": (fl.llama_config(rope_scaling={"type": "linear", "factor": 2.0}), 258, True),
}


def resize(t, rows):
    """HF resize_token_embeddings as this project does it: keep the first rows, new rows = mean row."""
    if rows <= t.shape[0]:
        return t[:rows].clone()
    return torch.cat([t, t.mean(dim=0, keepdim=True).expand(rows - t.shape[0], -1)], dim=0)


R, ALPHA = 4, 8
ADAPTER_CONFIG = fl.peft_config(R, ALPHA, ["q_proj", "k_proj", "v_proj", "o_proj"])


def lora_pairs(cfg, mods, gen):
    """module path -> (A [r, in], B [out, r]) bf16-rounded: attention q/k/v/o and the HiCI q/k/v/o_proj."""
    H, d = cfg["hidden_size"], fl.head_dim_of(cfg)
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    out = {}

    def pair(fan_in, fan_out):
        a = torch.randn(R, fan_in, generator=gen) / fan_in ** 0.5
        b = 0.3 * torch.randn(fan_out, R, generator=gen) / R ** 0.5
        return a.to(torch.bfloat16), b.to(torch.bfloat16)
    for i, (lc, gi) in enumerate(mods):
        a = f"model.layers.{i}.self_attn."
        for name, (fi, fo) in {"q_proj": (H, nh * d), "k_proj": (H, nkv * d), "v_proj": (H, nkv * d), "o_proj": (nh * d, H)}.items():
            out[a + name] = pair(fi, fo)
        for sub, m in (("local_constructor", lc), ("global_integrator", gi)):
            for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
                w = getattr(m, name).weight
                out[f"{a}{sub}.{name}"] = pair(w.shape[1], w.shape[0])
    return out


def with_lora(sd, mods, pairs):
    """Effective fp32 weights W + (alpha/r)·B·A for the attention (in sd) and the HiCI modules (copies)."""
    scale = ALPHA / R
    sd = dict(sd)
    new_mods = [copy.deepcopy(m) for m in mods]
    for path, (a, b) in pairs.items():
        delta = scale * (b.float() @ a.float())
        layer = int(path.split(".")[2])
        for sub, idx in (("local_constructor", 0), ("global_integrator", 1)):
            if f".{sub}." in path:
                lin = getattr(new_mods[layer][idx], path.rsplit(".", 1)[1])
                with torch.no_grad():
                    lin.weight += delta
                break
        else:
            sd[path + ".weight"] = sd[path + ".weight"] + delta
    return sd, new_mods


def main():
    torch.set_num_threads(1)
    for n, (name, (cfg, vocab, legacy)) in enumerate(MODELS.items()):
        gen = torch.Generator().manual_seed(9100 + n)
        base = fl.random_state_dict(cfg, gen, torch.bfloat16)
        H = cfg["hidden_size"]
        # the overlay: trained embeddings (new vocabulary), norms, HiCI modules — fp32 as zero_to_fp32 writes
        over = collections.OrderedDict()
        over["model.embed_tokens.weight"] = 0.25 * torch.randn(vocab, H, generator=gen)
        mods = []
        for i in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{i}."
            for k in ("input_layernorm.weight", "post_attention_layernorm.weight"):
                over[p + k] = 1.0 + 0.2 * torch.randn(H, generator=gen)
            if cfg["model_type"] == "qwen3":
                for k in ("self_attn.q_norm.weight", "self_attn.k_norm.weight"):
                    over[p + k] = 1.0 + 0.2 * torch.randn(fl.head_dim_of(cfg), generator=gen)
            lc, gi = fl.random_hici_modules(cfg, HC, gen)
            lcn, gin = ("global_memory", "hierarchical_aggregator") if legacy else ("local_constructor", "global_integrator")
            for k, v in lc.state_dict().items():
                over[f"{p}self_attn.{lcn}.{k}"] = v.clone()
            for k, v in gi.state_dict().items():
                over[f"{p}self_attn.{gin}.{k}"] = v.clone()
            mods.append((lc, gi))
        over["model.norm.weight"] = 1.0 + 0.2 * torch.randn(H, generator=gen)

        folder = os.path.join(ROOT, "refdir-" + name)
        os.makedirs(folder, exist_ok=True)
        fl.write_json(os.path.join(folder, "config.json"), cfg, indent=2)
        fl.write_safetensors(os.path.join(folder, "model.safetensors"), base, {"format": "pt"})
        torch.save(over, os.path.join(folder, "trainable_params.bin"))

        # the model as the reference eval builds it: base in fp32, resized, overlay loaded (strict=False)
        sd_base = {k: v.float() for k, v in base.items()}
        sd = dict(sd_base)
        sd["model.embed_tokens.weight"] = resize(sd["model.embed_tokens.weight"], vocab)
        if not cfg["tie_word_embeddings"]:
            sd["lm_head.weight"] = resize(sd["lm_head.weight"], vocab)
        for k, v in over.items():
            if "self_attn.global_memory." not in k and "hierarchical_aggregator" not in k \
                    and ".local_constructor." not in k and ".global_integrator." not in k:
                sd[k] = v.float()
        gen2 = torch.Generator().manual_seed(55 + n)
        ids = torch.randint(3, min(256, vocab), (32,), generator=gen2)
        if vocab > 256:
            ids[20] = 256                                    # a row that only the trained vocabulary has
        out = {"input_ids": ids}
        with torch.no_grad():
            base_ids = ids.clone()
            base_ids[base_ids >= 256] = 5
            out["lp.base_full"] = hm.forward(cfg, sd_base, None, base_ids[None])[0]
            out["base_input_ids"] = base_ids
            out["lp.full"] = hm.forward(cfg, sd, mods, ids[None])[0]
            for mode in ref.CAUSAL_MODES:
                out["lp.train." + mode] = hm.forward(cfg, sd, mods, ids[None], None, mode, "train")[0]
            out["lp.inference.causal_gi"] = hm.forward(cfg, sd, mods, ids[None, :30], None, "causal_gi", "inference")[0]
            out["lp.train.causal_shift.s16"] = hm.forward(cfg, sd, mods, ids[None], None, "causal_shift", "train", segment_size=16)[0]
            pairs = lora_pairs(cfg, mods, torch.Generator().manual_seed(7700 + n))
            sdl, modsl = with_lora(sd, mods, pairs)
            out["lp.adapter.full"] = hm.forward(cfg, sdl, modsl, ids[None])[0]
            for mode in ("causal_gi", "none", "causal_shift"):
                out["lp.adapter.train." + mode] = hm.forward(cfg, sdl, modsl, ids[None], None, mode, "train")[0]
            out["lp.adapter.inference.causal_gi"] = hm.forward(cfg, sdl, modsl, ids[None, :30], None, "causal_gi", "inference")[0]
            d = (out["lp.adapter.train.causal_gi"] - out["lp.train.causal_gi"]).abs().max().item()
            assert d > 1e-2, f"{name}: the adapter barely changes the log-probs ({d})"
        fl.write_json(os.path.join(folder, "adapter_config.json"), ADAPTER_CONFIG, indent=2)
        rename = (lambda m: m.replace(".local_constructor.", ".global_memory.").replace(".global_integrator.", ".hierarchical_aggregator.")) \
            if legacy else (lambda m: m)
        tensors = {}
        for path, (a, b) in pairs.items():
            tensors[f"base_model.model.{rename(path)}.lora_A.weight"] = a
            tensors[f"base_model.model.{rename(path)}.lora_B.weight"] = b
        fl.write_safetensors(os.path.join(folder, "adapter_model.safetensors"), tensors, {"format": "pt"})
        fl.write_safetensors(os.path.join(folder, "expected.safetensors"), out, {"source": "tools/make_hici_reference_folder.py"})
        print(name, "ok", {k: tuple(v.shape) for k, v in out.items()})


if __name__ == "__main__":
    main()
