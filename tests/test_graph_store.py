"""The FalkorDB store against a real embedded server: schema, named queries, read-only runner,
parameters that look like Cypher, and restart after SIGKILL."""

from __future__ import annotations

import pytest

from common.errors import QueryError, ReadOnlyViolation
from common.settings import Settings
from kg.backends.falkordb import FalkorDBStore
from kg.queries import Query, get
from kg.schema import NODE_TYPES, ensure_schema, indexes_building, wait_for_indexes

WRITE = Query("test.write", "CREATE (n:Meta {key: $key, value: $value}) RETURN n.key AS key", read_only=False)
READ = Query("test.read", "MATCH (n:Meta {key: $key}) RETURN n.value AS value")


def test_named_query_round_trip(store):
    assert store.run(get("system.ping")) == [{"ok": 1}]
    store.run(WRITE, {"key": "k1", "value": "v1"})
    assert store.run(READ, {"key": "k1"}) == [{"value": "v1"}]


def test_schema_is_idempotent_and_complete(store):
    ensure_schema(store)  # second time: no error
    rows = store.run_untrusted_read(
        "CALL db.indexes() YIELD label, properties RETURN label, properties", None, row_limit=1000, timeout_ms=5000
    ).rows
    indexed = {(r["label"], p) for r in rows for p in r["properties"]}
    for n in NODE_TYPES:
        assert (n.label, n.key) in indexed
    constraints = store._connect().list_constraints()
    assert {(c["label"], tuple(c["properties"])) for c in constraints} >= {(n.label, (n.key,)) for n in NODE_TYPES}


def test_unique_key_is_enforced(store):
    store.run(WRITE, {"key": "dup", "value": "a"})
    with pytest.raises(QueryError):
        store.run(WRITE, {"key": "dup", "value": "b"})


@pytest.mark.parametrize(
    "value",
    [
        'x"}) MATCH (n) DETACH DELETE n //',
        "x') MATCH (n) DETACH DELETE n //",
        "back\\slash \\\" and quote",
        "line\nbreak\ttab",
        "ünïcødé ✓ 😀",
        "$key {value}",
    ],
)
def test_parameters_never_become_cypher(store, value):
    store.run(WRITE, {"key": "keep", "value": "safe"})
    store.run(WRITE, {"key": value, "value": value})
    assert store.run(READ, {"key": value}) == [{"value": value}]
    assert store.run(READ, {"key": "keep"}) == [{"value": "safe"}]


def test_nul_and_nan_parameters_are_refused(store):
    with pytest.raises(QueryError):
        store.run(READ, {"key": "a\x00b"})
    with pytest.raises(QueryError):
        store.run(READ, {"key": float("nan")})


@pytest.mark.parametrize(
    "cypher",
    [
        "CREATE (n:Meta {key: 'x'})",
        "MATCH (n) SET n.hacked = true",
        "MERGE (n:Meta {key: 'x'})",
        "MATCH (n) DELETE n",
        "MATCH (n) DETACH DELETE n",
        "MATCH (n) REMOVE n.key",
        "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
        "CALL db.idx.fulltext.drop('Product')",
        "CALL db.idx.fulltext.createNodeIndex('Meta', 'key')",
        "match (n) /* comment */ set n.x = 1",
        "MATCH (n) FOREACH (x IN [1] | SET n.x = x)",
        "DROP INDEX ON :Meta(key)",
        "CREATE INDEX FOR (n:Meta) ON (n.value)",
    ],
)
def test_untrusted_read_refuses_writes(store, cypher):
    store.run(WRITE, {"key": "x", "value": "before"})
    with pytest.raises(ReadOnlyViolation):
        store.run_untrusted_read(cypher, None, row_limit=10, timeout_ms=1000)
    assert store.run(READ, {"key": "x"}) == [{"value": "before"}]


def test_untrusted_read_allows_keywords_inside_strings(store):
    store.run(WRITE, {"key": "CREATE", "value": "SET"})
    res = store.run_untrusted_read(
        "MATCH (n:Meta) WHERE n.key = 'CREATE' RETURN n.value AS v // DELETE", None, row_limit=10, timeout_ms=1000
    )
    assert res.rows == [{"v": "SET"}]


def test_server_side_read_only_lock_holds_without_the_lexical_check(store):
    """GRAPH.RO_QUERY itself refuses writes, so a gap in the lexical check is not a hole."""
    sneaky = Query("test.sneaky", "CREATE (n:Meta {key: 'sneaky'})", read_only=True)
    with pytest.raises(ReadOnlyViolation):
        store.run(sneaky)
    assert store.run(READ, {"key": "sneaky"}) == []


