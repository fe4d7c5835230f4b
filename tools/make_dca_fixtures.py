#!/usr/bin/python3
"""Golden fixtures for dual chunk attention (`--attention chunk`), written under tests/fixtures/dca/.

Run with Debian's torch (transformers and flash-attn are not needed):
    /usr/bin/python3 tools/make_dca_fixtures.py

The expected values come from tools/dca_reference.py, a plain-torch re-implementation of the reference's
ChunkLlama/chunkllama_attn_replace.py and ChunkLlama/chunkqwen3_attn_replace.py (see its docstring), and
the model loop of tools/fixturelib.py (HF LlamaForCausalLM / Qwen3ForCausalLM math) with the attention
swapped for DCA, as replace_with_chunkllama / replace_with_chunkqwen3 swap LlamaAttention.forward.

attention.safetensors   q [1,4,37,8], k/v [1,2,37,8] (unrotated) and one output [1,4,T,8] per case:
  <case>            prefill of all 37 positions
  <case>.decode     prefill of the first 25 through the layer's cache, then 12 one-token decode steps
                    (outputs of the 12 steps); the sticky mscale grows with every step
  cases: llama (L 16, f 2, max_pos 16: mscale on, bf16 merge weights), llama_fp32_merge (merge
  weights not rounded to bf16), llama_lw3 (local window 3), qwen3 (L 16, theta 1e6), and <case>_bf16 (inputs in bf16).
model-<name>.safetensors   for tests/fixtures/models/<name>:
  input_ids I64 [T], logprobs_fp32 F32 [T, V] of the prefill, decode_logprobs_fp32 F32 [T-P, V]: prompt
  ids[:P] through the cache, then ids[P..T-2] one token at a time (rows for positions P-1..T-2); settings in
  the metadata (pretraining_length, prompt_length, ...).
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dca_reference as dca  # noqa: E402
import fixturelib as fl  # noqa: E402

OUT = os.path.join(fl.REPO, "tests", "fixtures", "dca")
MODELS = os.path.join(fl.REPO, "tests", "fixtures", "models")

CASES = {
    "llama": dict(variant="llama", pretraining_length=16, scaling_factor=2.0, max_position_embeddings=16),
    "llama_fp32_merge": dict(variant="llama", pretraining_length=16, scaling_factor=2.0, max_position_embeddings=16,
                             round_weights=False),
    "llama_lw3": dict(variant="llama", pretraining_length=16, local_window=3, scaling_factor=2.0,
                      max_position_embeddings=16),
    "qwen3": dict(variant="qwen3", pretraining_length=16, base=1e6, max_position_embeddings=16),
}


def attention_fixture():
    gen = torch.Generator().manual_seed(4321)
    T, P = 37, 25
    q = torch.randn(1, 4, T, 8, generator=gen)
    k = torch.randn(1, 2, T, 8, generator=gen)
    v = torch.randn(1, 2, T, 8, generator=gen)
    out = {"q": q, "k": k, "v": v}
    for name, kw in CASES.items():
        s = dca.Settings(head_dim=8, **kw)
        for suffix, dt in (("", torch.float32), ("_bf16", torch.bfloat16)):
            qq, kk, vv = q.to(dt), k.to(dt), v.to(dt)
            out[name + suffix] = dca.DcaLayer(s)(qq, kk, vv)
            layer = dca.DcaLayer(s)
            layer(qq[:, :, :P], kk[:, :, :P], vv[:, :, :P], use_cache=True)
            steps = [layer(qq[:, :, i:i + 1], kk[:, :, i:i + 1], vv[:, :, i:i + 1], use_cache=True) for i in range(P, T)]
            out[name + suffix + ".decode"] = torch.cat(steps, dim=2)
        if name == "qwen3":   # the chunk loop + merge equals one softmax per query over the union of key sets
            u = dca.union_softmax(q, k, v, s)
            assert (u - out["qwen3"]).abs().max() < 1e-5, (u - out["qwen3"]).abs().max()
        print(f"{name:12s} chunk_len {s.chunk_len}  max|prefill - decode| over the decoded rows "
              f"{(out[name][:, :, P:] - out[name + '.decode']).abs().max():.2e}")
    fl.write_safetensors(os.path.join(OUT, "attention.safetensors"), out,
                         {"source": "tools/make_dca_fixtures.py", "torch": torch.__version__}, sort=True, log=True)


def dca_logits(cfg, sd, ids, layers, use_cache=False, start=0):
    """fixturelib's decoder loop with each layer's attention replaced by DCA (layers: one DcaLayer per layer).
    ids [T] -> logits [T, V]."""
    eps = cfg["rms_norm_eps"]
    d = fl.head_dim_of(cfg)
    x = sd["model.embed_tokens.weight"][ids[None]]
    b, t, _ = x.shape
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = p + "self_attn."
        hn = fl.rms_norm(x, sd[p + "input_layernorm.weight"], eps)
        q = fl.linear(hn, sd, a + "q_proj").view(b, t, -1, d)
        k = fl.linear(hn, sd, a + "k_proj").view(b, t, -1, d)
        v = fl.linear(hn, sd, a + "v_proj").view(b, t, -1, d).transpose(1, 2)
        if cfg["model_type"] == "qwen3":
            q = fl.rms_norm(q, sd[a + "q_norm.weight"], cfg["rms_norm_eps"])
            k = fl.rms_norm(k, sd[a + "k_norm.weight"], cfg["rms_norm_eps"])
        o = layers[i](q.transpose(1, 2), k.transpose(1, 2), v, use_cache=use_cache)
        x = x + fl.linear(o.transpose(1, 2).reshape(b, t, -1), sd, a + "o_proj")
        x = x + fl.mlp(sd, p + "mlp.", fl.rms_norm(x, sd[p + "post_attention_layernorm.weight"], eps))
    x = fl.rms_norm(x, sd["model.norm.weight"], eps)
    head = sd["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else sd["lm_head.weight"]
    return torch.nn.functional.linear(x, head)[0]


def settings_for(cfg, L):
    variant = "qwen3" if cfg["model_type"] == "qwen3" else "llama"
    rs = cfg.get("rope_scaling")
    # chunkllama_attn_replace.py: scaling_factor = rope_scaling.get('factor', 1.0) for any rope_scaling dict
    f = rs.get("factor", 1.0) if isinstance(rs, dict) else 1.0
    return dca.Settings(variant, L, head_dim=fl.head_dim_of(cfg), base=cfg["rope_theta"], scaling_factor=f,
                        max_position_embeddings=cfg["max_position_embeddings"])


def model_fixture(name, L, T, P, seed):
    folder = os.path.join(MODELS, name)
    cfg = fl.read_json(os.path.join(folder, "config.json"))
    sd = {}
    for f in sorted(os.listdir(folder)):
        if f.startswith("model") and f.endswith(".safetensors"):
            sd.update(fl.read_safetensors(os.path.join(folder, f)))
    sd = {k: t.float() for k, t in sd.items()}
    ids = torch.randint(0, cfg["vocab_size"], (T,), generator=torch.Generator().manual_seed(seed))
    s = settings_for(cfg, L)
    n = cfg["num_hidden_layers"]
    with torch.no_grad():
        lp = torch.log_softmax(dca_logits(cfg, sd, ids, [dca.DcaLayer(s) for _ in range(n)]), dim=-1)
        layers = [dca.DcaLayer(s) for _ in range(n)]
        rows = [torch.log_softmax(dca_logits(cfg, sd, ids[:P], layers, use_cache=True), dim=-1)[-1:]]
        for i in range(P, T - 1):
            rows.append(torch.log_softmax(dca_logits(cfg, sd, ids[i:i + 1], layers, use_cache=True), dim=-1))
        dec = torch.cat(rows, dim=0)          # log-probs after positions P-1 .. T-2
        plain = torch.log_softmax(fl.forward(cfg, sd, ids, torch.float32), dim=-1)
    meta = {"source": "tools/make_dca_fixtures.py", "torch": torch.__version__, "model": name,
            "pretraining_length": L, "chunk_size": s.chunk_size, "local_window": s.local_window,
            "chunk_len": s.chunk_len, "scaling_factor": s.f, "prompt_length": P}
    fl.write_safetensors(os.path.join(OUT, f"model-{name}.safetensors"),
                         {"input_ids": ids, "logprobs_fp32": lp, "decode_logprobs_fp32": dec}, meta, sort=True, log=True)
    print(f"  {name}: chunk_len {s.chunk_len}, f {s.f}, max|DCA - full| log-prob {(lp - plain).abs().max():.3f}, "
          f"max|prefill - decode| {(lp[P - 1:T - 1] - dec).abs().max():.2e}")


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    attention_fixture()
    model_fixture("llama-mha-linear", L=24, T=90, P=70, seed=11)
    model_fixture("llama3-gqa-tied", L=24, T=90, P=70, seed=12)
    model_fixture("qwen3-gqa", L=24, T=90, P=70, seed=13)


if __name__ == "__main__":
    main()
