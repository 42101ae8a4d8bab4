"""One error tree for the whole product.

Each layer raises errors from its own family; the API maps a family to one HTTP status in one
handler, so a new error type never needs a new ``except`` somewhere else. ``Retryable`` marks the
transient branch (a graph server restarting, a model server timing out): callers may retry those,
never the others.
"""

from __future__ import annotations

from typing import Any


class KGQAError(Exception):
    """Root of every error this product raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Retryable(KGQAError):
    """Transient: the same call may succeed later."""


# -- configuration -------------------------------------------------------------------------------
class ConfigError(KGQAError):
    code = "config_error"


# -- graph layer ---------------------------------------------------------------------------------
class GraphError(KGQAError):
    code = "graph_error"


class GraphUnavailable(GraphError, Retryable):
    """The graph server cannot be reached (down, restarting, timed out)."""

    code = "graph_unavailable"


class QueryError(GraphError):
    """The server rejected a query (syntax, type error, constraint violation)."""

    code = "query_error"


class ReadOnlyViolation(QueryError):
    """A query on a read-only path tried to write or call a procedure that is not allowed."""

    code = "read_only_violation"


class QueryTimeout(QueryError):
    """The caller's own query (the analyst route) ran past its time limit: a 422, never re-sent."""

    code = "query_timeout"


class GraphBusy(GraphError, Retryable):
    """One of the product's named queries (a chat turn, a catalog write, a report) ran past its
    time limit: its parameters are not at fault, the server was busy or just restarted, so the
    call may succeed later (a 503 with Retry-After). Every named write is idempotent or keyed, so a
    retry after a timed-out write is safe."""

    code = "graph_busy"


class QueryMemoryLimit(QueryError):
    """The server stopped a query that needed more memory than it allows (QUERY_MEM_CAPACITY on
    FalkorDB, `db.memory.transaction.max` on Neo4j)."""

    code = "query_memory_limit"


class UnknownQuery(GraphError):
    code = "unknown_query"


# -- import --------------------------------------------------------------------------------------
class ImportError_(KGQAError):
    """Import-level failure (unreadable file, unknown file type, strict mode rejection)."""

    code = "import_error"


# -- understanding -------------------------------------------------------------------------------
class NLUError(KGQAError):
    code = "nlu_error"


class ModelNotReady(NLUError, Retryable):
    code = "model_not_ready"


# -- dialogue ------------------------------------------------------------------------------------
class DialogueError(KGQAError):
    code = "dialogue_error"


class SessionNotFound(DialogueError):
    """No such session for this caller: unknown, expired, or someone else's (all alike: a 404)."""

    code = "session_not_found"


class SessionStoreUnavailable(DialogueError, Retryable):
    """Redis (dialogue state) cannot be reached: fail the turn, never fall back to memory."""

    code = "session_store_unavailable"


class SessionConflict(DialogueError, Retryable):
    """Another worker saved this session since it was loaded; the caller may retry the turn."""

    code = "session_conflict"


class InvalidMessage(DialogueError):
    """An empty or over-long message (a 422 at the API)."""

    code = "invalid_message"


# -- verbalizer ----------------------------------------------------------------------------------
class VerbalizerError(KGQAError):
    code = "verbalizer_error"


class MissingDependency(KGQAError):
    """An optional heavy dependency is not installed; the message names the package."""

    code = "missing_dependency"
