"""The Neo4j store (official driver) against a real server that speaks Bolt: FalkorDB's Bolt listener
on a throwaway embedded server (tests/bolt_support.py explains the harness).

What that listener does differently from Neo4j is listed in `kg.backends.neo4j`'s docstring; the
`test_falkordb_bolt_*` tests pin those findings down, so a FalkorDB upgrade that changes them
fails here and the docstring gets updated. What only a real Neo4j can check is listed there too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC

import pytest

from common.errors import ConfigError, GraphUnavailable, QueryError, ReadOnlyViolation
from common.settings import Settings
from kg.backends.embedded import EmbeddedFalkorDB, free_bolt_port, free_port
from kg.backends.neo4j import Neo4jStore, _value
from kg.queries import Query, get
from kg.schema import neo4j_statements
from kg.store import open_store
from tests.bolt_support import DATABASE, BoltGraph

pytestmark = pytest.mark.bolt

WRITE = Query("test.write", "CREATE (n:Meta {key: $key, value: $value}) RETURN n.key AS key", read_only=False,
              idempotent=False)
UPSERT = Query("test.upsert", "MERGE (n:Meta {key: $key}) SET n.value = $value RETURN n.key AS key", read_only=False)
READ = Query("test.read", "MATCH (n:Meta {key: $key}) RETURN n.value AS value")
COUNT = Query("test.count", "MATCH (n:Meta) RETURN count(n) AS c")


@pytest.fixture(scope="module")
def bolt_graph(tmp_path_factory) -> Iterator[BoltGraph]:
    harness = BoltGraph(EmbeddedFalkorDB(tmp_path_factory.mktemp("falkordb_bolt"), bolt_port=free_bolt_port()))
    yield harness
    harness.shutdown()


@pytest.fixture
def bolt(bolt_graph: BoltGraph) -> BoltGraph:
    bolt_graph.ready()
    return bolt_graph


@pytest.fixture
def neo(bolt: BoltGraph) -> Neo4jStore:
    assert bolt.store is not None
    return bolt.store


def _seed(neo: Neo4jStore, bolt: BoltGraph, n: int) -> None:
    for i in range(n):
        neo.run(WRITE, {"key": f"k{i}", "value": str(i)})
    bolt.publish()


# -- named queries ---------------------------------------------------------------------------------
def test_named_queries_round_trip(neo, bolt):
    assert neo.run(get("system.ping")) == [{"ok": 1}]
    assert neo.run(WRITE, {"key": "k1", "value": "v1"}) == [{"key": "k1"}]
    assert neo.run(UPSERT, {"key": "k2", "value": "v2"}) == [{"key": "k2"}]
    assert neo.run(UPSERT, {"key": "k2", "value": "v3"}) == [{"key": "k2"}]
    assert bolt.raw("db", "MATCH (n:Meta) RETURN n.key, n.value ORDER BY n.key") == [[b"k1", b"v1"], [b"k2", b"v3"]]
    bolt.publish()
    assert neo.run(READ, {"key": "k1"}) == [{"value": "v1"}]
    assert neo.run(READ, {"key": "k2"}) == [{"value": "v3"}]
    assert neo.run(COUNT) == [{"c": 2}]


def test_read_only_queries_use_read_mode_and_writes_write_mode(neo, bolt):
    """FalkorDB's graph-key quirk makes the access mode visible: READ sessions send `mode` first."""
    neo.run(WRITE, {"key": "w", "value": "1"})
    assert bolt.graphs() == {"db"}
    assert neo.run(COUNT) == [{"c": 0}]  # ran in READ mode: graph `mode`, not `db`
    assert bolt.graphs() == {"db", "mode"}
    res = neo.run_untrusted_read("MATCH (n) RETURN count(n) AS c", None, row_limit=10, timeout_ms=1000)
    assert res.rows == [{"c": 0}]


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
def test_parameters_stay_data(neo, bolt, value):
    neo.run(WRITE, {"key": "keep", "value": "safe"})
    neo.run(WRITE, {"key": value, "value": value})
    bolt.publish()
    assert neo.run(READ, {"key": value}) == [{"value": value}]
    assert neo.run(READ, {"key": "keep"}) == [{"value": "safe"}]
    assert neo.run(COUNT) == [{"c": 2}]


