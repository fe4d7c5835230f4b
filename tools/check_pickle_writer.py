#!/usr/bin/python3
"""Checks that real PyTorch loads a file written by HiCI.NET's TorchPickleWriter.

    /usr/bin/python3 tools/check_pickle_writer.py [file.bin]

Default file: tests/fixtures/io/pickle/written_by_hici/all_dtypes.bin, which the C# test
TorchPickleWriterTests.CommittedWriterOutputIsCurrent keeps identical to what the writer produces today
(refresh it with HICI_UPDATE_FIXTURES=1 dotnet test ..., then re-run this script). The C# test
TorchLoadAcceptsWriterOutput also runs this script on a fresh file whenever /usr/bin/python3 has torch.
Checks: torch.load(weights_only=True) succeeds, only allow-listed globals appear in data.pkl, and every tensor
equals the python-side expectation for all_dtypes.bin in tests/fixtures/io/pickle/expected.json.
"""
import json
import os
import pickletools
import sys
import zipfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "tests", "fixtures", "io", "pickle")
ALLOWED = {"collections OrderedDict", "torch._utils _rebuild_tensor_v2"} | {
    f"torch {n}Storage" for n in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool")}
DT = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64, "I64": torch.int64,
      "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(FIX, "written_by_hici", "all_dtypes.bin")
    with zipfile.ZipFile(path) as z:
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl")]
        assert len(pkl) == 1, pkl
        for op, arg, _ in pickletools.genops(z.read(pkl[0])):
            if op.name == "GLOBAL":
                assert arg in ALLOWED, f"unexpected global {arg}"
    sd = torch.load(path, weights_only=True)
    exp = json.load(open(os.path.join(FIX, "expected.json")))["all_dtypes.bin"]
    assert list(sd.keys()) == list(exp.keys()) or sorted(sd.keys()) == sorted(exp.keys()), (list(sd), list(exp))
    for k, e in exp.items():
        t = sd[k]
        assert t.dtype == DT[e["dtype"]], (k, t.dtype, e["dtype"])
        assert list(t.shape) == e["shape"], (k, t.shape, e["shape"])
        want = torch.tensor(e["values"], dtype=torch.float64 if t.is_floating_point() else None)
        got = (t.double() if t.is_floating_point() else t).reshape(-1)
        assert torch.equal(got, want.to(got.dtype)), (k, got, want)
    print(f"ok: torch {torch.__version__} loaded {len(sd)} tensors from {path} with weights_only=True")


if __name__ == "__main__":
    main()
