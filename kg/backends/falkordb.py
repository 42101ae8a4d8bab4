"""FalkorDB backend (the embedded default, or any FalkorDB server by URL).

Read-only queries go through `GRAPH.RO_QUERY`, which the server itself refuses to let write.
Connection failures are retried with a short backoff; for the embedded server the store first
makes sure the server is running again (it restarts a crashed one from its append-only file), so a
killed server costs the caller a retry, not a restart of the application. Only queries marked
idempotent are retried after they may have reached the server.

The analyst route (`run_untrusted_read`) is bounded inside the server: the text runs as
`CALL { <query> } RETURN * LIMIT n+1` (kg/readonly.py `bound_rows` has the rule), with the
analyst's time limit as the query's TIMEOUT, on a client of its own whose socket gives up a little
after that limit. It is never retried: a heavy query sent twice is twice the load, and a socket
timeout is reported as the query's timeout (`QueryTimeout`), not as a lost server. A named query
the server stops at its time limit is `GraphBusy` (retryable): its parameters are not at fault. The embedded
server itself runs with TIMEOUT_MAX and QUERY_MEM_CAPACITY (settings), which bound every query;
the store reads TIMEOUT_MAX on connecting and lowers longer per-query timeouts to it (the server
refuses a query whose TIMEOUT exceeds it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlparse

import orjson
import redis
from falkordb import FalkorDB
from falkordb.edge import Edge
from falkordb.helpers import stringify_param_value
from falkordb.node import Node
from falkordb.path import Path as GraphPath
from redis.backoff import NoBackoff
from redis.retry import Retry

from common.errors import (
    GraphError,
    GraphUnavailable,
    QueryError,
    QueryMemoryLimit,
    QueryTimeout,
    ReadOnlyViolation,
)
from common.settings import Settings
from kg.backends.embedded import EmbeddedFalkorDB
from kg.params import check_params
from kg.queries import Query
from kg.readonly import bound_rows, check_read_only
from kg.store import ANALYST_QUERY, Health, ReadResult, Row, analyst_socket_timeout_s, timeout_error

log = logging.getLogger(__name__)

_TRANSIENT = (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError)
_ALREADY = ("already indexed", "already exists", "constraint already", "already been created")


class FalkorDBStore:
    backend = "falkordb"

    def __init__(
        self,
        *,
        graph_name: str,
        host: str = "127.0.0.1",
        port: int | None = None,
        password: str | None = None,
        embedded: EmbeddedFalkorDB | None = None,
        retries: int = 3,
        default_timeout_ms: int = 5000,
    ) -> None:
        self.graph_name = graph_name
        self._host = host
        self._port = port
        self._password = password
        self.embedded = embedded
        self._retries = retries
        self._default_timeout_ms = default_timeout_ms
        self._db: FalkorDB | None = None
        self._graph = None
        self._lock = threading.Lock()
        self._timeout_max_ms = 0  # the server's TIMEOUT_MAX, read on connecting (0: none)
        self._analyst: dict[float, Any] = {}  # socket timeout -> the analyst route's own client

    @classmethod
    def from_settings(cls, settings: Settings) -> FalkorDBStore:
        pw = settings.graph_password.get_secret_value() if settings.graph_password else None
        common = dict(
            graph_name=settings.graph_name,
            retries=settings.graph_retries,
            default_timeout_ms=settings.query_timeout_ms,
        )
        if settings.embedded_graph:
            server = EmbeddedFalkorDB(
                settings.data_dir,
                port=settings.falkordb_port,
                appendfsync=settings.falkordb_appendfsync,
                timeout_max_ms=settings.falkordb_timeout_max_ms,
                query_mem_capacity=settings.falkordb_query_mem_capacity_mb * 1024 * 1024,
            )
            return cls(embedded=server, **common)
        parsed = urlparse(settings.graph_url)
        return cls(host=parsed.hostname or "127.0.0.1", port=parsed.port or 6379,
                   password=unquote(parsed.password) if parsed.password else pw, **common)

    # -- connection --------------------------------------------------------------------------------
    def _connect(self):
        graph = self._graph
        if graph is not None:
            return graph
        with self._lock:  # API workers run several threads over one store
            if self._graph is None:
                if self.embedded is not None:
                    info = self.embedded.ensure_running()
                    self._port, self._password = info.port, info.password
                db = FalkorDB(
                    host=self._host,
                    port=self._port,
                    password=self._password,
                    socket_timeout=30,
                    socket_connect_timeout=2,
                    # No silent reconnect-and-resend inside redis-py: a resent write may run twice,
                    # and a Graph object reconnected to a restarted server decodes results with a
                    # stale property-key cache. Failures surface here and get a fresh client.
                    retry=Retry(NoBackoff(), 0),
                )
                self._timeout_max_ms = _timeout_max(db.connection)
                self._db = db
                self._graph = db.select_graph(self.graph_name)
            return self._graph

    def _analyst_client(self, socket_timeout: float):
        """The analyst route's client: its own connections (a heavy query never holds one the chat
        needs) with a socket timeout a little past the query's own limit."""
        self._connect()  # the server is up, and its port and password known
        with self._lock:
            graph = self._analyst.get(socket_timeout)
            if graph is None:
                db = FalkorDB(host=self._host, port=self._port, password=self._password,
                              socket_timeout=socket_timeout, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))
                graph = self._analyst[socket_timeout] = db.select_graph(self.graph_name)
            return graph

    def _drop_analyst(self, failed=None) -> None:
        with self._lock:
            dropped = [(k, g) for k, g in self._analyst.items() if failed is None or g is failed]
            for k, _ in dropped:
                del self._analyst[k]
        for _, graph in dropped:
            try:
                graph.client.connection.connection_pool.disconnect()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail any way
                pass

    def _drop_connection(self, failed=None) -> None:
        """Forget the client that failed so the next call reconnects (and restarts the embedded
        server if it died). Only the client that failed is forgotten: another thread may already
        have replaced it. The old pool is disconnected so that threads still holding the old
        client fail (a closed socket counts as transient) and come back for the new one."""
        with self._lock:
            if failed is not None and self._graph is not failed:
                return
            db, self._db, self._graph = self._db, None, None
        if failed is None or self.embedded is not None:
            self._drop_analyst()  # closed, or the server may come back elsewhere: reconnect both
        if db is None:
            return
        try:
            if failed is None:  # an explicit close()
                db.connection.close()
            else:  # make every thread still holding the old client fail over to the new one
                db.connection.connection_pool.disconnect()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail any way
            pass

    @property
    def redis(self) -> redis.Redis:
        """The server's Redis connection (dialogue state and rate limits live beside the graph)."""
        self._connect()
        assert self._db is not None
        return self._db.connection

    # -- queries -----------------------------------------------------------------------------------
    def run(self, query: Query, params: Mapping[str, Any] | None = None, *, timeout_ms: int | None = None) -> list[Row]:
        text = _params_header(params) + query.text_for(self.backend)
        res = self._call(query.name, text, None, read_only=query.read_only,
                         timeout_ms=timeout_ms or self._default_timeout_ms, may_retry=query.idempotent)
        return _rows(res)

    def run_untrusted_read(
        self, cypher: str, params: Mapping[str, Any] | None, *, row_limit: int, timeout_ms: int
    ) -> ReadResult:
        check_read_only(cypher)
        header = _params_header(params)
        plan = bound_rows(cypher, row_limit)
        graph = None
        try:
            timeout_ms = self._clamp(timeout_ms)
            graph = self._analyst_client(analyst_socket_timeout_s(timeout_ms))
            res = graph.ro_query(header + plan.text, timeout=timeout_ms)
        except redis.TimeoutError:
            # The socket gave up on a query the server has not answered: report the query's
            # timeout (never a lost server) and send nothing again. The connection may still get
            # the late reply, so it is closed.
            self._drop_analyst(graph)
            raise QueryTimeout("query analyst.adhoc ran past its time limit",
                               details={"query": ANALYST_QUERY, "where": "client"}) from None
        except (*_TRANSIENT, ValueError) as exc:
            if isinstance(exc, ValueError) and "closed file" not in str(exc):
                raise
            self._drop_analyst(graph)
            log.warning("graph unavailable", extra={"query": ANALYST_QUERY, "error": type(exc).__name__})
            raise GraphUnavailable("the graph database is unavailable", details={"query": ANALYST_QUERY}) from None
        except redis.ResponseError as exc:
            if "empty key" in str(exc).lower():
                res = _EMPTY
            else:
                raise _translate(ANALYST_QUERY, exc, True) from None
        rows = _rows(res)
        columns = [h[1] if isinstance(h, (list, tuple)) else str(h) for h in (res.header or [])]
        if plan.columns is not None and set(plan.columns) == set(columns) and len(columns) == len(plan.columns):
            columns = list(plan.columns)  # RETURN * outside the subquery sorted them
            rows = [{c: r[c] for c in columns} for r in rows]
        truncated = len(rows) > row_limit
        return ReadResult(columns=columns, rows=rows[:row_limit], truncated=truncated)

    def execute_schema(self, statements: Sequence[str]) -> None:
        for stmt in statements:
            try:
                self._call("schema", stmt, None, read_only=False, timeout_ms=60_000, may_retry=True)
            except QueryError as exc:
                if not any(s in str(exc).lower() for s in _ALREADY):
                    raise

    def create_unique_constraint(self, label: str, prop: str) -> None:
        """FalkorDB makes unique constraints with a command, not Cypher (and needs an index first)."""
        graph = self._connect()
        try:
            graph.create_node_unique_constraint(label, prop)
        except redis.ResponseError as exc:
            if not any(s in str(exc).lower() for s in _ALREADY):
                raise QueryError(f"constraint on {label}.{prop} failed: {exc}") from exc

    def health(self) -> Health:
        try:
            self._call("system.ping", "RETURN 1", None, read_only=True, timeout_ms=2000, may_retry=False, attempts=1)
            return Health(True, self.backend, extra={"graph": self.graph_name})
        except GraphUnavailable as exc:
            return Health(False, self.backend, detail=exc.message)

    def compact(self) -> bool:
        """After a bulk write: the embedded server rewrites its append-only file so that its next
        start reads one base file instead of replaying the writes (kg/backends/embedded.py
        `compact`). A server run by someone else keeps its own persistence settings."""
        if self.embedded is None:
            return False
        return self.embedded.compact(self.redis)

    def close(self) -> None:
        self._drop_connection()

    # -- internals ---------------------------------------------------------------------------------
    def _clamp(self, timeout_ms: int) -> int:
        """The server refuses a query whose TIMEOUT exceeds its TIMEOUT_MAX: lower it to that."""
        self._connect()
        top = self._timeout_max_ms
        return min(timeout_ms, top) if top > 0 else timeout_ms

    def _call(self, name: str, text: str, params, *, read_only: bool, timeout_ms: int, may_retry: bool,
              attempts: int | None = None):
        attempts = attempts or (self._retries + 1)
        last: Exception | None = None
        for attempt in range(attempts):
            graph = None
            try:
                graph = self._connect()
                top = self._timeout_max_ms
                timeout = min(timeout_ms, top) if top > 0 else timeout_ms
                if read_only:
                    return graph.ro_query(text, params=dict(params or {}) or None, timeout=timeout)
                return graph.query(text, params=dict(params or {}) or None, timeout=timeout)
            except (*_TRANSIENT, ValueError) as exc:
                # ValueError: "I/O operation on closed file" from a socket another thread closed.
                if isinstance(exc, ValueError) and "closed file" not in str(exc):
                    raise
                last = exc
                self._drop_connection(graph)
                if not may_retry:
                    break  # it may have reached the server: running it twice is not safe
                time.sleep(min(0.1 * 3**attempt, 1.0))
            except redis.ResponseError as exc:
                if read_only and "empty key" in str(exc).lower():
                    return _EMPTY  # a graph nothing was written to yet: no rows, not an error
                raise _translate(name, exc, read_only) from None
            except GraphUnavailable as exc:  # the embedded server would not start
                last = exc
                time.sleep(min(0.1 * 3**attempt, 1.0))
        log.warning("graph unavailable", extra={"query": name, "error": type(last).__name__})
        raise GraphUnavailable("the graph database is unavailable", details={"query": name})