def test_bad_parameters_are_refused_before_the_server(neo, bolt):
    for params in ({"key": "a\x00b"}, {"key": float("nan")}, {"key": math.inf}, {"key": {"bad`key": 1}},
                   {"key": 2**64}, {"key": {1, 2}}):
        with pytest.raises(QueryError):
            neo.run(READ, params)
    assert bolt.graphs() == set()  # nothing reached the server


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
        "CALL db.createLabel('Hacked')",
        "CALL dbms.security.createUser('x', 'y', false)",
        "CALL apoc.create.node(['X'], {})",
        "match (n) /* comment */ set n.x = 1",
        "MATCH (n) FOREACH (x IN [1] | SET n.x = x)",
        "MATCH (n) CALL { WITH n DELETE n } IN TRANSACTIONS",
    ],
)
def test_untrusted_read_refuses_writes(neo, bolt, cypher):
    _seed(neo, bolt, 2)
    before = bolt.node_counts()
    with pytest.raises(ReadOnlyViolation):
        neo.run_untrusted_read(cypher, None, row_limit=10, timeout_ms=1000)
    assert bolt.node_counts() == before == (2, 2)
    assert bolt.raw("mode", "MATCH (n) WHERE n.hacked OR n.x = 1 OR n.value IS NULL RETURN n") == []
    assert bolt.raw("mode", "CALL db.indexes() YIELD label RETURN label") == []


def test_untrusted_read_allows_keywords_inside_strings_and_comments(neo, bolt):
    neo.run(WRITE, {"key": "CREATE", "value": "SET"})
    bolt.publish()
    res = neo.run_untrusted_read(
        "MATCH (n:Meta) WHERE n.key = 'CREATE' RETURN n.value AS v // DELETE", None, row_limit=10, timeout_ms=1000
    )
    assert res.columns == ["v"] and res.rows == [{"v": "SET"}] and res.truncated is False


def test_row_cap_reports_truncation(neo, bolt):
    _seed(neo, bolt, 5)
    q = "MATCH (n:Meta) RETURN n.key AS k ORDER BY k"
    res = neo.run_untrusted_read(q, None, row_limit=3, timeout_ms=1000)
    assert res.rows == [{"k": "k0"}, {"k": "k1"}, {"k": "k2"}] and res.truncated is True
    assert res.columns == ["k"] and res.query_name == "analyst.adhoc"
    res = neo.run_untrusted_read(q, None, row_limit=5, timeout_ms=1000)
    assert len(res.rows) == 5 and res.truncated is False
    res = neo.run_untrusted_read("UNWIND range(1, 3000) AS i RETURN i", None, row_limit=2, timeout_ms=1000)
    assert res.rows == [{"i": 1}, {"i": 2}] and res.truncated is True
    # The stream was abandoned cleanly: the connection serves the next query.
    assert neo.run_untrusted_read("RETURN 7 AS x", None, row_limit=1, timeout_ms=1000).rows == [{"x": 7}]


def test_untrusted_read_passes_parameters(neo, bolt):
    _seed(neo, bolt, 3)
    res = neo.run_untrusted_read("MATCH (n:Meta) WHERE n.key = $k RETURN n.value AS v", {"k": "k1"},
                                 row_limit=10, timeout_ms=1000)
    assert res.rows == [{"v": "1"}]


# -- errors, health, configuration -----------------------------------------------------------------
def test_syntax_errors_are_query_errors(neo, bolt):
    with pytest.raises(QueryError) as info:
        neo.run(Query("test.bad", "MATCH (n RETURN n"))
    assert not isinstance(info.value, ReadOnlyViolation) and info.value.details["query"] == "test.bad"
    with pytest.raises(QueryError):
        neo.run_untrusted_read("MATCH (n RETURN n", None, row_limit=10, timeout_ms=1000)
    with pytest.raises(QueryError):
        neo.run(Query("test.bad_write", "CREATE (n:Meta {key: })", read_only=False))
    assert neo.run(get("system.ping")) == [{"ok": 1}]  # the connection recovered


def test_health(neo):
    h = neo.health()
    assert h.ok and h.backend == "neo4j"
    assert h.extra["database"] == DATABASE and h.extra["server"].startswith("Neo4j/")


def test_graph_unavailable_when_nothing_listens():
    dead = Neo4jStore(uri=f"bolt://127.0.0.1:{free_port()}", database=DATABASE, retries=2, connect_timeout_s=1)
    sessions = 0
    real = dead._session

    def counting(**kw):
        nonlocal sessions
        sessions += 1
        return real(**kw)

    dead._session = counting  # type: ignore[method-assign]  # a spy: the real driver still runs
    try:
        with pytest.raises(GraphUnavailable):
            dead.run(READ, {"key": "x"})
        assert sessions == 3  # read-only: retried (retries=2)
        sessions = 0
        with pytest.raises(GraphUnavailable):
            dead.run(WRITE, {"key": "x", "value": "y"})
        assert sessions == 1  # not idempotent: one attempt only
        sessions = 0
        with pytest.raises(GraphUnavailable):
            dead.run(UPSERT, {"key": "x", "value": "y"})
        assert sessions == 3  # idempotent write: retried
        h = dead.health()
        assert not h.ok and h.detail == "the graph database is unavailable"
    finally:
        dead.close()


