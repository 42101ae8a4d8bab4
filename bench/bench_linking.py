"""Entity-linking speed, memory and accuracy on this machine's CPU; prints figures, asserts nothing.

    .venv/bin/python bench/bench_linking.py                              # 1,000 products (the sample store)
    .venv/bin/python bench/bench_linking.py --vectors memory             # name vectors held in this process
    .venv/bin/python bench/bench_linking.py --products 100000 --no-embeddings

A fresh embedded FalkorDB in a temporary directory gets the sample store (kg/loader.py), then:
- index build: wall time, lexical part and embedding part, resident memory added (psutil), the
  embedding matrix size;
- latency per mention (p50 / p95 / max, ms) by path: exact names and model numbers, model-line
  mentions (ambiguous), typos (fuzzy + full-text), paraphrases (embeddings; every text distinct so
  the query cache does not help), nonsense; a typical question's entities together; `link_text`;
  `link()` (the dialogue's entry point) on a typical question, on a question naming no product
  (the message is searched for product names and naming values), and on a product name the model
  read as a brand and a category (the name is found in the message);
- following the catalog: the version check when nothing changed, and an incremental refresh after
  one product is added and one renamed (imported by the loader);
- accuracy on held-out products (nlu/linking/evaluation.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import psutil  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._sample_graph import sample_graph  # noqa: E402
from common import bootstrap  # noqa: E402
from common.settings import Settings  # noqa: E402
from kg.loader import import_path  # noqa: E402
from nlu.linking import LinkerConfig  # noqa: E402
from nlu.linking.evaluation import build_examples, evaluate_linking, held_out_records, typo  # noqa: E402
from nlu.types import Entity, IntentScore, Understanding  # noqa: E402


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _timed(fn, items) -> list[float]:
    out = []
    for x in items:
        t = time.perf_counter()
        fn(x)
        out.append((time.perf_counter() - t) * 1000)
    return out


def _row(name: str, ms: list[float]) -> str:
    if not ms:
        return f"  {name:<34} (none)"
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"  {name:<34} n={len(ms):<5} p50 {statistics.median(ms):7.2f}  p95 {p95:7.2f}  max {ms[-1]:7.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=1000)
    ap.add_argument("--mentions", type=int, default=300, help="Mentions per path.")
    ap.add_argument("--no-embeddings", action="store_true")
    ap.add_argument("--vectors", choices=["graph", "memory"], default="graph",
                    help="LINKING_VECTORS: name vectors computed at import and searched in the graph, or held here.")
    ap.add_argument("--dtype", choices=["float16", "float32"], default="float32")
    ap.add_argument("--eval-products", type=int, default=400, help="Held-out products in the accuracy run.")
    args = ap.parse_args()

    with sample_graph(args.products, name="bench_linking", vectors=args.vectors) as (store, settings, data):
        run(store, settings, data, args)


def run(store, settings: Settings, data: Path, args) -> None:
    config = LinkerConfig(use_embeddings=not args.no_embeddings, embedding_dtype=args.dtype,
                          graph_vectors=args.vectors == "graph")
    linker = bootstrap.build(settings, store=store, linker_config=config).linker
    assert linker is not None
    if config.use_embeddings:
        t = time.perf_counter()
        linker.encoder.encode(["warm up"])
        print(f"encoder load: {time.perf_counter() - t:.1f} s")
    rss0 = _rss_mb()
    t = time.perf_counter()
    linker.warm()
    total_s = time.perf_counter() - t
    stats = linker.stats()
    print(f"index build: {total_s:.1f} s; {stats['products']} products, {stats['lines']} lines, "
          f"{stats['vocabulary']} words; embedding matrix {stats['embedding_rows']} rows, "
          f"{stats['embedding_bytes'] / 2**20:.1f} MiB {args.dtype}; RSS +{_rss_mb() - rss0:.0f} MiB")
    if config.use_embeddings and not config.graph_vectors:
        records = linker.indexed()[0]
        titles = list({r.line_key: r.base_name for r in records}.values())
        t = time.perf_counter()
        linker.encoder.encode(titles)
        print(f"  of which encoding {len(titles)} line titles: {time.perf_counter() - t:.1f} s")

    with (data / "products.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    step = max(1, len(rows) // args.mentions)
    sample = rows[::step][:args.mentions]
    lines = [json.loads(r["attributes"]).get("model_line") or r["name"] for r in sample]
    rng = random.Random(5)
    exact = [r["name"].lower() for r in sample]
    line_only = list(dict.fromkeys(lines))
    typos = [typo(f"{r['brand']} {ln}", rng).lower() for r, ln in zip(sample, lines, strict=True)]
    kinds = ["headphones", "laptop", "phone", "running shoes", "jacket", "lamp", "backpack", "watch", "bike", "sofa"]
    words = ["light", "cheap", "waterproof", "noise cancelling", "compact", "big screen", "fast", "warm", "small",
             "for travel", "for kids", "wireless", "premium", "quiet", "sturdy"]
    brands = sorted({r["brand"] for r in rows})
    paraphrases = list(dict.fromkeys(f"{w} {rng.choice(brands).split()[0].lower()} {k}"
                                     for w in words for k in kinds))[:args.mentions]
    nonsense = [f"qwx{i}zv plorb" for i in range(50)]
    print(f"\nlatency per mention (ms), {args.products} products:")
    print(_row("exact name", _timed(lambda m: linker.link_mention(m, "PRODUCT"), exact)))
    print(_row("model line (ambiguous)", _timed(lambda m: linker.link_mention(m, "PRODUCT"), line_only)))
    print(_row("typo (fuzzy + full-text)", _timed(lambda m: linker.link_mention(m, "PRODUCT"), typos)))
    if config.use_embeddings:
        print(_row("paraphrase (embeddings)", _timed(lambda m: linker.link_mention(m, "PRODUCT"), paraphrases)))
    print(_row("nonsense", _timed(lambda m: linker.link_mention(m, "PRODUCT"), nonsense)))
    print(_row("brand with a typo", _timed(lambda m: linker.link_mention(typo(m, rng), "BRAND"), brands)))
    question = [Entity(type="PRODUCT", text=ln, start=7, end=7 + len(ln)) for ln in line_only[:100]]
    print(_row("typical question (3 entities)", _timed(
        lambda e: linker.link_entities([e, Entity(type="ATTRIBUTE", text="black"),
                                        Entity(type="ORDER_ID", text="#10452")], f"is the {e.text} in black?"),
        question)))
    print(_row("link_text on a question", _timed(linker.link_text, [f"is the {ln} in stock?" for ln in line_only[:100]])))

    def understood(text: str, intent: str, *spans: tuple[str, str]) -> Understanding:
        ents = [Entity(type=t, text=m, start=text.index(m), end=text.index(m) + len(m)) for m, t in spans]
        return Understanding(text=text, intent=IntentScore(name=intent, confidence=0.9), entities=ents)

    typical = [understood(f"is the {ln} in black? order #10452", "product_availability", (ln, "PRODUCT"),
                          ("black", "ATTRIBUTE"), ("#10452", "ORDER_ID")) for ln in line_only[:100]]
    print(_row("link(): typical question", _timed(linker.link, typical)))
    plain = ["do you ship to austria?", "what are your opening hours", "can I pay with paypal?",
             "how long does delivery take", "I want to talk to a person", "what is your return policy",
             "do you have a store in berlin", "my parcel never arrived", "is there a student discount",
             "can I change my delivery address"]
    print(_row("link(): no product named", _timed(linker.link, [understood(t, "delivery_options") for t in plain * 5])))
    mistyped = []
    for r in sample[:100]:
        words = r["name"].split(",")[0].split()
        if len(words) >= 3:  # the first word read as a brand, the rest as a category
            text = f"how much is the {' '.join(words).lower()}?"
            mistyped.append(understood(text, "product_price", (words[0].lower(), "BRAND"),
                                       (" ".join(words[1:]).lower(), "CATEGORY")))
    print(_row("link(): name read as other types", _timed(linker.link, mistyped)))

    if not config.use_embeddings:  # the matrix search alone, on random unit vectors of the real size
        import numpy as np

        from nlu.linking.index import EmbeddingTable

        n = stats["lines"]
        m = np.random.default_rng(0).standard_normal((n, 384)).astype(np.float32)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        table = EmbeddingTable(tuple(str(i) for i in range(n)), m.astype(args.dtype), {})
        q = m[0]
        print(_row(f"embedding search alone ({n} rows)", _timed(lambda _: table.search(q, 20), range(50))))
        print(f"  (matrix {table.matrix.nbytes / 2**20:.1f} MiB {args.dtype}; the query encoding itself is "
              f"measured by a run with embeddings)")

    print("\nfollowing the catalog:")
    linker.config = config.model_copy(update={"refresh_interval_s": 0.0})  # every call checks the version
    print(_row("version check, nothing changed", _timed(lambda _: linker.refresh(), range(50))))
    first = rows[0]
    changes = data.parent / "changes"
    changes.mkdir()
    with (changes / "products.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(first))
        w.writeheader()
        w.writerow({**first, "sku": "NEW-000001", "name": "Nordic Audio Zephyr Q9 Sport Earbuds, Black",
                    "attributes": json.dumps({"model_line": "Zephyr Q9", "colour": "Black"})})
        w.writerow({**first, "name": first["name"].replace(lines[0], "Tempest 7"),
                    "attributes": json.dumps({**json.loads(first["attributes"]), "model_line": "Tempest 7"})})
    import_path(store, changes, settings=settings, progress=False)
    t = time.perf_counter()
    linker.refresh()
    print(f"  incremental refresh (1 added, 1 renamed): {(time.perf_counter() - t) * 1000:.0f} ms; "
          f"'zephyr q9' -> {linker.link_mention('zephyr q9').node_id}, "
          f"'tempest 7' -> {[c.node_id for c in linker.link_mention('tempest 7').candidates][:2]}")

    records, brand_names, categories = linker.indexed()
    held = held_out_records(records)
    held = random.Random(9).sample(held, min(len(held), args.eval_products))
    examples = build_examples(records, held, brands=brand_names, categories=categories)
    report = evaluate_linking(linker, examples)
    print(f"\nheld-out accuracy: {report.accuracy:.4f} on {report.n} mentions naming one product; ambiguity "
          f"detection {report.ambiguity_detection} on {report.n_ambiguous} model-line mentions "
          f"(precision {report.ambiguity_precision}); brands {report.brand_accuracy}, categories "
          f"{report.category_accuracy}; {report.ms_per_mention:.2f} ms per mention")


if __name__ == "__main__":
    main()
