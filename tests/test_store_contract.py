"""One contract, every graph backend: the same tests against FalkorDB (native protocol, the conftest
server) and the Neo4j store (official driver, over FalkorDB's Bolt listener).

Only what both can do is here: named-query round trips, the analyst route's read-only refusals,
row caps, parameters that stay data, refused parameters, value shapes, error classes, health.
Backend-specific behaviour lives in tests/test_graph_store.py and tests/test_neo4j_backend.py.

`Backend.publish()` is a no-op on FalkorDB; over Bolt it copies the graph that WRITE-mode queries
reach into the one READ-mode queries reach (see kg/backends/neo4j.py on FalkorDB's graph keys).
`Backend.fingerprint()` reads the server directly (every graph the store can touch), so a refused
write is checked on the server, not through the store under test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from common.errors import QueryError, ReadOnlyViolation
from kg.backends.embedded import EmbeddedFalkorDB, free_bolt_port
from kg.queries import Query, get
from kg.scan import scan
from kg.store import GraphStore
from tests.bolt_support import BoltGraph

WRITE = Query("test.write", "CREATE (n:Meta {key: $key, value: $value}) RETURN n.key AS key", read_only=False,
              idempotent=False)
UPSERT = Query("test.upsert", "MERGE (n:Meta {key: $key}) SET n.value = $value RETURN n.key AS key", read_only=False)
READ = Query("test.read", "MATCH (n:Meta {key: $key}) RETURN n.value AS value")
COUNT = Query("test.count", "MATCH (n:Meta) RETURN count(n) AS c")
FINGERPRINT = "MATCH (n) RETURN labels(n)[0], n.key, n.value, n.hacked, n.x ORDER BY n.key"


@dataclass
class Backend:
    name: str
    store: GraphStore
    publish: Callable[[], None]
    fingerprint: Callable[[], object]

    def seed(self, n: int) -> None:
        for i in range(n):
            self.store.run(WRITE, {"key": f"k{i}", "value": str(i)})
        self.publish()


@pytest.fixture(scope="module")
def bolt_graph(tmp_path_factory) -> Iterator[BoltGraph]:
    harness = BoltGraph(EmbeddedFalkorDB(tmp_path_factory.mktemp("falkordb_bolt"), bolt_port=free_bolt_port()))
    yield harness
    harness.shutdown()


@pytest.fixture(params=["falkordb", pytest.param("neo4j", marks=pytest.mark.bolt)])
def backend(request) -> Backend:
    if request.param == "falkordb":
        store = request.getfixturevalue("store")  # conftest: schema-ready, fresh graph name
        graph = store.graph_name

        def native_fingerprint() -> object:
            r = store.redis
            return (r.execute_command("GRAPH.RO_QUERY", graph, FINGERPRINT)[1],
                    r.execute_command("GRAPH.RO_QUERY", graph, "CALL db.indexes() YIELD label RETURN count(*)")[1])

        return Backend("falkordb", store, lambda: None, native_fingerprint)

    bolt: BoltGraph = request.getfixturevalue("bolt_graph")
    bolt.ready()
    assert bolt.store is not None

    def bolt_fingerprint() -> object:
        return [(bolt.raw(g, FINGERPRINT), bolt.raw(g, "CALL db.indexes() YIELD label RETURN count(*)"))
                for g in (BoltGraph.WRITE_GRAPH, BoltGraph.READ_GRAPH)]

    return Backend("neo4j", bolt.store, bolt.publish, bolt_fingerprint)


# -- named queries ---------------------------------------------------------------------------------
def test_scans_return_every_product_once_in_pages(backend):
    """kg/scan.py: pages continue after the last cursor (node ids on FalkorDB, skus on Neo4j), each
    page bounded; products removed and added between two scans (FalkorDB reuses the ids of deleted
    nodes) are all seen, none twice."""
    s = backend.store
    make = Query("test.product", "CREATE (p:Product {sku: $sku, name: $sku}) RETURN p.sku AS key", read_only=False,
                 idempotent=False)
    drop = Query("test.drop", "MATCH (p:Product {sku: $sku}) DELETE p RETURN 1 AS key", read_only=False)
    for i in range(23):
        s.run(make, {"sku": f"s{i:02d}"})
        s.run(WRITE, {"key": f"k{i}", "value": "other nodes share the id space"})
    backend.publish()

    def scanned() -> list[str]:
        pages = list(scan(s, get("linking.product_fingerprints"), limit=5))
        assert all(0 < len(p) <= 5 for p in pages)
        return [r["sku"] for p in pages for r in p]

    first = scanned()
    assert sorted(first) == [f"s{i:02d}" for i in range(23)] and len(set(first)) == 23
    for i in (0, 7, 8, 22):
        s.run(drop, {"sku": f"s{i:02d}"})
    for i in range(23, 29):
        s.run(make, {"sku": f"s{i:02d}"})
    backend.publish()
    again = scanned()
    assert sorted(again) == sorted({f"s{i:02d}" for i in range(29)} - {"s00", "s07", "s08", "s22"})
    assert len(again) == len(set(again)) == 25


def test_named_queries_round_trip(backend):
    s = backend.store
    assert s.run(get("system.ping")) == [{"ok": 1}]
    assert s.run(WRITE, {"key": "k1", "value": "v1"}) == [{"key": "k1"}]
    assert s.run(UPSERT, {"key": "k2", "value": "v2"}) == [{"key": "k2"}]
    assert s.run(UPSERT, {"key": "k2", "value": "v3"}) == [{"key": "k2"}]
    backend.publish()
    assert s.run(READ, {"key": "k1"}) == [{"value": "v1"}]
    assert s.run(READ, {"key": "k2"}) == [{"value": "v3"}]
    assert s.run(READ, {"key": "missing"}) == []
    assert s.run(COUNT) == [{"c": 2}]


@pytest.mark.parametrize(
    "value",
    [
        'x"}) MATCH (n) DETACH DELETE n //',
        "x}) MATCH (n) DETACH DELETE n RETURN 1 AS key //",
        "line\nbreak\ttab",
        "ünïcødé ✓ 😀",
        "$key {value} `key`",
        "CREATE (n:Meta) SET n.key = 1",
    ],
)
def test_parameters_stay_data(backend, value):
    # Quotes and backslashes are left out: FalkorDB's Bolt listener splices parameters into the
    # text (tests/test_neo4j_backend.py::test_falkordb_bolt_splices_parameters_into_the_query_text).
    s = backend.store
    s.run(WRITE, {"key": "keep", "value": "safe"})
    s.run(WRITE, {"key": value, "value": value})
    backend.publish()
    assert s.run(READ, {"key": value}) == [{"value": value}]
    assert s.run(READ, {"key": "keep"}) == [{"value": "safe"}]
    assert s.run(COUNT) == [{"c": 2}]


@pytest.mark.parametrize("params", [{"key": "a\x00b"}, {"key": math.nan}, {"key": -math.inf},
                                    {"key": {"bad`key": 1}}, {"key": ["ok", {"": 1}]}, {"key": 2**63},
                                    {"key": [1, -(2**63) - 1]}, {"key": object()}, {"key": {1, 2}},
                                    {"key": b"bytes"}, {"": "empty name"}])
def test_unsafe_parameters_are_refused(backend, params):
    before = backend.fingerprint()
    with pytest.raises(QueryError):
        backend.store.run(UPSERT, params)
    with pytest.raises(QueryError):
        backend.store.run_untrusted_read("RETURN $key AS k", params, row_limit=1, timeout_ms=1000)
    assert backend.fingerprint() == before


def test_values_have_the_same_shape(backend):
    s = backend.store
    s.run(Query("test.rel", "CREATE (:Meta {key: 'a', n: 1})-[:REL {w: 2.5, tags: ['x', 'y']}]->(:Meta {key: 'b'})",
                read_only=False))
    backend.publish()
    row = s.run(Query("test.values", """
        MATCH p = (a:Meta {key: 'a'})-[r:REL]->(b)
        RETURN a, r, p, [a.key, b.key] AS keys, {k: a.n, f: 0.125, none: null, yes: true} AS m,
               19.99 AS price, -7 AS i, 'text' AS t"""))
    a = {"_labels": ["Meta"], "key": "a", "n": 1}
    b = {"_labels": ["Meta"], "key": "b"}
    r = {"_type": "REL", "w": 2.5, "tags": ["x", "y"]}
    assert row == [{"a": a, "r": r, "p": {"nodes": [a, b], "edges": [r]}, "keys": ["a", "b"],
                    "m": {"k": 1, "f": 0.125, "none": None, "yes": True}, "price": 19.99, "i": -7, "t": "text"}]
    echoed = s.run(Query("test.echo", "RETURN $v AS v"), {"v": [1, 19.99, True, None, "s", {"k": [2]}]})
    assert echoed == [{"v": [1, 19.99, True, None, "s", {"k": [2]}]}]


# -- the analyst route -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cypher",
    [
        "CREATE (n:Meta {key: 'x'})",
        "MERGE (n:Meta {key: 'x'})",
        "MATCH (n) SET n.hacked = true",
        "MATCH (n) DELETE n",
        "MATCH (n) DETACH DELETE n",
        "MATCH (n) REMOVE n.value",
        "DROP INDEX ON :Meta(key)",
        "CREATE INDEX FOR (n:Meta) ON (n.value)",
        "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
        "CALL db.idx.fulltext.createNodeIndex('Meta', 'value')",
        "CALL db.idx.fulltext.drop('Meta')",
        "CALL dbms.procedures()",
        "match (n) /* comment */ set n.x = 1",
        "MATCH (n) FOREACH (x IN [1] | SET n.x = x)",
        "MATCH (n) CALL { WITH n DELETE n } IN TRANSACTIONS",
        "",
        "   ",
    ],
)
def test_analyst_route_refuses_writes(backend, cypher):
    backend.seed(2)
    before = backend.fingerprint()
    with pytest.raises(ReadOnlyViolation):
        backend.store.run_untrusted_read(cypher, None, row_limit=10, timeout_ms=1000)
    assert backend.fingerprint() == before


def test_analyst_route_reads(backend):
    backend.seed(3)
    s = backend.store
    res = s.run_untrusted_read("MATCH (n:Meta) WHERE n.key = 'CREATE' OR n.key = $k RETURN n.value AS v // SET",
                               {"k": "k1"}, row_limit=10, timeout_ms=1000)
    assert (res.columns, res.rows, res.truncated, res.query_name) == (["v"], [{"v": "1"}], False, "analyst.adhoc")
    labels = s.run_untrusted_read("CALL db.labels() YIELD label RETURN label", None, row_limit=100, timeout_ms=1000)
    assert {"label": "Meta"} in labels.rows


def test_analyst_route_caps_rows(backend):
    backend.seed(5)
    s = backend.store
    q = "MATCH (n:Meta) RETURN n.key AS k ORDER BY k"
    res = s.run_untrusted_read(q, None, row_limit=3, timeout_ms=1000)
    assert (res.columns, res.rows, res.truncated) == (["k"], [{"k": "k0"}, {"k": "k1"}, {"k": "k2"}], True)
    res = s.run_untrusted_read(q, None, row_limit=5, timeout_ms=1000)
    assert len(res.rows) == 5 and res.truncated is False
    res = s.run_untrusted_read("UNWIND range(1, 2000) AS i RETURN i", None, row_limit=1, timeout_ms=1000)
    assert res.rows == [{"i": 1}] and res.truncated is True


# -- errors and health -----------------------------------------------------------------------------
def test_rejected_queries_are_query_errors(backend):
    s = backend.store
    with pytest.raises(QueryError) as info:
        s.run(Query("test.bad", "MATCH (n RETURN n"))
    assert type(info.value) is QueryError and info.value.details["query"] == "test.bad"
    with pytest.raises(QueryError) as info:
        s.run_untrusted_read("MATCH (n RETURN n", None, row_limit=1, timeout_ms=1000)
    assert type(info.value) is QueryError
    assert s.run(get("system.ping")) == [{"ok": 1}]


def test_health(backend):
    h = backend.store.health()
    assert h.ok is True and h.backend == backend.name and h.detail == ""
