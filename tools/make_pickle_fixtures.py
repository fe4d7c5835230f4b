#!/usr/bin/python3
"""Writes the PyTorch zip-pickle test fixtures under tests/fixtures/io/pickle/.

Real torch.save output (the independent producer for TorchPickleWeightSource) plus hostile files: malicious
globals via __reduce__, and hand-assembled pickles/zips that break one rule each.
Run with Debian's torch:  /usr/bin/python3 tools/make_pickle_fixtures.py   (commit what it writes)
"""
import collections
import json
import os
import shutil
import struct
import sys
import zipfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixturelib import ST_DTYPE as DT  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "io", "pickle")


def expected(sd):
    out = {}
    for k, t in sd.items():
        requires_grad = isinstance(t, torch.nn.Parameter) and t.requires_grad
        t = t.detach()
        vals = (t.float() if t.dtype in (torch.bfloat16, torch.float16) else t).reshape(-1).tolist()
        out[k] = {"dtype": DT[t.dtype], "shape": list(t.shape), "values": vals,
                  "requires_grad": requires_grad}
    return out


def main():
    torch.manual_seed(4321)
    # written_by_hici/ belongs to the C# writer test (see tools/check_pickle_writer.py): leave it alone.
    shutil.rmtree(os.path.join(ROOT, "hostile"), ignore_errors=True)
    os.makedirs(ROOT, exist_ok=True)
    exp = {}

    # An OrderedDict state_dict (carries '_metadata' as BUILD state) plus views sharing one storage.
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    sd = model.state_dict()
    base = torch.arange(24, dtype=torch.float32) * 0.5
    sd["views.base"] = base
    sd["views.transposed"] = base[2:14].view(3, 4).t()      # offset 2, strides (1, 4)
    sd["views.slice"] = base[5:9]                            # offset 5
    sd["views.expanded"] = base[7:8].expand(3)               # stride 0
    sd["views.step"] = base[1::5]                            # stride 5
    bf = (torch.randn(6) * 30).to(torch.bfloat16)
    sd["bf16.base"] = bf
    sd["bf16.view"] = bf[1:5].view(2, 2)
    torch.save(sd, os.path.join(ROOT, "state_dict.bin"))
    exp["state_dict.bin"] = expected(sd)

    # HiCI-style trainable_params.bin: a plain dict of Parameters (→ torch._utils._rebuild_parameter), with the
    # legacy 'hierarchical_aggregator' module name.
    params = {
        "base_model.model.model.embed_tokens.weight": torch.nn.Parameter(torch.randn(8, 4)),
        "base_model.model.model.norm.weight": torch.nn.Parameter(torch.ones(4).to(torch.bfloat16)),
        "base_model.model.model.layers.0.self_attn.hierarchical_aggregator.weight": torch.nn.Parameter(torch.randn(2, 4)),
        "base_model.model.model.layers.0.self_attn.hierarchical_aggregator.bias": torch.nn.Parameter(torch.zeros(2), requires_grad=False),
    }
    torch.save(params, os.path.join(ROOT, "trainable_params.bin"))
    exp["trainable_params.bin"] = expected(params)

    # PEFT adapter_model.bin: plain dict, bf16 LoRA matrices.
    adapter = {}
    for proj in ("q_proj", "v_proj"):
        p = f"base_model.model.model.layers.0.self_attn.{proj}"
        adapter[p + ".lora_A.weight"] = (torch.randn(2, 8) * 0.1).to(torch.bfloat16)
        adapter[p + ".lora_B.weight"] = torch.zeros(8, 2, dtype=torch.bfloat16)
    torch.save(adapter, os.path.join(ROOT, "adapter_model.bin"))
    exp["adapter_model.bin"] = expected(adapter)

    # Every storage type, a scalar and an empty tensor.
    every = {
        "f32": torch.randn(2, 3), "f64": torch.randn(3, dtype=torch.float64),
        "f16": (torch.randn(4) * 10).to(torch.float16), "bf16": (torch.randn(4) * 10).to(torch.bfloat16),
        "i64": torch.tensor([-(2 ** 62), 2 ** 53 + 1, 7]), "i32": torch.tensor([-(2 ** 31), 5], dtype=torch.int32),
        "i16": torch.tensor([-32768, 32767], dtype=torch.int16), "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8), "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3),
    }
    torch.save(every, os.path.join(ROOT, "all_dtypes.bin"))
    exp["all_dtypes.bin"] = expected(every)

    # Protocol 4 exercises FRAME, MEMOIZE, SHORT_BINUNICODE and STACK_GLOBAL on the happy path.
    p4 = collections.OrderedDict(a=torch.randn(3, 2).t(), b=torch.arange(5, dtype=torch.int64))
    torch.save(p4, os.path.join(ROOT, "protocol4.bin"), pickle_protocol=4)
    exp["protocol4.bin"] = expected(p4)

    with open(os.path.join(ROOT, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1, sort_keys=True)
    write_hostile(os.path.join(ROOT, "hostile"))


class Evil:
    """Runs a shell command when unpickled by an unsafe loader; our reader must refuse it by name."""

    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


# A tiny pickle assembler for hand-made hostile files (protocol 2 opcodes).
def S(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def I(v):
    return b"J" + struct.pack("<i", v)


def G(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def T(*items):
    return b"(" + b"".join(items) + b"t"


def tensor(key, numel, offset, size, stride, storage="FloatStorage", hooks=b")R"):
    pid = T(S("storage"), G("torch", storage), S(key), S("cpu"), I(numel)) + b"Q"
    return (G("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + I(offset) + T(*map(I, size)) + T(*map(I, stride))
            + b"\x89" + G("collections", "OrderedDict") + hooks + b"tR")


def state(*pairs):
    return b"\x80\x02}(" + b"".join(S(k) + v for k, v in pairs) + b"u."


def zipit(path, pkl, data=None, prefix="archive", compress=zipfile.ZIP_STORED, extra=()):
    def put(z, name, v, how=zipfile.ZIP_STORED):
        info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))  # fixed: reruns give identical files
        info.compress_type = how
        z.writestr(info, v)

    with zipfile.ZipFile(path, "w") as z:
        put(z, f"{prefix}/data.pkl", pkl)
        for k, v in (data or {}).items():
            put(z, f"{prefix}/data/{k}", v, compress)
        for name, v in extra:
            put(z, name, v)
        put(z, f"{prefix}/version", "3\n")


def write_many_views_bomb(d, f4):
    """Each view is within the per-view cap (2^24 elements), but 800 of them over one 16-byte storage are 50 GiB."""
    views = [(f"v{i}", tensor("0", 4, 0, [4096, 4096], [0, 0])) for i in range(800)]
    zipit(os.path.join(d, "many_views_bomb.bin"), state(*views), {"0": f4})


def write_hostile(d):
    os.makedirs(d)
    f4 = struct.pack("<4f", 1, 2, 3, 4)
    ok = tensor("0", 4, 0, [4], [1])
    torch.save({"w": torch.ones(2), "evil": Evil(os.system, "echo pwned")}, os.path.join(d, "evil_os_system.bin"))
    torch.save({"evil": Evil(eval, "1+1")}, os.path.join(d, "evil_builtins_eval.bin"), pickle_protocol=4)
    # The legacy format keys storages by id(): this one file differs on every run.
    torch.save({"w": torch.ones(2)}, os.path.join(d, "legacy_format.bin"), _use_new_zipfile_serialization=False)
    with open(os.path.join(d, "not_zip.bin"), "wb") as f:
        f.write(b"this is not a zip file at all")

    zipit(os.path.join(d, "good_handmade.bin"), state(("a", ok)), {"0": f4}, prefix="odd-top.folder")
    zipit(os.path.join(d, "storage_size_mismatch.bin"), state(("a", tensor("0", 10, 0, [10], [1]))), {"0": f4})
    zipit(os.path.join(d, "extent_past_storage.bin"), state(("a", tensor("0", 4, 2, [2, 2], [1, 2]))), {"0": f4})
    zipit(os.path.join(d, "expand_bomb.bin"), state(("a", tensor("0", 4, 0, [1 << 20, 1 << 20], [0, 0]))), {"0": f4})
    write_many_views_bomb(d, f4)
    zipit(os.path.join(d, "negative_stride.bin"), state(("a", tensor("0", 4, 3, [4], [-1]))), {"0": f4})
    zipit(os.path.join(d, "missing_entry.bin"), state(("a", ok)), {})
    zipit(os.path.join(d, "compressed_entry.bin"), state(("a", tensor("0", 64, 0, [64], [1]))),
          {"0": b"\0" * 256}, compress=zipfile.ZIP_DEFLATED)
    zipit(os.path.join(d, "unknown_opcode.bin"), b"\x80\x02}(" + S("a") + b"i__main__\nX\n" + b"u.", {"0": f4})
    zipit(os.path.join(d, "truncated_pickle.bin"), state(("a", ok))[:-12], {"0": f4})
    zipit(os.path.join(d, "bad_memo.bin"), b"\x80\x02}(" + S("a") + b"h\x05u.", {"0": f4})
    zipit(os.path.join(d, "deep_marks.bin"), b"\x80\x02" + b"(" * 5000 + b".", {})
    zipit(os.path.join(d, "not_dict.bin"), b"\x80\x02](" + ok + b"e.", {"0": f4})
    zipit(os.path.join(d, "non_tensor_value.bin"), state(("a", ok), ("step", I(5))), {"0": f4})
    zipit(os.path.join(d, "hooks_not_empty.bin"),
          state(("a", tensor("0", 4, 0, [4], [1], hooks=b")R(" + S("h") + I(1) + b"u"))), {"0": f4})
    zipit(os.path.join(d, "call_storage_class.bin"), b"\x80\x02}(" + S("a") + G("torch", "FloatStorage") + b")Ru.", {})
    zipit(os.path.join(d, "untyped_storage.bin"), state(("a", tensor("0", 16, 0, [16], [1], storage="UntypedStorage"))),
          {"0": b"\0" * 16})
    zipit(os.path.join(d, "two_pickles.bin"), state(("a", ok)), {"0": f4}, extra=[("other/data.pkl", state())])
    zipit(os.path.join(d, "big_endian.bin"), state(("a", ok)), {"0": f4}, extra=[("archive/byteorder", "big")])


if __name__ == "__main__":
    main()
