"""The sentence encoder in float32 and in int8 (ENCODER_PRECISION), side by side: names per second
in batches on every core (what an import does), one query on one thread (what a chat turn does),
and how far the int8 vectors are from float32's (cosine per name; the nearest name of a few
paraphrases under each). Prints figures, asserts nothing.

    .venv/bin/python bench/bench_encoder.py                       # the sample store's names, 4,000 of them
    .venv/bin/python bench/bench_encoder.py --names 20000

Both graphs are exported (and int8 quantised) into a temporary cache first, so neither side pays
an export in its timings.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.settings import Settings  # noqa: E402
from import_scripts.sample_store import generate  # noqa: E402
from nlu.linking.encoder import TextEncoder  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--names", type=int, default=4000, help="How many product names to embed in batches.")
    ap.add_argument("--queries", type=int, default=300, help="How many single queries to time.")
    args = ap.parse_args()
    settings = Settings(_env_file=None)
    with tempfile.TemporaryDirectory(prefix="kgqa-encoder-") as tmp:
        generate(Path(tmp) / "shop", products=1000, customers=1, orders=0, today=dt.date(2026, 12, 7))
        with (Path(tmp) / "shop" / "products.csv").open(encoding="utf-8") as fh:
            names = [r["name"] for r in csv.DictReader(fh)]
        names = (names * (args.names // len(names) + 1))[:args.names]
        vectors = {}
        for precision in ("float32", "int8"):
            enc = TextEncoder(settings.encoder_path, runtime="onnx", cache_dir=tmp, precision=precision)
            enc.encode_bulk(names[:256])
            enc.encode(["warm up"])
            t = time.perf_counter()
            vectors[precision] = enc.encode_bulk(names)
            bulk = len(names) / (time.perf_counter() - t)
            times = []
            for n in names[:args.queries]:
                t = time.perf_counter()
                enc.encode([n])
                times.append((time.perf_counter() - t) * 1000)
            print(f"{precision:8s} {bulk:6.0f} names/s in batches, a query p50 {statistics.median(times):.2f} ms "
                  f"(space {enc.space})", flush=True)
        cos = (vectors["float32"] * vectors["int8"]).sum(axis=1)
        print(f"cosine int8 to float32: min {cos.min():.4f}, mean {cos.mean():.4f}")
        distinct = list(dict.fromkeys(names))[:1000]
        a = TextEncoder(settings.encoder_path, runtime="onnx", cache_dir=tmp).encode(distinct)
        b = TextEncoder(settings.encoder_path, runtime="onnx", cache_dir=tmp, precision="int8").encode(distinct)
        same = np.mean([int(np.argsort(-(a @ a[i]))[1]) == int(np.argsort(-(b @ b[i]))[1]) for i in range(len(a))])
        print(f"the nearest other name the same in both: {same:.1%} of {len(distinct)} names")


if __name__ == "__main__":
    main()
