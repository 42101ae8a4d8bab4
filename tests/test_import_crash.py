"""Crash drill: the graph server is SIGKILLed in the middle of an import. The store brings it back
from its append-only file, a second import finishes the job, and the result equals a clean import:
same nodes, same relationships, same properties, nothing duplicated, nothing half-written."""

from __future__ import annotations

import datetime as dt
import threading
import time

from test_import_loader import counts, snapshot

from common.settings import Settings
from import_scripts.sample_store import generate
from kg.backends.falkordb import FalkorDBStore
from kg.loader import import_path
from kg.queries import Query
from kg.schema import ensure_schema

PRODUCTS = Query("test.crash.products", "MATCH (p:Product) RETURN count(p) AS n")


def test_killed_server_mid_import_then_reimport_equals_clean_import(make_server, tmp_path):
    data = tmp_path / "sample"
    generate(data, products=1500, customers=200, orders=1200, today=dt.date(2026, 1, 15))
    server = make_server(appendfsync="always")

    def open_graph(name: str) -> tuple[FalkorDBStore, Settings]:
        settings = Settings(_env_file=None, data_dir=server.data_dir, graph_name=name,
                            falkordb_appendfsync="always", import_batch_size=200)
        store = FalkorDBStore.from_settings(settings)
        ensure_schema(store)
        return store, settings

    crashed, settings = open_graph("crashed")
    probe, _ = open_graph("crashed")
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["report"] = import_path(crashed, data, settings=settings, progress=False)
        except Exception as exc:  # noqa: BLE001 - either outcome is allowed; the re-import must repair
            outcome["error"] = exc

    worker = threading.Thread(target=work)
    worker.start()
    deadline = time.monotonic() + 60
    while probe.run(PRODUCTS)[0]["n"] < 400:  # products are being written
        assert worker.is_alive() and time.monotonic() < deadline, "the import ended before the kill"
        time.sleep(0.01)
    before = server.current()
    server.kill()
    killed_mid_import = worker.is_alive()
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert killed_mid_import
    after = server.current()
    assert after is not None and before is not None and after.pid != before.pid  # restarted by the store

    report = import_path(crashed, data, settings=settings, progress=False)
    assert report.errors == []
    clean, _ = open_graph("clean")
    clean_report = import_path(clean, data, settings=settings.model_copy(update={"graph_name": "clean"}),
                               progress=False)
    assert clean_report.errors == []

    assert counts(crashed)[0] == counts(clean)[0]
    assert counts(crashed)[1] == counts(clean)[1]
    assert snapshot(crashed) == snapshot(clean)
    # And the repaired graph is settled: a third import finds nothing to do.
    assert not import_path(crashed, data, settings=settings, progress=False).written
    for s in (crashed, probe, clean):
        s.close()
