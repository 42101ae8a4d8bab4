"""A throwaway embedded FalkorDB holding the generated sample catalog, for the benchmarks that need
real linking or retrieval (bench_linking.py, bench_nlu.py)."""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.settings import Settings
from import_scripts.sample_store import generate
from kg.backends.embedded import EmbeddedFalkorDB
from kg.backends.falkordb import FalkorDBStore
from kg.loader import import_path
from kg.schema import ensure_schema


@contextmanager
def sample_graph(products: int, *, name: str, customers: int = 1, orders: int = 0,
                 ) -> Iterator[tuple[FalkorDBStore, Settings, Path]]:
    """(store, settings, directory of the generated import files); everything is removed after."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "sample"
        generate(data, products=products, customers=customers, orders=orders, seed=7, today=dt.date(2026, 3, 15))
        server = EmbeddedFalkorDB(Path(tmp) / "db")
        server.ensure_running()
        try:
            settings = Settings(_env_file=None, graph_url="falkordb://embedded", data_dir=server.data_dir,
                                graph_name=name)
            store = FalkorDBStore.from_settings(settings)
            ensure_schema(store)
            t = time.perf_counter()
            import_path(store, data, settings=settings, progress=False)
            print(f"catalog: {products} products imported in {time.perf_counter() - t:.1f} s")
            yield store, settings, data
        finally:
            server.stop()
