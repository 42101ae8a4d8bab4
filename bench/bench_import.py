"""Import throughput and memory, against two baselines measured in the same run.

    .venv/bin/python bench/bench_import.py                   # 100,000 products, ~300,000 order items
    .venv/bin/python bench/bench_import.py --products 20000  # quicker
    .venv/bin/python bench/bench_import.py --products 20000 --only-audit   # the audit log's cost only

Prints rows/s per file type for the project's loader (validated, batched UNWIND upserts with
change detection), without and with the audit log (kg/audit.py: one read of old values and one
pipelined write to the state store per batch), then for products:
  * baseline A: one MERGE query per row (what a naive loader does), on a sample of rows;
  * baseline B: FalkorDB's own create-only bulk loader (`falkordb-bulk-insert`), which skips
    validation, upsert semantics and idempotence: the ceiling, not a competitor;
and the loader's peak resident memory at several input sizes (flat is the goal). Each run uses a
fresh embedded server in a temporary directory with the default `appendfsync everysec`.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.settings import Settings  # noqa: E402
from import_scripts.sample_store import generate  # noqa: E402
from kg.backends.embedded import EmbeddedFalkorDB  # noqa: E402
from kg.backends.falkordb import FalkorDBStore  # noqa: E402
from kg.backends.state_server import stop_embedded  # noqa: E402
from kg.loader import import_path  # noqa: E402
from kg.queries import Query  # noqa: E402
from kg.schema import ensure_schema  # noqa: E402

ORDER = ["categories", "brands", "suppliers", "products", "customers", "shipping_methods",
         "payment_methods", "orders", "order_items", "policies", "promotions", "faqs"]


class PeakRSS:
    """Samples this process's resident memory every 20 ms; the peak is what matters."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self):
        self.start = self.proc.memory_info().rss
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def fresh_store(tmp: Path, name: str) -> tuple[EmbeddedFalkorDB, FalkorDBStore, Settings]:
    server = EmbeddedFalkorDB(tmp / f"srv-{name}")
    server.ensure_running()
    settings = Settings(_env_file=None, data_dir=server.data_dir, graph_name=name)
    store = FalkorDBStore.from_settings(settings)
    ensure_schema(store)
    return server, store, settings


def file_for(d: Path, kind: str) -> Path:
    for ext in ("csv", "jsonl"):
        if (d / f"{kind}.{ext}").exists():
            return d / f"{kind}.{ext}"
    raise FileNotFoundError(kind)


def run_loader(data: Path, tmp: Path, name: str, *, audit: bool = False,
               changed: Path | None = None) -> dict[str, tuple[int, float]]:
    """Rows and seconds per file type; with `changed`, then the products again with every price
    changed (each row an update: the audit log reads and writes old and new values)."""
    server, store, settings = fresh_store(tmp, name)
    sink = None
    if audit:
        from common import bootstrap

        sink = bootstrap.build(settings, store=store).local_audit()  # the embedded state server beside this graph
    out: dict[str, tuple[int, float]] = {}
    try:
        for kind in ORDER + (["products (all updated)"] if changed else []):
            f = changed if kind.startswith("products (") else file_for(data, kind)
            t = time.perf_counter()
            report = import_path(store, f, settings=settings, progress=False, audit=sink)
            el = time.perf_counter() - t
            rows = sum(fr.rows for fr in report.files)
            if report.errors:
                print(f"  ! {kind}: {len(report.errors)} rejected, first: {report.errors[0]}")
            out[kind] = (rows, el)
    finally:
        store.close()
        from kg.backends.state_server import stop_embedded

        stop_embedded(server.data_dir)
    return out


