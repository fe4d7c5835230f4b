#!/usr/bin/python3
"""The reference passkey prompt generator, run with NumPy itself (Debian's python3-numpy).

Written from LongLoRA's passkey_retrieval.py → generate_prompt_landmark (the HiCI repository ships it
unchanged): NumPy's global RandomState seeded with the trial index, n_prefix = randint(0, n_garbage),
pass_key = randint(1, 50000), five parts joined by "\n". Nothing here is derived from the C# code.

  /usr/bin/python3 tools/passkey_reference.py --max-tokens 4096 --interval 1024 --num-tests 3 > prompts.jsonl
      one {"target","seed","pass_key","prompt"} per trial, the layout `hici eval passkey --prompts-only` writes
  /usr/bin/python3 tools/passkey_reference.py --fixture
      rewrites tests/fixtures/passkey/numpy_reference.json (committed; the tests read it when numpy is absent)
"""
import argparse
import hashlib
import json
import os

from numpy import random

TASK = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
        "I will quiz you about the important information there.")
GARBAGE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
GARBAGE_INF = " ".join([GARBAGE] * 50000)
QUESTION = "What is the pass key? The pass key is"


def generate_prompt_landmark(n_garbage, seed):
    rnd_state = random.get_state()
    random.seed(seed)
    n_prefix = random.randint(0, n_garbage)
    n_suffix = n_garbage - n_prefix
    assert len(GARBAGE_INF) >= n_garbage
    pass_key = random.randint(1, 50000)
    info = f"The pass key is {pass_key}. Remember it. {pass_key} is the pass key."
    lines = [TASK, GARBAGE_INF[:n_prefix], info, GARBAGE_INF[:n_suffix], QUESTION]
    random.set_state(rnd_state)
    return "\n".join(lines), pass_key, n_prefix


def n_garbage_for(target):
    return int(3.75 * target // 1024 * 1024)


def trials(max_tokens, interval, num_tests):
    for i in range(max_tokens // interval):
        target = (i + 1) * interval
        for seed in range(num_tests):
            prompt, key, n_prefix = generate_prompt_landmark(n_garbage_for(target), seed)
            yield target, seed, key, n_prefix, prompt


def fixture():
    out = {"generator": "tools/passkey_reference.py (numpy " + __import__("numpy").__version__ + ")"}
    # raw MT19937 words and bounded draws, including ranges that need several rejections and a 64-bit range
    raw = {}
    for seed in (0, 1, 42, 4294967295):
        rs = random.RandomState(seed)
        raw[str(seed)] = [int(rs.randint(0, 2**32, dtype="uint32")) for _ in range(8)]   # full range: one raw word each
    out["raw_uint32"] = raw
    bounded = []
    for seed, lo, hi in [(0, 0, 3072), (0, 1, 50000), (7, 0, 5), (7, 0, 2**31 + 1), (3, 10, 11), (5, 0, 2**40 + 3), (9, -100, 100)]:
        rs = random.RandomState(seed)
        bounded.append({"seed": seed, "low": lo, "high": hi, "draws": [int(rs.randint(lo, hi)) for _ in range(6)]})
    out["randint"] = bounded
    # prompts: every trial of a README-style run (interval 1024 up to 57344, 10 seeds) as length + sha256
    rows = []
    for target, seed, key, n_prefix, prompt in trials(57344, 1024, 10):
        rows.append({"target": target, "seed": seed, "pass_key": int(key), "n_prefix": int(n_prefix),
                     "chars": len(prompt), "sha256": hashlib.sha256(prompt.encode()).hexdigest()})
    out["prompts"] = rows
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "passkey", "numpy_reference.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(rows)} prompts")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-tokens", type=int, default=32000)
    ap.add_argument("--interval", type=int, default=1000)
    ap.add_argument("--num-tests", type=int, default=10)
    ap.add_argument("--fixture", action="store_true")
    a = ap.parse_args()
    if a.fixture:
        fixture()
        return
    for target, seed, key, _, prompt in trials(a.max_tokens, a.interval, a.num_tests):
        print(json.dumps({"target": target, "seed": seed, "pass_key": int(key), "prompt": prompt}))


if __name__ == "__main__":
    main()
