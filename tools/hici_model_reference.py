"""Batched tiny-decoder reference with HiCI and a padding mask, for the hici2 fixtures (padding, reference
folder, trainable_params overlay). Independent of the C# code: the decoder math is tools/fixturelib.py's
(the models branch's HF reference), the attention tools/hici_reference.py, and this file adds

  * a [B, T] padding mask (1 = real token) for full attention (padded keys masked, HF eager semantics)
    and for HiCI (passed to the reference forwards as their per-segment KV layout and masks).

(Reading safetensors and building the reference HiCI modules from a state dict: tools/fixturelib.py.)
Used by tools/make_hici_padding_fixtures.py and tools/make_hici_reference_folder.py. Needs only torch.
"""
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixturelib as fl  # noqa: E402


def masked_full_attention(q, k, v, mask):
    """q [B,nq,T,d], k,v [B,nkv,T,d], mask [B,T] bool: causal, padded keys never attended. [B,T,nq*d]."""
    B, nq, T, d = q.shape
    rep = nq // k.shape[1]
    k = fl.repeat_kv(k, rep)
    v = fl.repeat_kv(v, rep)
    logits = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(d)
    allowed = torch.ones(T, T, dtype=torch.bool).tril()[None, None] & mask[:, None, None, :]
    logits = logits.masked_fill(~allowed, float("-inf"))
    o = torch.matmul(torch.softmax(logits, dim=-1), v)
    return o.transpose(1, 2).reshape(B, T, nq * d)


def forward(cfg, sd, mods, ids, mask=None, mode=None, kind="train", ratio=0.25, segment_size=None):
    """Log-probs [B, T, V] (fp32). ids [B, T]; mask [B, T] (1 = real token) or None; mode None = full
    attention, else a HiCI causal mode with the training ("train") or inference forward. sd: fp32 weights."""
    B, T = ids.shape
    mask = torch.ones(B, T, dtype=torch.bool) if mask is None else mask.bool()

    def attend(i, a, hn, q, k, v):
        if mode is None:
            return masked_full_attention(q, k, v, mask)
        lc, gi = mods[i]
        return fl.hici_attention(sd, a, hn, mask, q, k, v, lc, gi, mode, kind, ratio=ratio, segment_size=segment_size)

    return torch.log_softmax(fl.decoder_logits(cfg, sd, ids, attend).float(), dim=-1)