def test_store_survives_a_server_restart(neo, bolt):
    neo.run(WRITE, {"key": "before", "value": "1"})
    old = bolt.info
    bolt.server.kill()
    new = bolt.restart()  # keeps the store: its pool holds a dead connection the driver must drop
    assert new.pid != old.pid and new.bolt_port == old.bolt_port
    # A non-idempotent write on the stale pool: the driver finds the connection dead before sending.
    assert neo.run(WRITE, {"key": "after", "value": "2"}) == [{"key": "after"}]
    assert bolt.raw("db", "MATCH (n:Meta) RETURN n.key") == [[b"after"]]  # no persistence on Bolt servers
    assert neo.health().ok


def test_execute_schema_runs_statements_in_write_mode(neo, bolt):
    neo.execute_schema(["CREATE INDEX FOR (n:Meta) ON (n.value)"])  # FalkorDB's dialect
    assert bolt.raw("db", "CALL db.indexes() YIELD label, properties UNWIND properties AS p RETURN label, p") == [
        [b"Meta", b"value"]
    ]
    # Neo4j's DDL (constraints, IF NOT EXISTS, full-text ON EACH) is not FalkorDB Cypher: a real error
    # surfaces rather than being mistaken for "already exists".
    with pytest.raises(QueryError):
        neo.execute_schema(neo4j_statements()[:1])


def test_from_settings_and_dispatch_make_no_connection():
    s = open_store(Settings(_env_file=None, graph_url="neo4j://ann:s%40cret@db.example:7687", graph_name=""))
    assert isinstance(s, Neo4jStore)
    assert s.uri == "neo4j://db.example:7687" and s.database is None
    assert (s._user, s._password) == ("ann", "s@cret")
    assert s._driver_obj is None  # nothing built until the first query
    s = Neo4jStore.from_settings(Settings(_env_file=None, graph_url="bolt+s://db.example", graph_name="shop",
                                          neo4j_user="u", neo4j_password="p", graph_retries=5))
    assert (s.uri, s.database, s._user, s._password, s._retries) == ("bolt+s://db.example", "shop", "u", "p", 5)
    s = Neo4jStore.from_settings(Settings(_env_file=None, graph_url="bolt://localhost:7687"))
    assert s._password is None  # no password: no authentication


@pytest.mark.parametrize("uri", ["bolt+x://db.example", "bolt://db.example:notaport"])
def test_an_unusable_uri_is_a_config_error(uri):
    s = Neo4jStore(uri=uri, retries=0, connect_timeout_s=1)
    with pytest.raises(ConfigError):
        s.run(READ, {"key": "x"})
    h = s.health()
    assert not h.ok and "GRAPH_URL" in h.detail
    s.close()


# -- values ----------------------------------------------------------------------------------------
def test_graph_values_come_back_as_plain_python(neo, bolt):
    neo.run(Query("test.rel", "CREATE (:Meta {key: 'a', n: 1})-[:REL {w: 2.5, tags: ['x', 'y']}]->(:Meta {key: 'b'})",
                  read_only=False))
    bolt.publish()
    row = neo.run(Query("test.values", """
        MATCH p = (a:Meta {key: 'a'})-[r:REL]->(b)
        RETURN a, r, p, [a.key, b.key] AS keys, {k: a.n, f: 0.125, none: null, yes: true} AS m""")) [0]
    a = {"_labels": ["Meta"], "key": "a", "n": 1}
    b = {"_labels": ["Meta"], "key": "b"}
    r = {"_type": "REL", "w": 2.5, "tags": ["x", "y"]}
    assert row == {"a": a, "r": r, "p": {"nodes": [a, b], "edges": [r]}, "keys": ["a", "b"],
                   "m": {"k": 1, "f": 0.125, "none": None, "yes": True}}


def test_driver_only_values_are_normalised():
    """Types FalkorDB's Bolt cannot return (temporal values kill it): converted without a server."""
    from neo4j.spatial import CartesianPoint, WGS84Point
    from neo4j.time import Date, DateTime, Duration, Time
    from neo4j.vector import Vector

    got = _value({
        "dt": DateTime(2026, 11, 2, 14, 5, 0, tzinfo=UTC),
        "d": Date(2026, 11, 2),
        "t": Time(14, 5),
        "dur": Duration(days=3, hours=2),
        "geo": WGS84Point((13.4, 52.5)),
        "xyz": CartesianPoint((1.0, 2.0, 3.0)),
        "vec": Vector.from_native([0.5, 1.5], "f32"),
        "nested": [Date(2026, 1, 1), (1, 2)],
    })
    assert got == {
        "dt": "2026-11-02T14:05:00.000000000+00:00",
        "d": "2026-11-02",
        "t": "14:05:00.000000000",
        "dur": "P3DT2H",
        "geo": {"longitude": 13.4, "latitude": 52.5},
        "xyz": {"x": 1.0, "y": 2.0, "z": 3.0},
        "vec": [0.5, 1.5],
        "nested": ["2026-01-01", [1, 2]],
    }


