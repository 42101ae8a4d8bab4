"""What the per-worker linking index costs a process beyond its memory: building it, applying one
catalog change (the index's maps are copied on write, so readers never lock), and a full pass of
Python's cyclic garbage collector over it, before and after `gc.freeze()` (what
`common.bootstrap.settle_heap` does once a serving process is warm). In one process, no graph: the
`LineIndex` is built from the generator's products.csv. Also the packed lines' size against the
same lines as objects, and the typo search over the name words it keeps (`vocab_list`) against
every token of the index. Prints figures, asserts nothing.

    .venv/bin/python bench/bench_index_heap.py --products 100000
    .venv/bin/python bench/bench_index_heap.py --products 1000000      # about 8 GB and 3 minutes
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import gc
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from import_scripts.sample_store import generate  # noqa: E402
from nlu.linking.index import LineIndex, ProductRecord, token_sims, unpack_line  # noqa: E402


def _deep_size(root: object) -> int:
    """Bytes held by `root` and what it reaches through containers and dataclass fields, each object once."""
    seen: set[int] = set()
    stack, total = [root], 0
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        total += sys.getsizeof(x)
        if isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, (tuple, list, set, frozenset)):
            stack.extend(x)
        elif hasattr(x, "__dict__"):
            stack.append(x.__dict__)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=100_000)
    args = ap.parse_args()
    csv.field_size_limit(10**8)
    with tempfile.TemporaryDirectory(prefix="kgqa-heap-") as tmp:
        generate(Path(tmp), products=args.products, customers=1, orders=0, seed=7, today=dt.date(2026, 3, 15))
        with (Path(tmp) / "products.csv").open(encoding="utf-8") as f:
            recs = {r["sku"]: ProductRecord.from_row({**r, "h": "x"}) for r in csv.DictReader(f)}
    t = time.perf_counter()
    idx = LineIndex().apply(recs)
    print(f"{len(recs)} products, {len(idx.lines)} lines: index built in {time.perf_counter() - t:.1f} s")
    packed = sum(len(b) + sys.getsizeof(b"") for b in idx.lines.blobs.values())
    objects = _deep_size([unpack_line(b) for b in idx.lines.blobs.values()])
    print(f"lines: {packed / len(recs):.0f} B per product packed, {objects / len(recs):.0f} as objects")
    words = ["plorb", "toaster", "headphnes", "wireles", "blender", "kettle", "speakr", "notebok"]
    for label, vocab in (("name words", idx.vocab_list), ("every token", tuple(idx.postings))):
        t = time.perf_counter()
        token_sims(words, idx.postings, vocab)
        print(f"typo search over {label}: {len(vocab)} of them, "
              f"{(time.perf_counter() - t) * 1000 / len(words):.3f} ms a word")
    one = next(iter(recs.values()))
    changed = dataclasses.replace(one, name=one.name + " Pro", h="y")
    for _ in range(3):
        t = time.perf_counter()
        idx.apply({one.sku: changed}, lambda skus, src=recs: [src[s] for s in skus])
        print(f"one catalog change applied in {(time.perf_counter() - t) * 1000:.0f} ms")
    del recs
    for _ in range(2):
        t = time.perf_counter()
        gc.collect()
        print(f"full garbage-collector pass: {(time.perf_counter() - t) * 1000:.0f} ms")
    gc.freeze()
    t = time.perf_counter()
    gc.collect()
    print(f"after gc.freeze(): {(time.perf_counter() - t) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
