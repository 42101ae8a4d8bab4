"""A throwaway embedded FalkorDB holding the generated sample catalog, for the benchmarks that need
real linking or retrieval (bench_linking.py, bench_nlu.py)."""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common import bootstrap
from common.settings import Settings
from import_scripts.sample_store import generate
from kg.backends.embedded import EmbeddedFalkorDB
from kg.backends.state_server import stop_embedded
from kg.loader import import_path
from kg.store import GraphStore


@contextmanager
def sample_graph(products: int, *, name: str, customers: int = 1, orders: int = 0, vectors: str = "memory",
                 ) -> Iterator[tuple[GraphStore, Settings, Path]]:
    """(store, settings, directory of the generated import files); everything is removed after.
    `vectors`: LINKING_VECTORS (graph: the import also embeds every product name, timed apart)."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "sample"
        generate(data, products=products, customers=customers, orders=orders, seed=7, today=dt.date(2026, 3, 15))
        server = EmbeddedFalkorDB(Path(tmp) / "db")
        server.ensure_running()
        try:
            settings = Settings(_env_file=None, graph_url="falkordb://embedded", data_dir=server.data_dir,
                                graph_name=name, linking_vectors=vectors)
            app = bootstrap.build(settings)  # the store and the catalog service, from the composition root
            store = app.graph()
            t = time.perf_counter()
            report = import_path(store, data, settings=settings, progress=False)
            loaded = time.perf_counter() - t
            t = time.perf_counter()
            embedded = app.catalog.fill_vectors()
            embed_s = time.perf_counter() - t
            print(f"catalog: {products} products imported in {loaded:.1f} s"
                  + (f", {embedded} names embedded in {embed_s:.1f} s ({embedded / max(embed_s, 1e-9):.0f}/s)"
                     if vectors == "graph" else "") + f"; {len(report.errors)} row errors")
            if vectors == "graph":
                t = time.perf_counter()
                app.catalog.import_path(data, progress=False)
                print(f"  re-import of the unchanged files: {time.perf_counter() - t:.1f} s, "
                      f"{app.catalog.fill_vectors()} names embedded")
            yield store, settings, data
        finally:
            stop_embedded(server.data_dir)  # the graph server and the state server beside it
