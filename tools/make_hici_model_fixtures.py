#!/usr/bin/python3
"""End-to-end HiCI golden fixtures: a tiny Qwen3-like (GQA, q_norm/k_norm) and a tiny Llama-like (MHA,
linear RoPE scaling) decoder with HiCI modules in every layer, and the log-probabilities of every HiCI
mode under the training and the inference forward, plus full attention with the HiCI weights unused and a
KV-cache decode after a HiCI prefill.

    /usr/bin/python3 tools/make_hici_model_fixtures.py

The decoder math comes from tools/make_model_fixtures.py (the models branch's independent HF reference);
the attention is replaced by tools/hici_reference.py. Per folder tests/fixtures/hici/model-<name>/:
    config.json, hici_config.json
    model.safetensors         base weights (bf16; the file is the truth, computed in fp32) + HiCI weights (fp32)
    expected_train.safetensors      input_ids [32]; lp.full, lp.<mode> [32, V] (training forward, ratio 1/4)
    expected_inference.safetensors  input_ids [30]; lp.<mode> [30, V] (inference forward: S = 7, padded to 35);
                                    decode.prefix_len, lp.decode [2, V] (prefill 24 with HiCI, then 2 decode steps)
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hici_reference as ref  # noqa: E402
import make_model_fixtures as mm  # noqa: E402
from make_hici_fixtures import randomise, write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(HERE), "tests", "fixtures", "hici")
HC = dict(num_local_slots=4, global_slots=2, num_heads=4, bottleneck_dim=32, shared_compress_dim=16)

MODELS = {
    "qwen3": {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_act": "silu",
        "vocab_size": 256, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "max_position_embeddings": 128,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "rope_scaling": None, "tie_word_embeddings": True,
        "attention_bias": False, "use_sliding_window": False, "sliding_window": None,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16",
    },
    "llama": mm.llama_config(rope_scaling={"type": "linear", "factor": 2.0}),
}


def hici_modules(cfg, gen):
    H = cfg["hidden_size"]
    lc = ref.LocalConstructorMulti(H, HC["num_local_slots"], HC["num_heads"], True, HC["bottleneck_dim"])
    gi = ref.GlobalIntegratorShared(H, HC["global_slots"], HC["bottleneck_dim"], HC["shared_compress_dim"], HC["num_heads"])
    randomise(lc, gen)
    randomise(gi, gen)
    return lc, gi


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


def forward(cfg, sd, mods, ids, mode, kind, ratio=0.25, cache=None, start=0):
    """Log-probs [T, V]. mode None = full attention. cache: dict layer -> (k, v) (filled at start 0,
    extended afterwards: then the new tokens attend over cached + new token K/V, no memory)."""
    eps = cfg["rms_norm_eps"]
    x = sd["model.embed_tokens.weight"][ids][None]
    t = ids.shape[0]
    pos = torch.arange(start, start + t)[None]
    if cfg.get("rope_scaling") and cfg["rope_scaling"].get("type") == "dynamic":
        raise NotImplementedError
    cos, sin = mm.rotary_cos_sin(cfg, pos, x.dtype)
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = p + "self_attn."
        r = x
        hn = mm.rms_norm(x, sd[p + "input_layernorm.weight"], eps)
        q, k, v = project(cfg, sd, a, hn, cos, sin)
        if cache is not None and start > 0:
            pk, pv = cache[i]
            k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
            cache[i] = (k, v)
            o = ref.decode_attention(q, k, v)
        else:
            if cache is not None:
                cache[i] = (k, v)
            if mode is None:
                o = ref.decode_attention(q, k, v)          # plain causal attention (Tn == Tk)
            else:
                lc, gi = mods[i]
                kfn = lambda m, a=a: mm.linear(m, sd, a + "k_proj")   # host k_proj, no RoPE, no k_norm
                vfn = lambda m, a=a: mm.linear(m, sd, a + "v_proj")
                f = ref.hici_training_forward if kind == "train" else ref.hici_inference_forward
                o = f(hn, None, q, k, v, kfn, vfn, lc, gi, mode, ratio=ratio)
        x = r + mm.linear(o, sd, a + "o_proj")
        r = x
        x = r + mm.mlp(sd, p + "mlp.", mm.rms_norm(x, sd[p + "post_attention_layernorm.weight"], eps))
    x = mm.rms_norm(x, sd["model.norm.weight"], eps)
    head = sd["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else sd["lm_head.weight"]
    return torch.log_softmax(F.linear(x, head)[0].float(), dim=-1)


def main():
    torch.set_num_threads(1)
    for n, (name, cfg) in enumerate(MODELS.items()):
        gen = torch.Generator().manual_seed(4321 + n)
        torch.manual_seed(4321 + n)
        sd = mm.random_state_dict(cfg, gen, torch.bfloat16)
        mods = [hici_modules(cfg, gen) for _ in range(cfg["num_hidden_layers"])]
        hsd = {}
        for i, (lc, gi) in enumerate(mods):
            for k, v in lc.state_dict().items():
                hsd[f"model.layers.{i}.self_attn.local_constructor.{k}"] = v
            for k, v in gi.state_dict().items():
                hsd[f"model.layers.{i}.self_attn.global_integrator.{k}"] = v
        folder = os.path.join(ROOT, "model-" + name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        with open(os.path.join(folder, "hici_config.json"), "w") as f:
            json.dump(HC, f, indent=2)
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