def test_row_cap_reports_truncation(store):
    for i in range(5):
        store.run(WRITE, {"key": f"k{i}", "value": str(i)})
    res = store.run_untrusted_read("MATCH (n:Meta) RETURN n.key AS k", None, row_limit=3, timeout_ms=1000)
    assert len(res.rows) == 3 and res.truncated is True
    res = store.run_untrusted_read("MATCH (n:Meta) RETURN n.key AS k", None, row_limit=10, timeout_ms=1000)
    assert len(res.rows) == 5 and res.truncated is False


def test_store_restarts_a_killed_embedded_server(make_server):
    server = make_server(appendfsync="always")
    s = FalkorDBStore.from_settings(
        Settings(_env_file=None, data_dir=server.data_dir, graph_name="restart", falkordb_appendfsync="always")
    )
    ensure_schema(s)
    for i in range(20):
        s.run(WRITE, {"key": f"k{i}", "value": str(i)})
    old = server.current()
    server.kill()
    assert server.current() is None
    # The next query finds the server gone, restarts it from its append-only file, and succeeds.
    rows = s.run(Query("test.count", "MATCH (n:Meta) RETURN count(n) AS c"))
    assert rows == [{"c": 20}]
    new = server.current()
    assert new is not None and new.pid != old.pid and new.port == old.port
    assert s.health().ok
    s.close()


def test_a_compacted_data_directory_loads_whole_and_its_indexes_are_built_after_the_server_answers(make_server):
    """The embedded server reads its data and answers, then builds the indexes in the background
    (DELAY_INDEXING); whoever needs them waits (`wait_for_indexes`). A compaction after a bulk write
    leaves one base file, so the next start replays nothing."""
    server = make_server(appendfsync="always")
    s = FalkorDBStore.from_settings(
        Settings(_env_file=None, data_dir=server.data_dir, graph_name="compact", falkordb_appendfsync="always"))
    ensure_schema(s)
    s.run(Query("test.bulk", "UNWIND range(1, $n) AS i CREATE (:Meta {key: 'k' + toString(i), value: toString(i)})",
                read_only=False), {"n": 5000})
    assert s.compact() is False  # a tail below the threshold (4 MB): left to Redis's own rewrites
    assert server.compact(s.redis, min_tail_mb=0, wait=True) is True
    files = {p.name: p.stat().st_size for p in (server.data_dir / "appendonly").iterdir()}
    assert any(n.endswith(".base.rdb") for n in files)  # the graph, schema included, in one base file
    assert all(size == 0 for n, size in files.items() if n.endswith(".incr.aof"))  # and nothing to replay
    assert s.redis.execute_command("GRAPH.CONFIG", "GET", "DELAY_INDEXING") == ["DELAY_INDEXING", 1]
    s.close()
    server.stop()
    server.ensure_running()
    assert "Indexes are constructed in the background" in server.log_path.read_text().rsplit("Server initialized", 1)[-1]
    assert wait_for_indexes(s, 60.0) == {} and indexes_building(s) == {}
    assert s.run(READ, {"key": "k4321"}) == [{"value": "4321"}]
    plan = s.redis.execute_command("GRAPH.EXPLAIN", "compact", "MATCH (n:Meta {key: 'k1'}) RETURN n")
    assert any("Node By Index Scan" in str(step) for step in plan)
    s.close()


def test_parameter_rules_are_shared_by_both_backends():
    """kg/params.py: the one rule set; temporals only where the transport carries them typed."""
    import datetime as dt

    from kg.params import MAX_DEPTH, check_params

    assert check_params({"a": 1, "b": ["x", 2.5, None, True]}) is False
    assert check_params({"rows": [{"sku": "X", "n": 1}]}) is True  # a map somewhere
    assert check_params({"d": dt.date(2026, 1, 1)}, temporal=True) is False
    with pytest.raises(QueryError, match="cannot store"):
        check_params({"d": dt.date(2026, 1, 1)})  # FalkorDB's header would write 2026-01-01 as arithmetic
    deep: list = []
    cur = deep
    for _ in range(MAX_DEPTH + 2):
        cur.append([])
        cur = cur[0]
    with pytest.raises(QueryError, match="nested too deeply"):
        check_params({"deep": deep})
    with pytest.raises(QueryError, match="64-bit"):
        check_params({"n": [{"m": 2**64}]})


def test_a_percent_encoded_password_in_the_graph_url_is_decoded():
    store = FalkorDBStore.from_settings(Settings(_env_file=None, graph_url="falkordb://:p%40ss%2Fw@127.0.0.1:6390"))
    assert store._password == "p@ss/w"


