"""How the product grows with the catalog: import with name vectors, re-import, a worker's start to
ready, its first and steady chat turns, linking a name that matches nothing, and memory; prints
figures side by side for each size, asserts nothing.

    .venv/bin/python bench/bench_catalog_scale.py                          # 1,000 and 10,000 products
    .venv/bin/python bench/bench_catalog_scale.py --sizes 1000,100000
    .venv/bin/python bench/bench_catalog_scale.py --worker-only DATA_DIR GRAPH products.csv   # an existing graph

For each size the sample store generator writes a catalog, a fresh embedded FalkorDB imports it
(LINKING_VECTORS=graph: every vector text, shared by a line's variants, is embedded once, timed apart from
the load; "embedded" counts texts), the same
files are imported again (nothing should be embedded), then a worker is started in a process of its
own (as gunicorn would: the composition root, the understanding model, the linking index) and timed
until it is ready; it then answers a first question and 40 more (one shopper, p50 / p99), 160
more from 8 shoppers at once (threads, each its own conversation: p50 / p99 and turns per second),
links names that match nothing, measures linking accuracy on 400 held-out products
(nlu/linking/evaluation.py, the chat's linker), and reports its resident memory after the one
shopper's turns and at the end. That first worker finds no linking index on disk, builds it and
keeps it (LINKING_SNAPSHOT); a second worker is then started the same way and loads it (`disk_*`:
ready, first turn, one shopper's p50 / p99, memory after them). The graph server's memory is read
from its process.

`fields_s`: the shop's field catalogue built alone (qa/fields.py, part of the start).
`--index graph` (the default, LINKING_INDEX=graph): the linking index is built in the graph after the
load (`link_index_s`, as an import does), the workers read what each message needs from it
(`graph_reads_per_turn`: round trips for linking) and keep bounded caches; both workers then start
the same way. `--index memory`: each worker holds the index, as above.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import psutil  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import bootstrap  # noqa: E402
from common.settings import Settings  # noqa: E402
from import_scripts.sample_store import generate  # noqa: E402
from kg.backends.embedded import EmbeddedFalkorDB  # noqa: E402
from kg.backends.falkordb import FalkorDBStore  # noqa: E402
from kg.backends.state_server import stop_embedded  # noqa: E402
from kg.loader import import_path  # noqa: E402

INDEX = "graph"  # --index
QUESTIONS = ["how much is the {name}?", "is the {name} in stock?", "tell me about the {name}",
             "what's the warranty on the {name}?", "any deals on the {name}?"]

WORKER = r"""
import json, os, statistics, sys, time
t0 = time.perf_counter()
sys.path.insert(0, os.environ["KGQA_ROOT"])
import psutil
from common import bootstrap
from common.settings import Settings
cfg = json.loads(sys.argv[1])
settings = Settings(_env_file=None, graph_url="falkordb://embedded", data_dir=cfg["data_dir"],
                    graph_name=cfg["graph"], linking_vectors="graph", llm_backend="none",
                    linking_index=cfg["index"])
app = bootstrap.build(settings, examples=None)
t = time.perf_counter()
app.retriever.fields.catalog()  # the shop's field catalogue alone (timed apart; warm() builds it anyway)
fields_s = time.perf_counter() - t
engine = app.warm()  # what a gunicorn worker does before it reports ready (api/services.py)
from nlu.linking.graph_index import round_trips
def graph_reads():
    return round_trips(app.linker._current().lines)
bootstrap.settle_heap()  # and then
ready = time.perf_counter() - t0
t = time.perf_counter()
engine.handle(None, cfg["questions"][0], None)
first = (time.perf_counter() - t) * 1000
turns = []
for q in cfg["questions"][1:]:
    t = time.perf_counter()
    engine.handle(None, q, None)
    turns.append((time.perf_counter() - t) * 1000)
reads_one = graph_reads()  # round trips to the graph's linking index over the first shopper's turns
nothing = []
for i in range(40):
    t = time.perf_counter()
    app.linker.link_mention(f"qwx{i}zv plorb toaster", "PRODUCT")
    nothing.append((time.perf_counter() - t) * 1000)
def pct(xs, p):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))], 1)
rss_one = round(psutil.Process().memory_info().rss / 2**20)  # after one shopper's turns
if cfg.get("light"):  # a second start: how fast it is ready, and what it holds, with the index on disk
    print(json.dumps({"ready_s": round(ready, 1), "fields_s": round(fields_s, 1), "first_ms": round(first, 1),
                      "p50_ms": pct(turns, 0.5), "p99_ms": pct(turns, 0.99), "rss_mb": rss_one}))
    raise SystemExit(0)
