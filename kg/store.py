"""The graph store interface every other layer uses, and the factory that picks a backend.

`run` takes a registered `Query` (never raw text) so every query that reaches the graph has a
name for logs, metrics and the reply's metadata. The single exception is `run_untrusted_read`,
the analyst route, which takes text but runs it through the read-only lock on both levels and
under a time and row limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from common.errors import ConfigError, GraphBusy, GraphError, QueryTimeout
from common.settings import Settings
from kg.queries import Query

Row = dict[str, Any]


def analyst_socket_timeout_s(timeout_ms: int) -> float:
    """How long a client waits for an analyst query's answer: the query's own limit again, at least
    two seconds, on top of it (queueing behind other queries, sending the capped rows). Past it the
    query counts as timed out; it is never sent again."""
    limit_s = timeout_ms / 1000.0
    return round(limit_s + max(2.0, limit_s), 3)


ANALYST_QUERY = "analyst.adhoc"  # the name the analyst route's own Cypher runs under


def timeout_error(name: str) -> GraphError:
    """The error for a query the server stopped at its time limit: the analyst's own query is at
    fault (`QueryTimeout`, a 422), a named query of the product is not (`GraphBusy`, retryable)."""
    if name == ANALYST_QUERY:
        return QueryTimeout(f"query {name} ran past its time limit", details={"query": name})
    return GraphBusy(f"query {name} ran past its time limit", details={"query": name})


@dataclass
class ReadResult:
    columns: list[str]
    rows: list[Row]
    truncated: bool = False
    query_name: str = ANALYST_QUERY


@dataclass
class Health:
    ok: bool
    backend: str
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class GraphStore(Protocol):
    backend: str

    def run(self, query: Query, params: Mapping[str, Any] | None = None, *, timeout_ms: int | None = None) -> list[Row]:
        """Run a named query: read-only ones on the backend's read path, others as writes."""

    def run_untrusted_read(
        self, cypher: str, params: Mapping[str, Any] | None, *, row_limit: int, timeout_ms: int
    ) -> ReadResult:
        """Run text from an analyst: refused unless read-only; capped in rows and time."""

    def execute_schema(self, statements: Sequence[str]) -> None:
        """Apply schema statements, ignoring 'already exists' answers (idempotent)."""

    def health(self) -> Health: ...

    def compact(self) -> bool:
        """After a bulk write (an import, the linking index's build): make the server's next start read
        its data in one piece rather than replay the writes; whether anything was started."""

    def close(self) -> None: ...


def open_store(settings: Settings) -> GraphStore:
    """Build the backend named by `GRAPH_URL`. Nothing connects until the first query."""
    url = settings.graph_url
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "falkordb":
        from kg.backends.falkordb import FalkorDBStore

        return FalkorDBStore.from_settings(settings)
    if scheme in {"neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc"}:
        from kg.backends.neo4j import Neo4jStore

        return Neo4jStore.from_settings(settings)
    raise ConfigError(
        f"GRAPH_URL {url!r} is not supported: use falkordb://embedded, falkordb://host:port, "
        "neo4j://host:port or bolt://host:port"
    )