def test_data_directory_and_files_are_private(tmp_path):
    """The append-only file holds customers, transcripts and key hashes: the data directory is 0700
    and everything the server writes there is readable by its owner only."""
    import stat

    from kg.backends.embedded import EmbeddedFalkorDB

    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    server = EmbeddedFalkorDB(data, appendfsync="always")
    info = server.ensure_running()
    try:
        import redis

        client = redis.Redis(port=info.port, password=info.password)
        client.execute_command("GRAPH.QUERY", "perm", "CREATE (:Customer {customer_id: 'C1'})")
        client.close()
    finally:
        server.stop()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    written = [p for p in data.rglob("*") if p.is_file() and not p.name.startswith(".server.lock")]
    assert any("appendonly" in str(p) for p in written)
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    for path in (p for p in data.rglob("*") if p.is_dir()):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


# -- the analyst route bounded inside the server -------------------------------------------------------
SEED = Query("test.seed", "UNWIND range(1, 12) AS i CREATE (:Meta {key: 'k' + toString(i), i: i, "
                          "name: 'n' + toString(i % 3)})", read_only=False)


@pytest.mark.parametrize("cypher", [
    "MATCH (n:Meta) RETURN n.i AS z, n.key AS a, 3 AS m ORDER BY z DESC",
    "MATCH (n:Meta) RETURN n.i AS i ORDER BY i DESC SKIP 2 LIMIT 4",
    "MATCH (n:Meta) WHERE n.i < 3 RETURN n.i AS i UNION MATCH (n:Meta) WHERE n.i > 10 RETURN n.i AS i",
    "MATCH (n:Meta) WHERE n.i < 3 RETURN n.i AS i UNION ALL MATCH (n:Meta) WHERE n.i < 3 RETURN n.i AS i",
    "WITH 4 AS top MATCH (n:Meta) WHERE n.i <= top RETURN n.i AS i ORDER BY i",
    "MATCH (n:Meta) RETURN n.name, count(n) AS c ORDER BY n.name",
    "MATCH (n:Meta) RETURN DISTINCT n.name AS name ORDER BY name",
    "MATCH (n:Meta {key: 'k1'}) RETURN n {.key, .i} AS m",
    "MATCH (n:Meta) RETURN n ORDER BY n.i LIMIT 2",
    "CALL db.labels() YIELD label RETURN label",
])
def test_wrapped_queries_answer_like_the_query_itself(store, cypher):
    store.run(SEED)
    raw = store.redis.execute_command("GRAPH.RO_QUERY", store.graph_name, cypher, "--compact")
    own_columns = [h[1] for h in raw[0]]
    res = store.run_untrusted_read(cypher, None, row_limit=100, timeout_ms=5000)
    assert res.columns == own_columns and res.truncated is False
    assert len(res.rows) == len(raw[1])
    assert [list(r) for r in res.rows] == [own_columns] * len(res.rows)
    capped = store.run_untrusted_read(cypher, None, row_limit=2, timeout_ms=5000)
    assert capped.rows == res.rows[:2] and capped.truncated is (len(res.rows) > 2)  # order kept


def _sent_bytes(store) -> int:
    return int(store.redis.info("stats")["total_net_output_bytes"])


def test_the_row_cap_is_applied_inside_the_server(store):
    # Without the cap in the query the server sends all 200,000 rows (about 4 MB) and the store drops
    # all but ten; with it, eleven rows cross the socket.
    before = _sent_bytes(store)
    res = store.run_untrusted_read("UNWIND range(1, 200000) AS x RETURN x", None, row_limit=10, timeout_ms=5000)
    assert res.rows == [{"x": i} for i in range(1, 11)] and res.truncated is True
    assert _sent_bytes(store) - before < 100_000


def test_a_cartesian_product_is_capped_not_materialised(store):
    store.run(Query("test.seed_many", "UNWIND range(1, 300) AS i CREATE (:Meta {i: i})", read_only=False))
    before = _sent_bytes(store)
    res = store.run_untrusted_read("MATCH (a:Meta),(b:Meta),(c:Meta) RETURN a, b, c", None, row_limit=1000,
                                   timeout_ms=5000)
    assert len(res.rows) == 1000 and res.truncated is True
    assert _sent_bytes(store) - before < 2_000_000  # 27 million rows uncapped


def test_a_standalone_search_call_is_refused_and_a_schema_call_runs(store):
    store.run(SEED)
    with pytest.raises(QueryError) as info:
        store.run_untrusted_read("CALL db.idx.fulltext.queryNodes('Product', 'x')", None, row_limit=5, timeout_ms=5000)
    assert info.value.details["reason"] == "must_end_with_return"
    labels = store.run_untrusted_read("CALL db.labels()", None, row_limit=100, timeout_ms=5000)
    assert {"label": "Meta"} in labels.rows


