"""What the API's views call: one `Services` object per app, around the composition root's
`Container` (common/bootstrap.py), which chose and built every collaborator.

Nothing here connects or loads at construction: the graph store connects on its first query, the
dialogue engine (models) is built on first use or by `warm()` (gunicorn calls it right after a
worker starts), and Redis is reached per call. So `create_app` stays free of I/O and several apps
(tests) can live side by side. What only HTTP needs is added here: metrics, API keys, import jobs,
and the policy for a lost state store.

The state Redis is the container's `StateRedis` (kg/backends/state_server.py: `REDIS_URL`; with
the embedded graph, a second embedded server of its own, so a graph overload cannot take
sessions, keys and rate limits down; with a FalkorDB by URL, that server's own). Every Redis call
goes through `redis_call`, which turns a lost connection into a retryable error (a 503) and drops
the broken connection so the next request reconnects, restarting an embedded server that died:
the API recovers by itself, without a restart.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import redis

from api.auth import KeyStore
from api.handoffs import HandoffLog
from api.jobs import ImportJobs
from api.metrics import Metrics
from common import bootstrap
from common.bootstrap import Container, settle_heap
from common.errors import KGQAError, ModelNotReady, Retryable
from common.settings import Settings
from kg.audit import AuditLog
from kg.backends.state_server import StateRedis, key_prefix
from kg.store import GraphStore
from qa.engine import Engine

log = logging.getLogger("kgqa.api")

T = TypeVar("T")


class _VectorCount(NamedTuple):
    at: float  # when the catalog version was last read
    counted_at: float  # when the products were last counted
    version: Any  # the catalog version at that count
    missing: int  # products without a vector of this worker's encoder


class StateUnavailable(Retryable):
    """Redis (keys, jobs, rate limits, analytics) cannot be reached."""

    code = "state_unavailable"


class Services:
    def __init__(self, container: Container) -> None:
        self.container = container
        self.settings = container.settings
        self.catalog = container.catalog
        self.sessions = container.sessions
        # A random id per app instance (not the pid): the X-Instance header tells which worker answered.
        self.instance_id = secrets.token_hex(4)
        self.prefix = key_prefix(self.settings.graph_name)
        self.started_at = time.time()
        self.clock: Callable[[], float] = time.time  # rate-limit windows (tests hold it still)
        self.metrics = Metrics()
        self.keys = KeyStore(self.redis_call, self.prefix)
        self.jobs = ImportJobs(self)
        self.handoffs = HandoffLog(self)
        self._engine_lock = threading.Lock()
        self._engine_error: str | None = None
        self._engine_failed_at = 0.0
        self._warming = False
        self._vectors_checked: _VectorCount | None = None  # products without a vector, when last looked at
        self._indexes_checked: tuple[float, dict[str, str]] | None = None  # (when, indexes being built)

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        return cls(bootstrap.build(settings))

    @functools.cached_property
    def privacy_key(self) -> bytes:
        """The key of masked ids and pseudonyms in logs and reports (api/privacy.py)."""
        from api.privacy import privacy_key

        return privacy_key(self.settings)

    # -- graph ---------------------------------------------------------------------------------------
    @property
    def store(self) -> GraphStore:
        return self.container.store

    @property
    def graph(self) -> GraphStore:
        """The store, with keys and indexes in place (which also makes an empty graph queryable)."""
        return self.container.graph()

    # -- redis ---------------------------------------------------------------------------------------
    @property
    def state(self) -> StateRedis:
        """The state store's Redis (kg/backends/state_server.py): the container's, one per app."""
        return self.container.redis

    @property
    def audit(self) -> AuditLog:
        """The audit log of catalog writes (kg/audit.py), in the state store."""
        return AuditLog(self.redis_call, self.prefix, max_entries=self.settings.audit_max_entries)

    def redis(self) -> redis.Redis:
        return self.container.redis.client()

    def redis_call(self, fn: Callable[[redis.Redis], T]) -> T:
        try:
            return fn(self.redis())
        except (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError) as exc:
            self.connection_lost()
            raise StateUnavailable("the state store is unavailable") from exc
        except redis.ResponseError as exc:
            if "loading" in str(exc).lower():
                raise StateUnavailable("the state store is loading") from exc
            raise

    def connection_lost(self) -> None:
        """Drop the state store's connection (and the graph server's, when state lives there) so the
        next call reconnects, restarting an embedded server that died."""
        state = self.container.redis
        state.reset()
        if state.shares_graph_server:
            try:
                self.store.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close
                log.debug("closing the store failed", exc_info=True)

    # -- dialogue engine ----------------------------------------------------------------------------
    @property
    def engine_loaded(self) -> bool:
        return self.container.engine.built

    @property
    def engine_error(self) -> str | None:
        return self._engine_error

    def engine(self) -> Engine:
        lazy = self.container.engine
        if lazy.built:
            return lazy.get()
        with self._engine_lock:
            if lazy.built:
                return lazy.get()
            # Do not hammer a failing load on every request: retry at most every 10 s.
            if self._engine_error and time.monotonic() - self._engine_failed_at < 10:
                raise ModelNotReady("the dialogue engine is not ready", details={"reason": "load_failed"})
            try:
                # Models, linking index and field catalog now (not on the first question), so
                # readiness means ready.
                engine = self.container.warm()
                self._engine_error = None
            except Retryable:
                raise
            except Exception as exc:  # noqa: BLE001 - any load failure is "not ready", never a 500
                self._engine_error = f"{type(exc).__name__}: {getattr(exc, 'message', str(exc))}"[:500]
                self._engine_failed_at = time.monotonic()
                log.error("the dialogue engine could not be built", extra={"error": type(exc).__name__},
                          exc_info=True)
                raise ModelNotReady("the dialogue engine is not ready", details={"reason": "load_failed"}) from exc
            return engine

    def vectors_to_embed(self) -> int:
        """Products whose name has no vector of this worker's encoder yet (LINKING_VECTORS=graph):
        readiness waits for `kgqa graph embed` (or an import). Counting looks at every product (a
        second or two of the graph server's time at a million products), so it is done every 5 s
        while some are missing and, once none is, again only when the catalog version moved (read
        at most every 30 s) or 10 minutes passed."""
        from kg.embeddings import stale_count
        from kg.queries.linking import CATALOG_VERSION

        now = time.monotonic()
        last = self._vectors_checked
        if last is not None and now - last.at <= (5.0 if last.missing else 30.0):
            return last.missing
        # the store, not container.graph(): that waits for the graph's indexes, and readiness reports
        rows = self.store.run(CATALOG_VERSION)
        version = rows[0]["version"] if rows else None
        if last is not None and not last.missing and version == last.version and now - last.counted_at < 600.0:
            self._vectors_checked = last._replace(at=now)
            return 0
        self._vectors_checked = _VectorCount(now, now, version, stale_count(self.store, self.container.encoder.space))
        return self._vectors_checked.missing

    def indexes_building(self) -> dict[str, str]:
        """The graph's indexes still being built ({label: progress}), read at most every 5 s: a server
        that has just loaded its data builds them in the background (kg/schema.py)."""
        now = time.monotonic()
        last = self._indexes_checked
        if last is None or now - last[0] > 5.0:
            from kg.schema import indexes_building

            self._indexes_checked = (now, indexes_building(self.store))
        return self._indexes_checked[1]

    def warm_async(self) -> None:
        """Start building the engine on a background thread (once); readiness turns green after."""
        with self._engine_lock:
            if self.container.engine.built or self._warming:
                return
            self._warming = True
        threading.Thread(target=self.warm, name="kgqa-warm", daemon=True).start()

    def warm(self) -> None:
        """Build the engine now (gunicorn's post_worker_init); errors are logged, not raised."""
        try:
            self.engine()
            settle_heap()
        except KGQAError:
            pass
        finally:
            self._warming = False

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - shutting down anyway
            pass
