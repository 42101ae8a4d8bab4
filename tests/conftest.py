"""Shared fixtures: real embedded FalkorDB servers on free ports in temporary directories.

One server per test session (graph name per test for isolation) keeps the suite fast; tests
that kill or reconfigure a server start their own with `make_server`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Linking keeps its vectors in each worker here: with the default (graph) every catalog a test
# imports would be embedded at import (about 8 s for the sample store on this CPU). The graph mode
# has its own tests (tests/test_linking_vectors.py), which set LINKING_VECTORS=graph.
os.environ.setdefault("LINKING_VECTORS", "memory")

from common.settings import Settings  # noqa: E402
from kg.backends.embedded import EmbeddedFalkorDB  # noqa: E402
from kg.backends.falkordb import FalkorDBStore  # noqa: E402
from kg.backends.state_server import stop_embedded  # noqa: E402
from kg.schema import ensure_schema  # noqa: E402


@pytest.fixture(scope="session")
def falkordb_server(tmp_path_factory) -> Iterator[EmbeddedFalkorDB]:
    # The production limits (TIMEOUT_MAX, QUERY_MEM_CAPACITY), so every test runs under them.
    defaults = Settings(_env_file=None)
    server = EmbeddedFalkorDB(tmp_path_factory.mktemp("falkordb"), appendfsync="always",
                              timeout_max_ms=defaults.falkordb_timeout_max_ms,
                              query_mem_capacity=defaults.falkordb_query_mem_capacity_mb * 1024 * 1024)
    server.ensure_running()
    yield server
    stop_embedded(server.data_dir)


@pytest.fixture
def settings(falkordb_server: EmbeddedFalkorDB, tmp_path: Path) -> Settings:
    """Settings pointing at the session server with a fresh graph name for this test."""
    return Settings(
        _env_file=None,
        graph_url="falkordb://embedded",
        data_dir=falkordb_server.data_dir,
        graph_name=f"t_{uuid.uuid4().hex[:10]}",
        falkordb_appendfsync="always",
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[FalkorDBStore]:
    """A schema-ready store on an empty graph, deleted afterwards."""
    s = FalkorDBStore.from_settings(settings)
    ensure_schema(s)
    yield s
    try:
        s.redis.execute_command("GRAPH.DELETE", settings.graph_name)
    except Exception:  # noqa: BLE001 - the graph may not exist if the test never wrote
        pass
    s.close()


@pytest.fixture
def make_server(tmp_path_factory):
    """Start private servers (for kill/restart tests); all are stopped at the end of the test."""
    started: list[EmbeddedFalkorDB] = []

    def _make(**kwargs) -> EmbeddedFalkorDB:
        srv = EmbeddedFalkorDB(tmp_path_factory.mktemp("falkordb_private"), **kwargs)
        srv.ensure_running()
        started.append(srv)
        return srv

    yield _make
    for srv in started:
        stop_embedded(srv.data_dir)
