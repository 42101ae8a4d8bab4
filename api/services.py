"""What the API's views call: one `Services` object per app, built from `Settings`.

Nothing here connects or loads at construction: the graph store connects on its first query, the
dialogue engine (models) is built on first use or by `warm()` (gunicorn calls it right after a
worker starts), and Redis is reached per call. So `create_app` stays free of I/O and several apps
(tests) can live side by side.

Redis (the state store) is the one named by `REDIS_URL`; with the embedded graph, a second
embedded server of its own (kg/backends/state_server.py), so a graph overload cannot take
sessions, keys and rate limits down; with a FalkorDB by URL, that server's own. Every Redis call
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
from typing import Any, TypeVar

import redis

from common.errors import KGQAError, ModelNotReady, Retryable
from common.settings import Settings

log = logging.getLogger("kgqa.api")

T = TypeVar("T")


class StateUnavailable(Retryable):
    """Redis (keys, jobs, rate limits, analytics) cannot be reached."""

    code = "state_unavailable"


class Services:
    def __init__(self, settings: Settings, *, store: Any = None, engine: Any = None,
                 redis_client: redis.Redis | None = None,
                 engine_factory: Callable[[Settings, Any], Any] | None = None) -> None:
        self.settings = settings
        self._store = store
        self._engine = engine
        self._redis = redis_client
        self._state: Any = None
        self._engine_factory = engine_factory
        self._engine_lock = threading.Lock()
        self._engine_error: str | None = None
        self._engine_failed_at = 0.0
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        # A random id per app instance (not the pid): the X-Instance header tells which worker answered.
        self.instance_id = secrets.token_hex(4)
        from kg.backends.state_server import key_prefix

        self.prefix = key_prefix(settings.graph_name)
        self.started_at = time.time()
        self.clock: Callable[[], float] = time.time  # rate-limit windows (tests hold it still)

    @functools.cached_property
    def privacy_key(self) -> bytes:
        """The key of masked ids and pseudonyms in logs and reports (api/privacy.py)."""
        from api.privacy import privacy_key

        return privacy_key(self.settings)

    # -- graph ---------------------------------------------------------------------------------------
    @property
    def store(self) -> Any:
        if self._store is None:
            from kg.store import open_store

            self._store = open_store(self.settings)
        return self._store

    @property
    def graph(self) -> Any:
        """The store, with keys and indexes in place (which also makes an empty graph queryable)."""
        self.ensure_schema()
        return self.store

    def ensure_schema(self) -> None:
        """Keys and indexes, once per process, before the first catalog write."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if not self._schema_ready:
                from kg.schema import ensure_schema

                ensure_schema(self.store)
                self._schema_ready = True

    # -- redis ---------------------------------------------------------------------------------------
    @property
    def state(self) -> Any:
        """The state store's Redis (kg/backends/state_server.py), chosen once per app."""
        if self._state is None:
            from kg.backends.state_server import StateRedis

            def graph_redis() -> redis.Redis:
                store = self.store
                if not hasattr(store, "redis"):
                    from common.errors import ConfigError

                    raise ConfigError("REDIS_URL is required unless the graph is FalkorDB")
                return store.redis  # the store's current connection (a new one after a reconnect)

            self._state = StateRedis(self.settings, graph_redis)
        return self._state

    @property
    def audit(self) -> Any:
        """The audit log of catalog writes (kg/audit.py), in the state store."""
        from kg.audit import AuditLog

        return AuditLog(self.redis_call, self.prefix, max_entries=self.settings.audit_max_entries)

    def redis(self) -> redis.Redis:
        if self._redis is not None:
            return self._redis
        return self.state.client()

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
        state = self._state
        if state is not None:
            state.reset()
        store = self._store
        if store is not None and (state is None or state.shares_graph_server):
            try:
                store.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close
                log.debug("closing the store failed", exc_info=True)

    # -- dialogue engine ----------------------------------------------------------------------------
    @property
    def engine_loaded(self) -> bool:
        return self._engine is not None

    @property
    def engine_error(self) -> str | None:
        return self._engine_error

    def engine(self) -> Any:
        if self._engine is not None:
            return self._engine
        with self._engine_lock:
            if self._engine is not None:
                return self._engine
            # Do not hammer a failing load on every request: retry at most every 10 s.
            if self._engine_error and time.monotonic() - self._engine_failed_at < 10:
                raise ModelNotReady("the dialogue engine is not ready", details={"reason": "load_failed"})
            try:
                self._engine = self._build_engine()
                self._engine_error = None
            except Retryable:
                raise
            except Exception as exc:  # noqa: BLE001 - any load failure is "not ready", never a 500
                self._engine_error = f"{type(exc).__name__}: {getattr(exc, 'message', str(exc))}"[:500]
                self._engine_failed_at = time.monotonic()
                log.error("the dialogue engine could not be built", extra={"error": type(exc).__name__},
                          exc_info=True)
                raise ModelNotReady("the dialogue engine is not ready", details={"reason": "load_failed"}) from exc
            return self._engine

    def _build_engine(self) -> Any:
        if self._engine_factory is not None:
            return self._engine_factory(self.settings, self.store)
        from qa.engine import build_engine

        self.ensure_schema()
        understander = None
        try:
            from nlu.understand import Understander
        except ImportError:  # the engine's own bootstrap reports what is missing
            Understander = None  # noqa: N806
        if Understander is not None:
            understander = Understander.load(self.settings)
        engine = build_engine(self.settings, store=self.store, understander=understander)
        # Load the understanding model now (not on the first question), so readiness means ready.
        understander = getattr(engine, "understander", None)
        if understander is not None and hasattr(understander, "understand"):
            understander.understand("hello")
        return engine

    def warm_async(self) -> None:
        """Start building the engine on a background thread (once); readiness turns green after."""
        with self._engine_lock:
            if self._engine is not None or getattr(self, "_warming", False):
                return
            self._warming = True
        threading.Thread(target=self.warm, name="kgqa-warm", daemon=True).start()

    def warm(self) -> None:
        """Build the engine now (gunicorn's post_worker_init); errors are logged, not raised."""
        try:
            self.engine()
        except KGQAError:
            pass
        finally:
            self._warming = False

    def close(self) -> None:
        if self._engine is not None:
            try:
                self._engine.close()
            except Exception:  # noqa: BLE001 - shutting down anyway
                pass
        if self._store is not None:
            try:
                self._store.close()
            except Exception:  # noqa: BLE001
                pass
