#!/usr/bin/python3
"""Golden fixtures for the model tests: tiny random Llama / Llama-3 / Qwen3 checkpoints in HF layout and
the log-probabilities HF transformers would compute for them.

Run with Debian's torch (transformers is not needed and not used):
    /usr/bin/python3 tools/make_model_fixtures.py

The forward pass (fixturelib.forward, in tools/fixturelib.py) is written from HF transformers'
LlamaForCausalLM / Qwen3ForCausalLM (eager attention, modeling_rope_utils for the RoPE variants) in plain
torch. It is the independent reference the C# model is tested against, so it must never be derived from
the C# code.

Per fixture folder (tests/fixtures/models/<name>/):
    config.json                    HF config
    model.safetensors              weights (or model-0000k-of-0000n.safetensors + model.safetensors.index.json)
    expected.safetensors           input_ids  I64 [T]
                                   logprobs_fp32  F32 [T, V]  log_softmax of the float32 forward
                                   logits_bf16    BF16 [T, V] logits of the bfloat16 forward (torch CPU),
                                                  as HF returns them (lm_head output in bf16)
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixturelib import forward, llama_config, qwen3_config, random_state_dict, write_json, write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "models")
SEQ_LEN = 40

FIXTURES = {
    # Llama-2 style: MHA, untied lm_head, linear RoPE scaling, q/k/v biases.
    "llama-mha-linear": (llama_config(
        rope_scaling={"type": "linear", "factor": 2.0}, attention_bias=True), torch.bfloat16, 1),
    # Llama-3 style: GQA 4/2, tied embeddings, llama3 RoPE (high, medium and low frequency bands all
    # occur for head_dim 16 with these numbers), explicit head_dim, sharded checkpoint.
    "llama3-gqa-tied": (llama_config(
        num_key_value_heads=2, tie_word_embeddings=True, rope_theta=500000.0, head_dim=16,
        max_position_embeddings=256, eos_token_id=[2, 3],
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 64}), torch.bfloat16, 2),
    # Qwen3: head_dim 32 with hidden 64 (heads × head_dim ≠ hidden), q_norm/k_norm, GQA 4/2, tied.
    "qwen3-gqa": (qwen3_config(), torch.bfloat16, 1),
    # Dynamic NTK: the 40-token input is longer than max_position_embeddings (32), so the RoPE base is
    # recomputed for seq_len 40. Stored in float32 to exercise that path of the reader too.
    "llama-dynamic": (llama_config(
        hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=32, rope_scaling={"type": "dynamic", "factor": 2.0}, torch_dtype="float32"),
        torch.float32, 1),
}


def save_checkpoint(folder, sd, shards):
    keys = list(sd.keys())
    if shards == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), sd, {"format": "pt"})
        return
    per = math.ceil(len(keys) / shards)
    weight_map, total = {}, 0
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: sd[k] for k in keys[s * per:(s + 1) * per]}
        write_safetensors(os.path.join(folder, name), part, {"format": "pt"})
        for k, t in part.items():
            weight_map[k] = name
            total += t.numel() * t.element_size()
    write_json(os.path.join(folder, "model.safetensors.index.json"),
               {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)


def main():
    torch.set_num_threads(1)  # deterministic reductions
    for i, (name, (cfg, store_dtype, shards)) in enumerate(FIXTURES.items()):
        gen = torch.Generator().manual_seed(1234 + i)
        sd = random_state_dict(cfg, gen, store_dtype)
        ids = torch.randint(0, cfg["vocab_size"], (SEQ_LEN,), generator=gen)
        folder = os.path.join(ROOT, name)
        os.makedirs(folder, exist_ok=True)
        for f in os.listdir(folder):
            os.remove(os.path.join(folder, f))
        write_json(os.path.join(folder, "config.json"), cfg, indent=2)
        save_checkpoint(folder, sd, shards)
        with torch.no_grad():
            lp32 = torch.log_softmax(forward(cfg, sd, ids, torch.float32).float(), dim=-1)
            logits16 = forward(cfg, sd, ids, torch.bfloat16)
        lp16 = torch.log_softmax(logits16.float(), dim=-1)
        write_safetensors(os.path.join(folder, "expected.safetensors"),
                          {"input_ids": ids, "logprobs_fp32": lp32, "logits_bf16": logits16},
                          {"source": "tools/make_model_fixtures.py", "torch": torch.__version__})
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        print(f"{name:18s} {size / 1024:6.1f} KB  logprob range [{lp32.min():.2f}, {lp32.max():.2f}]  "
              f"max|fp32-bf16| logprob {(lp32 - lp16).abs().max():.4f}  max|logit| {logits16.float().abs().max():.2f}")


if __name__ == "__main__":
    main()