# -- FalkorDB's Bolt listener as it is (see kg.backends.neo4j) -------------------------------------
def test_falkordb_bolt_ignores_read_mode_and_explain_so_the_lexical_check_is_the_lock(neo, bolt):
    sneaky = Query("test.sneaky", "CREATE (n:Meta {key: 'sneaky'})", read_only=True)
    neo.run(sneaky)  # READ mode, yet FalkorDB writes (Neo4j would refuse: AccessMode)
    assert bolt.raw("mode", "MATCH (n:Meta) RETURN n.key") == [[b"sneaky"]]
    assert neo.checks_query_types is None
    with pytest.raises(ReadOnlyViolation):
        neo.run_untrusted_read("CREATE (n:Meta {key: 'sneaky2'})", None, row_limit=10, timeout_ms=1000)
    neo.run_untrusted_read("RETURN 1 AS x", None, row_limit=10, timeout_ms=1000)
    assert neo.checks_query_types is False  # the EXPLAIN probe returned a row: never EXPLAIN here
    assert bolt.raw("mode", "MATCH (n:Meta) RETURN n.key") == [[b"sneaky"]]


def test_falkordb_bolt_splices_parameters_into_the_query_text(neo, bolt):
    """Why the Bolt port is for tests only: a quote in a parameter value becomes Cypher."""
    assert neo.run(Query("test.echo", "RETURN $v AS v"), {"v": "x' RETURN 1 AS injected //"}) == [{"injected": 1}]
    with pytest.raises(QueryError):
        neo.run(Query("test.echo", "RETURN $v AS v"), {"v": "it's"})


def test_falkordb_bolt_picks_the_graph_from_the_first_extra_key(neo, bolt):
    """The graph-name finding: `db` for WRITE with a database, `mode` for READ, `falkordb` with no extras."""
    import neo4j

    drv = neo._driver()  # the store's own driver: a second one would stall the server when closed
    with drv.session(database="any_name") as s:
        s.run("CREATE (:Probe)").consume()
    with drv.session(database="other_name", default_access_mode=neo4j.READ_ACCESS) as s:
        s.run("CREATE (:Probe)").consume()
    with drv.session() as s:
        s.run("CREATE (:Probe)").consume()
    assert bolt.graphs() == {"db", "mode", "falkordb"}
    bolt._delete("falkordb")


def test_the_linking_index_queries_write_and_read_through_the_driver(neo, bolt):
    """kg/queries/link_index.py through the official driver (small entries: this listener dies on a parameter
    over ~4 KiB): a first build's meta, one change written on the version read, one refused on an older
    version, entries read back per label with a long list read as its length."""
    from kg.queries import link_index
    from nlu.linking import graph_index as G
    from nlu.linking.index import CappedPosting, IndexDelta

    assert neo.run(link_index.START) == [{"version": 0}]
    bolt.publish()  # (this listener writes and reads different graphs: `publish` copies one to the other)
    meta = G.read_meta(neo)
    assert meta is not None and (meta.version, meta.complete) == (0, False)
    delta = IndexDelta({"exact": {"aurora x2": ("NA-1", "NA-2")}, "postings": {"aurora": (0,), "x2": (0, 1, 2)},
                        "fps": {"NA-1": "h1"}}, next_lid=3)
    assert G.write_delta(neo, 0, delta, None, catalog=1, stamp="2026-12-07T00:00:00Z", watermark=None) == 1
    assert G.write_delta(neo, 0, delta, None, catalog=2, stamp=None, watermark=None) is None  # read version 0: moved
    bolt.publish()
    meta = G.read_meta(neo)
    assert (meta.version, meta.catalog, meta.products, meta.next_lid, meta.complete) == (1, 1, 1, 3, True)
    got = G._Reader(neo, cap=2).read([("exact", "aurora x2"), ("postings", "aurora"), ("postings", "x2"),
                                      ("fps", "NA-1"), ("line_of", "NA-1")])
    assert got[("exact", "aurora x2")] == ("NA-1", "NA-2") and got[("postings", "aurora")] == (0,)
    assert isinstance(got[("postings", "x2")], CappedPosting) and len(got[("postings", "x2")]) == 3
    assert got[("fps", "NA-1")] == "h1" and ("line_of", "NA-1") not in got