def _timeout_max(conn: redis.Redis) -> int:
    """The server's TIMEOUT_MAX in ms (0: none, or a server that does not say)."""
    try:
        reply = conn.execute_command("GRAPH.CONFIG", "GET", "TIMEOUT_MAX")
        return max(0, int(reply[1]))
    except (redis.ResponseError, TypeError, ValueError, IndexError):
        return 0


class _EmptyResult:
    header: list = []
    result_set: list = []


_EMPTY = _EmptyResult()


def _translate(name: str, exc: redis.ResponseError, read_only: bool) -> GraphError:
    msg = str(exc)
    low = msg.lower()
    if "timed out" in low or "timeout" in low:
        return timeout_error(name)
    if "mem consumption exceeded" in low or "memory" in low and "capacity" in low:
        return QueryMemoryLimit(f"query {name} needed more memory than the server allows", details={"query": name})
    if read_only and ("read-only" in low or "ro_query" in low or "readonly" in low):
        return ReadOnlyViolation("a read-only query tried to write", details={"query": name})
    if "loading" in low:
        return GraphUnavailable("the graph database is loading")
    # The server's own text is useful to an analyst and names no internals; keep it short.
    return QueryError(f"query {name} was rejected: {msg[:300]}", details={"query": name})


# Types orjson would quietly turn into strings go to the client's encoder, as before.
_ORJSON_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def _params_header(params: Mapping[str, Any] | None) -> str:
    """Check `params` and write them as the `CYPHER name=value ...` prefix FalkorDB reads.

    orjson writes lists, strings and numbers as valid Cypher literals about fifteen times faster
    than the client's recursive encoder, which matters for the importer's 5,000-row batches. It
    cannot write maps (it quotes their keys) and escapes control characters as \\uXXXX, which
    FalkorDB would keep literally; a value holding either goes through the client's encoder.
    """
    has_map = check_params(params)
    if not params:
        return ""
    parts = ["CYPHER "]
    for k, v in params.items():
        enc = None
        if not has_map:
            try:
                raw = orjson.dumps(v, option=_ORJSON_STRICT)
            except (orjson.JSONEncodeError, TypeError):  # ints beyond 64 bits, other types
                raw = b"\\u"
            if b"\\u" not in raw:
                enc = raw.decode("utf-8")
        if enc is None:
            enc = stringify_param_value(v)
        parts.append(f"`{k}`={enc} ")
    return "".join(parts)


def _value(v: Any) -> Any:
    """A result cell as plain Python (called for every cell of every row: scalars leave first)."""
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, Node):
        return {"_labels": list(v.labels or []), **(v.properties or {})}
    if isinstance(v, Edge):
        return {"_type": v.relation, **(v.properties or {})}
    if isinstance(v, GraphPath):
        return {"nodes": [_value(n) for n in v.nodes()], "edges": [_value(e) for e in v.edges()]}
    if isinstance(v, list):
        return [_value(x) for x in v]
    if isinstance(v, dict):
        return {k: _value(x) for k, x in v.items()}
    return v


def _rows(res) -> list[Row]:
    header = [h[1] if isinstance(h, (list, tuple)) else str(h) for h in (res.header or [])]
    return [{k: _value(v) for k, v in zip(header, row, strict=False)} for row in res.result_set or []]