def test_embedded_server_bounds_every_query_in_time_and_memory(make_server, tmp_path):
    from common.errors import QueryMemoryLimit

    server = make_server(timeout_max_ms=60_000, query_mem_capacity=16 * 1024 * 1024)
    info = server.ensure_running()
    import redis

    raw = redis.Redis(port=info.port, password=info.password, decode_responses=True)
    assert raw.execute_command("GRAPH.CONFIG", "GET", "TIMEOUT_MAX")[1] == 60_000
    assert raw.execute_command("GRAPH.CONFIG", "GET", "QUERY_MEM_CAPACITY")[1] == 16 * 1024 * 1024
    settings = Settings(_env_file=None, graph_url="falkordb://embedded", data_dir=server.data_dir, graph_name="bounds")
    store = FalkorDBStore.from_settings(settings)
    try:
        # a longer per-query timeout (the importer asks for ten minutes) is lowered, not refused
        assert store.run(WRITE, {"key": "k", "value": "v"}, timeout_ms=600_000) == [{"key": "k"}]
        with pytest.raises(QueryMemoryLimit):
            store.run_untrusted_read("WITH range(1, 3000000) AS l RETURN size(l) AS n", None, row_limit=5,
                                     timeout_ms=30_000)
        assert store.run(READ, {"key": "k"}) == [{"value": "v"}]  # the server is fine
    finally:
        store.close()


def test_a_socket_timeout_is_a_query_timeout_and_never_resent(make_server):
    import threading
    import time

    import redis

    from common.errors import QueryTimeout

    server = make_server()
    info = server.ensure_running()
    settings = Settings(_env_file=None, graph_url="falkordb://embedded", data_dir=server.data_dir, graph_name="sock")
    store = FalkorDBStore.from_settings(settings)
    try:
        store.run(WRITE, {"key": "k", "value": "v"})
        store.run_untrusted_read("RETURN 1 AS one", None, row_limit=1, timeout_ms=200)  # connected already
        admin = redis.Redis(port=info.port, password=info.password, decode_responses=True)
        calls = int(admin.info("commandstats")["cmdstat_graph.RO_QUERY"]["calls"])
        connections = int(admin.info("stats")["total_connections_received"])
        # The server stops answering for 8 s; the analyst's 200 ms query gives up at its socket
        # timeout (2.2 s), as it would behind a query the server cannot interrupt.
        admin.execute_command("CLIENT", "PAUSE", 8000, "ALL")
        paused_at = time.monotonic()
        with pytest.raises(QueryTimeout):
            store.run_untrusted_read("MATCH (n:Meta) RETURN n.key AS k", None, row_limit=5, timeout_ms=200)
        threading.Event().wait(max(0.0, 8.5 - (time.monotonic() - paused_at)))
        # Sent once, on the connection it had: no reconnect to send it again (a retry would open one
        # per attempt), and the server ran it at most once.
        assert int(admin.info("stats")["total_connections_received"]) == connections
        assert int(admin.info("commandstats")["cmdstat_graph.RO_QUERY"]["calls"]) - calls <= 1
        res = store.run_untrusted_read("MATCH (n:Meta) RETURN n.key AS k", None, row_limit=5, timeout_ms=2000)
        assert res.rows == [{"k": "k"}]  # the store carries on with a fresh connection
    finally:
        store.close()


def test_a_named_query_stopped_at_its_time_limit_is_busy_not_the_callers_fault(store):
    """The server stops one of the product's own queries at its time limit: a retryable
    `GraphBusy` (the API's 503 with Retry-After), never the analyst's 422 `query_timeout`."""
    from common.errors import GraphBusy, QueryTimeout, Retryable

    heavy = Query("test.heavy", "UNWIND range(1, 30000000) AS x WITH x WHERE x % 7 = 0 RETURN count(x) AS n")
    with pytest.raises(GraphBusy) as caught:
        store.run(heavy, timeout_ms=50)
    assert isinstance(caught.value, Retryable) and not isinstance(caught.value, QueryTimeout)
    assert caught.value.details == {"query": "test.heavy"}
    # the analyst's own query with the same text is the caller's: a QueryTimeout
    with pytest.raises(QueryTimeout):
        store.run_untrusted_read(heavy.text_for("falkordb"), None, row_limit=5, timeout_ms=50)
    assert store.run(get("system.ping")) == [{"ok": 1}]  # the connection is still good
