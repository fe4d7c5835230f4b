#!/usr/bin/python3
"""PyTorch peer for `hici bench`: the same Qwen3-shaped random model, same shapes, same threads.

Prints one JSON object per line: first {"peer": label}, then the machine's matmul GFLOP/s as seen by this
torch build and {"dtype", "tokens", "prefill_tok_s", "decode_ms"} rows; with "train_length" in the arguments
(Hici.Bench --train) one training step instead: {"dtype", "train_tokens", "fwd_s", "bwd_s", "opt_s"} rows. Run by bench/Hici.Bench in the same
run as the C# side so the two are compared under the same load. Attention is
F.scaled_dot_product_attention (HF transformers' attn_implementation="sdpa") where torch has it (>= 2.0,
e.g. Debian 13's python3-torch 2.6), else eager math (Debian 12's 1.13). Needs libopenblas0-pthread.
"""
import json, math, sys, time
import torch
import torch.nn.functional as F

SDPA = hasattr(F, "scaled_dot_product_attention")

def rms(x, w, eps):
    dt = x.dtype
    x = x.float()
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return w * x.to(dt)

def rot_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)

class Model:
    def __init__(s, c, dtype):
        g = torch.Generator().manual_seed(0)
        r = lambda *sh: (torch.randn(*sh, generator=g) * 0.02).to(dtype)
        H, I, L = c["hidden"], c["mlp"], c["layers"]
        nq, nk, hd = c["heads"], c["kv_heads"], c["head_dim"]
        s.c, s.dtype = c, dtype
        s.emb = r(c["vocab"], H)
        s.lm_head = r(c["vocab"], H)
        s.layers = [dict(q=r(nq * hd, H), k=r(nk * hd, H), v=r(nk * hd, H), o=r(H, nq * hd),
                         qn=torch.ones(hd, dtype=dtype), kn=torch.ones(hd, dtype=dtype),
                         ln1=torch.ones(H, dtype=dtype), ln2=torch.ones(H, dtype=dtype),
                         g=r(I, H), u=r(I, H), d=r(H, I)) for _ in range(L)]
        s.norm = torch.ones(H, dtype=dtype)
        inv = 1.0 / (c["theta"] ** (torch.arange(0, hd, 2).float() / hd))
        t = torch.arange(c["max_len"]).float()
        f = torch.outer(t, inv)
        e = torch.cat((f, f), -1)
        s.cos, s.sin = e.cos().to(dtype), e.sin().to(dtype)

    def forward(s, ids, cache, start):
        c = s.c
        B, T = ids.shape
        nq, nk, hd = c["heads"], c["kv_heads"], c["head_dim"]
        x = F.embedding(ids, s.emb)
        cos, sin = s.cos[start:start + T], s.sin[start:start + T]
        for i, l in enumerate(s.layers):
            h = rms(x, l["ln1"], 1e-6)
            q = F.linear(h, l["q"]).view(B, T, nq, hd)
            k = F.linear(h, l["k"]).view(B, T, nk, hd)
            v = F.linear(h, l["v"]).view(B, T, nk, hd).transpose(1, 2)
            q = rms(q, l["qn"], 1e-6).transpose(1, 2)
            k = rms(k, l["kn"], 1e-6).transpose(1, 2)
            q = q * cos + rot_half(q) * sin
            k = k * cos + rot_half(k) * sin
            kc, vc = cache[i]
            kc[:, :, start:start + T] = k
            vc[:, :, start:start + T] = v
            K = kc[:, :, :start + T].repeat_interleave(nq // nk, dim=1)
            V = vc[:, :, :start + T].repeat_interleave(nq // nk, dim=1)
            S = start + T
            if SDPA:
                # HF's sdpa path: is_causal only for a prefill from position 0 (top-left = bottom-right there)
                a = F.scaled_dot_product_attention(q, K, V, is_causal=(T > 1 and start == 0))
            else:
                # torch 1.13 (Debian 12) has no scaled_dot_product_attention: eager math.
                w = (q @ K.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
                if T > 1:
                    w = w.masked_fill(~torch.ones(T, S, dtype=torch.bool).tril(S - T), float("-inf"))
                a = torch.softmax(w.float(), dim=-1).to(s.dtype) @ V
            x = x + F.linear(a.transpose(1, 2).reshape(B, T, nq * hd), l["o"])
            h = rms(x, l["ln2"], 1e-6)
            x = x + F.linear(F.silu(F.linear(h, l["g"])) * F.linear(h, l["u"]), l["d"])
        x = rms(x[:, -1:], s.norm, 1e-6)
        return F.linear(x, s.lm_head)

def lora_linear(h, W, A, B, scale):
    """PEFT's LoRA linear as HiCI.NET computes it: base in the model dtype, the LoRA path in A/B's dtype (fp32),
    added in fp32 and rounded to the output dtype once."""
    y = F.linear(h, W)
    d = F.linear(F.linear(h.to(A.dtype), A), B) * scale
    return y + d if y.dtype == d.dtype else (y.to(d.dtype) + d).to(y.dtype)

def train_forward(s, ids, lora, scale):
    """The training forward (no cache, causal from 0): LoRA on q/k/v/o, frozen base; hidden states after the final norm."""
    c = s.c
    B, T = ids.shape
    nq, nk, hd = c["heads"], c["kv_heads"], c["head_dim"]
    x = F.embedding(ids, s.emb)
    cos, sin = s.cos[:T], s.sin[:T]
    for l, lo in zip(s.layers, lora):
        h = rms(x, l["ln1"], 1e-6)
        q = lora_linear(h, l["q"], *lo["q"], scale).view(B, T, nq, hd)
        k = lora_linear(h, l["k"], *lo["k"], scale).view(B, T, nk, hd)
        v = lora_linear(h, l["v"], *lo["v"], scale).view(B, T, nk, hd).transpose(1, 2)
        q = rms(q, l["qn"], 1e-6).transpose(1, 2)
        k = rms(k, l["kn"], 1e-6).transpose(1, 2)
        q = q * cos + rot_half(q) * sin
        k = k * cos + rot_half(k) * sin
        K = k.repeat_interleave(nq // nk, dim=1)
        V = v.repeat_interleave(nq // nk, dim=1)
        if SDPA:
            a = F.scaled_dot_product_attention(q, K, V, is_causal=True)
        else:
            w = (q @ K.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
            w = w.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
            a = torch.softmax(w.float(), dim=-1).to(s.dtype) @ V
        x = x + lora_linear(a.transpose(1, 2).reshape(B, T, nq * hd), l["o"], *lo["o"], scale)
        h = rms(x, l["ln2"], 1e-6)
        x = x + F.linear(F.silu(F.linear(h, l["g"])) * F.linear(h, l["u"]), l["d"])
    return rms(x, s.norm, 1e-6)

def train(a):
    """One training step as HF Trainer + PEFT run it: LoRA r on q/k/v/o (A kaiming-uniform, B zeros, fp32 — bf16 runs
    keep fp32 trainables, as mixed precision does), frozen base, HF's loss (full logits, .float(), cross_entropy),
    backward, clip_grad_norm_(1.0), torch.optim.AdamW (its default implementation for CPU tensors), zero_grad."""
    c = a["config"]
    T, steps, r = a["train_length"], a["train_steps"], a["lora_r"]
    scale = a["lora_alpha"] / r
    for dt in a["dtypes"]:
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dt]
        c["max_len"] = T
        m = Model(c, dtype)
        g = torch.Generator().manual_seed(1)
        lora, params = [], []
        for l in m.layers:
            lo = {}
            for name in ("q", "k", "v", "o"):
                out_f, in_f = l[name].shape
                A = torch.empty(r, in_f)
                torch.nn.init.kaiming_uniform_(A, a=math.sqrt(5))
                B = torch.zeros(out_f, r)
                A.requires_grad_(True); B.requires_grad_(True)
                lo[name] = (A, B)
                params += [A, B]
            lora.append(lo)
        opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
        ids = torch.randint(0, c["vocab"], (1, T), generator=g)
        labels = ids[:, 1:].reshape(-1)
        fwd, bwd, upd = [], [], []
        for step in range(steps + 1):                 # step 0 warms up
            t0 = time.perf_counter()
            hidden = train_forward(m, ids, lora, scale)
            logits = F.linear(hidden, m.lm_head)
            loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, c["vocab"]), labels)
            loss_v = loss.item()
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            t3 = time.perf_counter()
            if step > 0:
                fwd.append(t1 - t0); bwd.append(t2 - t1); upd.append(t3 - t2)
            del hidden, logits, loss
        med = lambda v: sorted(v)[len(v) // 2]
        print(json.dumps({"dtype": dt, "train_tokens": T, "fwd_s": med(fwd), "bwd_s": med(bwd), "opt_s": med(upd), "loss": loss_v}), flush=True)

def new_cache(c, dtype, n):
    return [(torch.zeros(1, c["kv_heads"], n, c["head_dim"], dtype=dtype),
             torch.zeros(1, c["kv_heads"], n, c["head_dim"], dtype=dtype)) for _ in range(c["layers"])]

def matmul_gflops(dtype, n=1024):
    with torch.inference_mode():
        x = torch.randn(n, n).to(dtype); y = torch.randn(n, n).to(dtype)
        x @ y
        t0 = time.perf_counter(); reps = 0
        while time.perf_counter() - t0 < 0.5:
            x @ y; reps += 1
        return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9

def main():
    a = json.loads(sys.argv[1])
    torch.set_num_threads(a["threads"])
    c = a["config"]
    print(json.dumps({"peer": "PyTorch %s, %s" % (torch.__version__, "SDPA" if SDPA else "eager attention (no SDPA)")}), flush=True)
    if a.get("train_length"):
        for dt in a["dtypes"]:
            dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dt]
            print(json.dumps({"dtype": dt, "matmul_gflops": matmul_gflops(dtype)}), flush=True)
        train(a)
        return
    with torch.inference_mode():
        for dt in a["dtypes"]:
            dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dt]
            print(json.dumps({"dtype": dt, "matmul_gflops": matmul_gflops(dtype)}), flush=True)
            c["max_len"] = max(a["lengths"]) + a["decode_steps"] + 1
            m = Model(c, dtype)
            for T in a["lengths"]:
                ids = torch.randint(0, c["vocab"], (1, T))
                m.forward(ids[:, :48], new_cache(c, dtype, 64), 0)  # warm-up
                pre = float("inf")
                for _ in range(3):  # best of 3, as the C# side
                    cache = new_cache(c, dtype, T + a["decode_steps"] + 1)
                    t0 = time.perf_counter()
                    logits = m.forward(ids, cache, 0)
                    pre = min(pre, time.perf_counter() - t0)
                tok = logits.argmax(-1)
                steps = []
                for i in range(a["decode_steps"]):
                    t0 = time.perf_counter()
                    tok = m.forward(tok.view(1, 1), cache, T + i).argmax(-1)
                    steps.append(time.perf_counter() - t0)
                dec = sorted(steps)[len(steps) // 2] * 1000  # median step, as the C# side
                print(json.dumps({"dtype": dt, "tokens": T, "prefill_tok_s": T / pre, "decode_ms": dec}), flush=True)

if __name__ == "__main__":
    main()