def with_new_prices(data: Path, out_dir: Path) -> Path:
    """products.csv with every price raised by one cent."""
    out_dir.mkdir(parents=True, exist_ok=True)
    src = file_for(data, "products")
    dst = out_dir / "products.csv"
    with open(src, newline="", encoding="utf-8") as fin, open(dst, "w", newline="", encoding="utf-8") as fout:
        reader = csv.DictReader(fin)
        writer = csv.DictWriter(fout, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        for row in reader:
            if row.get("price"):
                row["price"] = f"{float(row['price']) + 0.01:.2f}"
            writer.writerow(row)
    return dst


PER_ROW = Query(
    "bench.per_row_product",
    """
    MERGE (p:Product {sku: $sku})
    SET p.name = $name, p.price = $price, p.stock = $stock, p.status = $status
    MERGE (b:Brand {name: $brand}) MERGE (p)-[:MADE_BY]->(b)
    MERGE (c:Category {name: $category}) MERGE (p)-[:IN_CATEGORY]->(c)
    """,
    read_only=False,
)


def run_per_row(data: Path, tmp: Path, n: int) -> tuple[int, float]:
    server, store, _ = fresh_store(tmp, "perrow")
    try:
        with open(data / "products.csv", newline="", encoding="utf-8") as fh:
            rows = [r for _, r in zip(range(n), csv.DictReader(fh), strict=False)]
        t = time.perf_counter()
        for r in rows:
            store.run(PER_ROW, {"sku": r["sku"], "name": r["name"], "price": float(r["price"] or 0),
                                "stock": int(r["stock"] or 0), "status": r["status"] or "active",
                                "brand": r["brand"], "category": r["category"]})
        return len(rows), time.perf_counter() - t
    finally:
        store.close()
        stop_embedded(server.data_dir)  # the graph server and the state server beside it


def run_bulk_loader(data: Path, tmp: Path) -> tuple[int, float]:
    """Convert products to the bulk loader's CSV layout (not timed), then time the load."""
    bulk = tmp / "bulk"
    bulk.mkdir()
    brands: set[str] = set()
    cats: set[str] = set()
    n = 0
    with open(data / "products.csv", newline="", encoding="utf-8") as fh, \
         open(bulk / "Product.csv", "w", newline="") as pf, \
         open(bulk / "MADE_BY.csv", "w", newline="") as mf, \
         open(bulk / "IN_CATEGORY.csv", "w", newline="") as cf:
        pw, mw, cw = csv.writer(pf), csv.writer(mf), csv.writer(cf)
        pw.writerow(["sku", "name", "price", "stock", "status"])
        mw.writerow(["src", "dst"])
        cw.writerow(["src", "dst"])
        for r in csv.DictReader(fh):
            pw.writerow([r["sku"], r["name"], r["price"] or 0, r["stock"] or 0, r["status"] or "active"])
            mw.writerow([r["sku"], "brand:" + r["brand"]])
            cw.writerow([r["sku"], "cat:" + r["category"]])
            brands.add(r["brand"])
            cats.add(r["category"])
            n += 1
    with open(bulk / "Brand.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "name"])
        w.writerows(["brand:" + b, b] for b in sorted(brands))
    with open(bulk / "Category.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "name"])
        w.writerows(["cat:" + c, c] for c in sorted(cats))
    server = EmbeddedFalkorDB(tmp / "srv-bulk")
    info = server.ensure_running()
    try:
        exe = Path(sys.executable).parent / "falkordb-bulk-insert"
        cmd = [str(exe), "bulk", "-u", f"redis://:{info.password}@127.0.0.1:{info.port}",
               "-N", "Product", str(bulk / "Product.csv"), "-N", "Brand", str(bulk / "Brand.csv"),
               "-N", "Category", str(bulk / "Category.csv"),
               "-R", "MADE_BY", str(bulk / "MADE_BY.csv"), "-R", "IN_CATEGORY", str(bulk / "IN_CATEGORY.csv")]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        return n, time.perf_counter() - t
    finally:
        stop_embedded(server.data_dir)  # the graph server and the state server beside it


def memory_profile(tmp: Path, sizes: list[int]) -> list[tuple[int, float]]:
    """Peak RSS growth of the loader importing products.csv at several sizes."""
    out = []
    for size in sizes:
        d = tmp / f"mem-{size}"
        generate(d, products=size, customers=10, orders=0, seed=7, today=dt.date(2026, 11, 1))
        server, store, settings = fresh_store(tmp, f"mem{size}")
        try:
            for kind in ("categories", "brands", "suppliers"):
                import_path(store, file_for(d, kind), settings=settings, progress=False)
            with PeakRSS() as m:
                import_path(store, d / "products.csv", settings=settings, progress=False)
            out.append((size, (m.peak - m.start) / 2**20))
        finally:
            store.close()
            stop_embedded(server.data_dir)  # the graph server and the state server beside it
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=100_000)
    ap.add_argument("--orders", type=int, default=None, help="default: products * 1.2 (~3 items each)")
    ap.add_argument("--per-row-sample", type=int, default=3000)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--only-audit", action="store_true", help="only the loader without and with the audit log")
    args = ap.parse_args()
    orders = args.orders if args.orders is not None else int(args.products * 1.2)
    tmp = Path(tempfile.mkdtemp(prefix="bench-import-"))
    data = tmp / "data"
    t = time.perf_counter()
    generate(data, products=args.products, customers=max(300, args.products // 20), orders=orders,
             seed=7, today=dt.date(2026, 11, 1))
    print(f"generated in {time.perf_counter() - t:.1f}s into {data}  (cpus: {os.cpu_count()})")

    changed = with_new_prices(data, tmp / "changed")
    loader = run_loader(data, tmp, "loader", changed=changed)
    audited = run_loader(data, tmp, "audited", audit=True, changed=changed)
    print("\nloader without / with the audit log (rows/s):")
    print(f"  {'file':<24}{'rows':>10}{'no audit':>12}{'audit':>12}{'ratio':>8}")
    for kind, (rows, el) in loader.items():
        rows_a, el_a = audited[kind]
        plain, logged = rows / el if el else 0, rows_a / el_a if el_a else 0
        print(f"  {kind:<24}{rows:>10}{plain:>12,.0f}{logged:>12,.0f}{logged / plain if plain else 0:>8.0%}")
    if args.only_audit:
        return
    per_row_n, per_row_s = run_per_row(data, tmp, args.per_row_sample)
    bulk_n, bulk_s = run_bulk_loader(data, tmp)
    mem = memory_profile(tmp, [max(1000, args.products // 4), max(2000, args.products // 2), args.products])

    print("\nloader (validated, batched, idempotent upserts):")
    print(f"  {'file':<18}{'rows':>10}{'seconds':>10}{'rows/s':>12}")
    for kind, (rows, el) in loader.items():
        print(f"  {kind:<18}{rows:>10}{el:>10.2f}{rows / el if el else 0:>12,.0f}")
    p_rows, p_s = loader["products"]
    p_rate = p_rows / p_s
    per_row_rate = per_row_n / per_row_s
    bulk_rate = bulk_n / bulk_s
    print("\nproducts with brand and category relationships:")
    print(f"  loader                    {p_rate:>12,.0f} rows/s")
    print(f"  A: one query per row      {per_row_rate:>12,.0f} rows/s  (loader = {p_rate / per_row_rate:.1f}x)")
    print(f"  B: falkordb-bulk-insert   {bulk_rate:>12,.0f} rows/s  (loader = {p_rate / bulk_rate:.0%} of it)")
    print("\nloader peak memory growth while importing products.csv:")
    for size, mib in mem:
        print(f"  {size:>9,} products  {mib:8.1f} MiB")
    if args.json:
        args.json.write_text(json.dumps({
            "loader": {k: {"rows": r, "seconds": s} for k, (r, s) in loader.items()},
            "per_row_rate": per_row_rate, "bulk_rate": bulk_rate,
            "memory_mib": dict(mem),
        }, indent=2))


if __name__ == "__main__":
    main()
