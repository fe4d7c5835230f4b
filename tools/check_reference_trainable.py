#!/usr/bin/python3
"""Checks that a trainable_params.bin written by HiCI.NET (TrainableParams.Save) is what the reference reads:
torch.load(weights_only=True) succeeds, the value is a dict of fp32 tensors, and its keys and values equal
those of a reference file (legacy HiCI prefixes in the reference file are read as the current names).

    /usr/bin/python3 tools/check_reference_trainable.py WRITTEN.bin REFERENCE.bin
"""
import sys

import torch


def current(k):
    return k.replace(".global_memory.", ".local_constructor.").replace(".hierarchical_aggregator.", ".global_integrator.")


def main():
    written = torch.load(sys.argv[1], weights_only=True)
    want = {current(k): v for k, v in torch.load(sys.argv[2], weights_only=True).items()}
    assert isinstance(written, dict), type(written)
    assert sorted(written) == sorted(want), (sorted(set(written) ^ set(want)))
    for k, v in written.items():
        assert v.dtype == torch.float32, (k, v.dtype)
        assert v.shape == want[k].shape, (k, v.shape, want[k].shape)
        assert torch.equal(v, want[k].float()), k
    print(f"ok: {len(written)} tensors")


if __name__ == "__main__":
    main()