# 8 shoppers at once, each its own conversation, as a worker's threads would serve them
import threading
eight, lock = [], threading.Lock()
def shopper(k):
    sid = None
    qs = cfg["questions"][1:]
    for q in (qs[k * 5:] + qs[:k * 5])[:20]:
        t = time.perf_counter()
        sid = engine.handle(sid, q, None).session_id
        with lock:
            eight.append((time.perf_counter() - t) * 1000)
t = time.perf_counter()
threads = [threading.Thread(target=shopper, args=(k,)) for k in range(8)]
for th in threads:
    th.start()
for th in threads:
    th.join()
eight_s = time.perf_counter() - t
# linking accuracy on the held-out products (nlu/linking/evaluation.py), the chat's linker
import random
from nlu.linking.evaluation import build_examples, evaluate_linking, held_out_records
records, brands, categories = app.linker.indexed()
pool = held_out_records(records)
held = random.Random(9).sample(pool, min(400, len(pool)))
report = evaluate_linking(app.linker, build_examples(records, held, brands=brands, categories=categories))
print(json.dumps({"ready_s": round(ready, 1), "fields_s": round(fields_s, 1), "first_ms": round(first, 1),
                  "p50_ms": pct(turns, 0.5), "p99_ms": pct(turns, 0.99), "nothing_p50_ms": pct(nothing, 0.5), "nothing_p99_ms": pct(nothing, 0.99),
                  "eight_p50_ms": pct(eight, 0.5), "eight_p99_ms": pct(eight, 0.99),
                  "eight_turns_per_s": round(len(eight) / eight_s, 1),
                  "linking_accuracy": round(report.accuracy, 4), "linking_mentions": report.n,
                  "rss_mb": rss_one, "rss_end_mb": round(psutil.Process().memory_info().rss / 2**20),
                  "graph_reads_per_turn": round(reads_one / (len(turns) + 1), 1)}))
