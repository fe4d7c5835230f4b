#!/usr/bin/python3
"""Writes the safetensors test fixtures under tests/fixtures/io/safetensors/.

An independent producer for HiCI.NET's safetensors reader tests: the format is written by hand here
(struct + json + torch's own tensor bytes, via tools/fixturelib.py's dtype table and tensor_bytes), following
the HF spec, without any HiCI.NET code.
Run with Debian's torch:  /usr/bin/python3 tools/make_io_fixtures.py
Output is deterministic; commit the files it writes.
"""
import json
import os
import shutil
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixturelib import ST_DTYPE as DT, tensor_bytes as raw  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "io", "safetensors")


def header_of(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors:
        b = raw(t)
        header[name] = {"dtype": DT[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    return header, b"".join(blobs)


def write_raw(path, header_bytes, data, pad=True):
    if pad:
        header_bytes += b" " * ((8 - len(header_bytes) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)) + header_bytes + data)


def write(path, tensors, metadata=None, pad=True, hf_order=True):
    if hf_order:  # largest element first, then name: keeps every tensor aligned, as the HF writer does
        tensors = sorted(tensors, key=lambda nt: (-nt[1].element_size(), nt[0]))
    header, data = header_of(tensors, metadata)
    write_raw(path, json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode(), data, pad)


def expected(tensors):
    return {n: {"dtype": DT[t.dtype], "shape": list(t.shape),
                "values": (t.float() if t.dtype in (torch.bfloat16, torch.float16) else t).reshape(-1).tolist()}
            for n, t in tensors}


def main():
    torch.manual_seed(1234)
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    exp = {}

    all_dtypes = [
        ("model.embed_tokens.weight", torch.randn(4, 5, dtype=torch.float32)),
        ("layers.0.bf16", (torch.randn(3, 4) * 100).to(torch.bfloat16)),
        ("layers.0.f16", (torch.randn(2, 3) * 10).to(torch.float16)),
        ("f64", torch.randn(2, 2, dtype=torch.float64)),
        ("i64", torch.tensor([-(2 ** 62), 2 ** 53 + 1, 0, 7], dtype=torch.int64)),
        ("i32", torch.tensor([[-(2 ** 31), 2 ** 31 - 1], [5, -6]], dtype=torch.int32)),
        ("i16", torch.tensor([-32768, 32767, 12], dtype=torch.int16)),
        ("i8", torch.tensor([-128, 127, -1], dtype=torch.int8)),
        ("u8", torch.tensor([0, 200, 255], dtype=torch.uint8)),
        ("bool", torch.tensor([True, False, True, True], dtype=torch.bool)),
        ("scalar", torch.tensor(3.5, dtype=torch.float32)),
        ("empty", torch.zeros(0, 4, dtype=torch.float32)),
        ("bf16.special", torch.tensor([1.0, -0.0, 1e30, -1e-30, 65504.0, 3.140625], dtype=torch.bfloat16)),
    ]
    write(os.path.join(ROOT, "all_dtypes.safetensors"), all_dtypes, {"format": "pt", "note": "caf\u00e9"})
    exp["all_dtypes.safetensors"] = expected(all_dtypes)

    # Insertion order and no header padding: data offsets fall off element alignment (stream read path).
    unaligned = [
        ("u8", torch.tensor([1, 2, 3], dtype=torch.uint8)),
        ("f32", torch.randn(2, 3)),
        ("bf16", torch.randn(5).to(torch.bfloat16)),
        ("i64", torch.tensor([123456789012, -5], dtype=torch.int64)),
    ]
    write(os.path.join(ROOT, "unaligned.safetensors"), unaligned, pad=False, hf_order=False)
    exp["unaligned.safetensors"] = expected(unaligned)

    # A sharded checkpoint the way transformers saves one.
    shard1 = [("model.layers.0.w", torch.randn(2, 4)), ("model.layers.0.b", torch.randn(3).to(torch.bfloat16))]
    shard2 = [("model.norm.weight", torch.randn(4).to(torch.float16)), ("lm_head.weight", torch.randn(2, 2))]
    sh = os.path.join(ROOT, "sharded")
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    weight_map, total = {}, 0
    for name, tensors in zip(names, [shard1, shard2]):
        write(os.path.join(sh, name), tensors, {"format": "pt"})
        for n, t in tensors:
            weight_map[n] = name
            total += t.numel() * t.element_size()
    with open(os.path.join(sh, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
    exp["sharded"] = expected(shard1 + shard2)

    # A folder without an index: every *.safetensors is read.
    write(os.path.join(ROOT, "multi", "a.safetensors"), shard1)
    write(os.path.join(ROOT, "multi", "b.safetensors"), shard2)
    exp["multi"] = expected(shard1 + shard2)

    with open(os.path.join(ROOT, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1, sort_keys=True)

    write_hostile(os.path.join(ROOT, "hostile"), shard1, shard2)


def write_hostile(d, shard1, shard2):
    """Each file is broken in one way; the C# tests assert the error names that problem."""
    os.makedirs(d)
    ok = [("a", torch.arange(4, dtype=torch.float32)), ("b", torch.arange(2, dtype=torch.int64))]
    header, data = header_of(ok)

    def hj(h):
        return json.dumps(h, separators=(",", ":")).encode()

    def put(name, b):
        with open(os.path.join(d, name), "wb") as f:
            f.write(b)

    write_raw(os.path.join(d, "truncated.safetensors"), hj(header), data[:-5])
    put("tiny.safetensors", b"\x01\x02\x03")
    put("header_too_big.safetensors", struct.pack("<Q", 200 * 1024 * 1024) + b"{}" + b" " * 30)
    put("header_past_eof.safetensors", struct.pack("<Q", 1000) + b'{"a":1}' + b" " * 50)
    write_raw(os.path.join(d, "bad_json.safetensors"), b'{"a":{"dtype":"F32",', data)
    write_raw(os.path.join(d, "not_object.safetensors"), b"[1,2,3]", data)
    write_raw(os.path.join(d, "bad_utf8.safetensors"), b'{"\xff\xfe":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}', b"")

    def variant(name, mutate, payload=data):
        h = json.loads(json.dumps(header))
        mutate(h)
        write_raw(os.path.join(d, name), hj(h), payload)

    variant("overlap.safetensors", lambda h: h["b"].update(data_offsets=[8, 24]))
    variant("shape_mismatch.safetensors", lambda h: h["a"].update(shape=[5]))
    variant("unknown_dtype.safetensors", lambda h: h["a"].update(dtype="Q4_K"))
    variant("negative_shape.safetensors", lambda h: h["a"].update(shape=[-4]))
    variant("shape_overflow.safetensors", lambda h: h["a"].update(shape=[2 ** 62, 2 ** 62]))
    variant("offsets_reversed.safetensors", lambda h: h["b"].update(data_offsets=[32, 16]))
    variant("offsets_past_end.safetensors", lambda h: h["b"].update(data_offsets=[16, 48], shape=[4]))
    variant("metadata_not_string.safetensors", lambda h: h.update(__metadata__={"step": 5}))
    variant("float_offsets.safetensors", lambda h: h["a"].update(data_offsets=[0, 16.5]))
    # JSON objects may repeat a name; safetensors must not.
    entry = hj(header["a"])
    write_raw(os.path.join(d, "duplicate_name.safetensors"), b'{"a":' + entry + b',"a":' + entry + b"}", data)

    def index_folder(name, weight_map, shards):
        f = os.path.join(d, name)
        for shard_name, tensors in shards:
            write(os.path.join(f, shard_name), tensors)
        with open(os.path.join(f, "model.safetensors.index.json"), "w") as fh:
            json.dump({"metadata": {}, "weight_map": weight_map}, fh)

    s1 = "model-00001-of-00001.safetensors"
    index_folder("index_missing_shard", {"model.layers.0.w": s1, "model.layers.0.b": "model-00009-of-00009.safetensors"},
                 [(s1, shard1)])
    index_folder("index_traversal", {"model.layers.0.w": "../all_dtypes.safetensors"}, [(s1, shard1)])
    index_folder("index_wrong_key", {"model.layers.0.w": s1, "lm_head.weight": s1}, [(s1, shard1)])
    os.makedirs(os.path.join(d, "index_bad_json"))
    with open(os.path.join(d, "index_bad_json", "model.safetensors.index.json"), "w") as fh:
        fh.write('{"weight_map": {"a": ')
    # Two files in an index-less folder both holding 'model.layers.0.w'.
    write(os.path.join(d, "duplicate_across_files", "a.safetensors"), shard1)
    write(os.path.join(d, "duplicate_across_files", "b.safetensors"), shard1[:1])


if __name__ == "__main__":
    main()