app.close()
"""


def _server_rss_mb(server: EmbeddedFalkorDB) -> float:
    port = server.ensure_running().port
    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if "redis-server" in cmd and f":{port}" in cmd:
            return p.memory_info().rss / 2**20
    return float("nan")


def one_size(products: int, tmp: Path) -> dict[str, float | int | str]:
    data = tmp / f"sample-{products}"
    generate(data, products=products, customers=50, orders=200, seed=7, today=dt.date(2026, 3, 15))
    server = EmbeddedFalkorDB(tmp / f"db-{products}")
    server.ensure_running()
    graph = f"scale_{products}"
    try:
        settings = Settings(_env_file=None, graph_url="falkordb://embedded", data_dir=server.data_dir,
                            graph_name=graph, linking_vectors="graph", linking_index=INDEX)
        app = bootstrap.build(settings)
        store = app.graph()
        t = time.perf_counter()
        import_path(store, data, settings=settings, progress=False)
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        embedded = app.catalog.fill_vectors()
        embed_s = time.perf_counter() - t
        link_s = _link_index(app)
        t = time.perf_counter()
        app.catalog.import_path(data, progress=False)
        reimport_s = time.perf_counter() - t
        again = app.catalog.fill_vectors()
        app.close()
        restart, indexes = restart_server(server, graph)
        workers = run_workers(server.data_dir, graph, data / "products.csv")
        return {"products": products, "index": INDEX, "load_s": round(load_s, 1), "embedded": embedded,
                "embed_s": round(embed_s, 1), "link_index_s": link_s,
                "reimport_s": round(reimport_s, 1), "reembedded": again, **restart, **indexes(),
                "server_rss_mb": round(_server_rss_mb(server)), **workers}
    finally:
        stop_embedded(server.data_dir)  # the graph server and the state server beside it


def restart_server(server: EmbeddedFalkorDB, graph: str) -> tuple[dict[str, Any], Callable[[], dict[str, Any]]]:
    """The graph server stopped and started on its data directory, as `./kgqa up` after a stop does:
    timed until it answers (`restart_answer_s`: it reads its data). Its indexes are then built in the
    background, watched from a thread while the first worker starts at once (its `ready_s` includes
    its wait for them): the second value returns when the indexes a worker waits for were built
    (`restart_ready_indexes_s`: all but the name vectors' with READY_BEFORE_VECTOR_INDEX, the
    default) and when all were (`restart_indexes_s`), each from the server's start. The append-only
    file is compacted first, as an import or `kgqa up` leaves it (`compact`)."""
    import threading

    from kg.queries.embeddings import VECTOR_LABEL
    from kg.schema import wait_for_indexes

    store = _store(server, graph)
    compacted = server.compact(store.redis, wait=True)
    store.close()
    stop_embedded(server.data_dir)
    t = time.perf_counter()
    server.ensure_running()
    out: dict[str, Any] = {"compacted": compacted, "restart_answer_s": round(time.perf_counter() - t, 1)}
    later: dict[str, Any] = {}

    def watch() -> None:
        store = _store(server, graph)
        wait_for_indexes(store, 3600.0, ignore=(VECTOR_LABEL,), poll_s=0.2)
        later["restart_ready_indexes_s"] = round(time.perf_counter() - t, 1)
        later["restart_indexes_left"] = len(wait_for_indexes(store, 3600.0, poll_s=0.2))
        later["restart_indexes_s"] = round(time.perf_counter() - t, 1)
        store.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()

    def finished() -> dict[str, Any]:
        watcher.join()
        return later

    return out, finished


def _store(server: EmbeddedFalkorDB, graph: str) -> FalkorDBStore:
    return FalkorDBStore.from_settings(Settings(_env_file=None, graph_url="falkordb://embedded",
                                                data_dir=server.data_dir, graph_name=graph))


def _link_index(app: bootstrap.Container) -> float | None:
    """With LINKING_INDEX=graph: the index built in the graph (what an import does after its load), timed."""
    if INDEX != "graph" or app.linker is None:
        return None
    t = time.perf_counter()
    app.linker.sync_graph_index()
    return round(time.perf_counter() - t, 1)


def run_workers(data_dir: Path, graph: str, products_csv: Path) -> dict[str, float | int]:
    """The first worker (no linking index on disk: one an earlier run left is removed, so it builds it
    and keeps it), then a second start (it loads it: columns `disk_*`)."""
    (data_dir / "linking" / f"{graph}.index").unlink(missing_ok=True)
    first = run_worker(data_dir, graph, products_csv)
    second = run_worker(data_dir, graph, products_csv, light=True)
    return {**first, **{f"disk_{k}": v for k, v in second.items()}}


def run_worker(data_dir: Path, graph: str, products_csv: Path, *, light: bool = False) -> dict[str, float | int]:
    """A worker in a process of its own against `graph`: start to ready, turns, linking, memory
    (`light`: start to ready, one shopper's turns and memory)."""
    names = [line.split(",")[1] for line in products_csv.read_text().splitlines()[1:41]]
    questions = [QUESTIONS[i % len(QUESTIONS)].format(name=n.lower()) for i, n in enumerate(names)]
    cfg = {"data_dir": str(data_dir), "graph": graph, "questions": questions, "light": light, "index": INDEX}
    out = subprocess.run([sys.executable, "-c", WORKER, json.dumps(cfg)], capture_output=True, text=True,
                         env={**os.environ, "KGQA_ROOT": str(ROOT)}, check=False)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000", help="Comma-separated catalog sizes.")
    ap.add_argument("--index", choices=("graph", "memory"), default="graph", help=(
        "LINKING_INDEX: the linking index in the graph (workers read what a message needs) or in each worker."))
    ap.add_argument("--worker-only", nargs=3, metavar=("DATA_DIR", "GRAPH", "PRODUCTS_CSV"), help=(
        "Only the worker's part, against a graph imported before (its data directory, graph name and the "
        "products.csv its questions are taken from); the graph server is started and stopped here."))
    args = ap.parse_args()
    global INDEX
    INDEX = args.index
    if args.worker_only:
        data_dir, graph, csv = args.worker_only
        server = EmbeddedFalkorDB(Path(data_dir))
        t = time.perf_counter()
        server.ensure_running()
        print(f"graph server up in {time.perf_counter() - t:.1f} s", flush=True)
        try:
            app = bootstrap.build(Settings(_env_file=None, graph_url="falkordb://embedded", data_dir=Path(data_dir),
                                           graph_name=graph, linking_vectors="graph", linking_index=INDEX),
                                  examples=None)
            link_s = _link_index(app)  # a graph imported before the index was kept there: built now, timed
            app.close()
            restart, indexes = restart_server(server, graph)
            print(json.dumps(restart), flush=True)
            workers = run_workers(Path(data_dir), graph, Path(csv))
            print(json.dumps({"index": INDEX, "link_index_s": link_s, **restart, **indexes(), **workers,
                              "server_rss_mb": round(_server_rss_mb(server))}), flush=True)
        finally:
            stop_embedded(server.data_dir)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="kgqa-scale-") as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            rows.append(one_size(n, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    cols = ["products", "index", "load_s", "embedded", "embed_s", "link_index_s", "reimport_s", "reembedded",
            "restart_answer_s", "restart_ready_indexes_s", "restart_indexes_s", "ready_s", "first_ms", "p50_ms",
            "p99_ms", "eight_p50_ms", "eight_p99_ms", "eight_turns_per_s", "nothing_p50_ms", "nothing_p99_ms",
            "linking_accuracy", "linking_mentions", "rss_mb", "rss_end_mb", "disk_ready_s", "disk_first_ms",
            "disk_p50_ms", "disk_p99_ms", "disk_rss_mb", "server_rss_mb", "graph_reads_per_turn"]
    print("\n| " + " | ".join(cols) + " |\n|" + " --- |" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
