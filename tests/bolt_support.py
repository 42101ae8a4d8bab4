"""The Bolt test server the Neo4j-store tests share: a throwaway embedded FalkorDB with its Bolt
listener, one long-lived `Neo4jStore` on it, and raw Redis access to check what reached the graph.

FalkorDB's Bolt listener differs from Neo4j in ways listed in kg/backends/neo4j.py; the ones that
shape this harness:
- the graph key is the name of the first entry of the RUN message's extras, so the store's
  WRITE-mode queries (database "shop") land in graph `db` and its READ-mode ones in graph `mode`:
  `publish()` copies `db` to `mode` between writing and reading;
- after a Bolt client disconnects, the server leaves the next new connection on either port
  unanswered: one store (one driver) and one Redis connection per server, closed only after the
  server is gone;
- once the server has run for about 5 s, every Bolt write stalls the next Redis-protocol command
  for about 3 s: `ready()` recycles a server older than `MAX_AGE_S`;
- returning a temporal value, or a parameter over ~4 KiB, kills the server: `ready()` restarts
  a dead one, but never do either on purpose.
"""

from __future__ import annotations

import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from common.errors import GraphUnavailable
from kg.backends.embedded import EmbeddedFalkorDB, ServerInfo, free_bolt_port
from kg.backends.neo4j import Neo4jStore

DATABASE = "shop"


class BoltGraph:
    """One throwaway FalkorDB with a Bolt port, one long-lived Neo4jStore on it, raw Redis access.

    The Redis connection and the store are opened once per server; the supervisor is never asked
    to ping a live server (that opens a connection); `shutdown()` stops the server over the open
    connection before closing the store.
    """

    WRITE_GRAPH, READ_GRAPH = "db", "mode"  # see the module docstring
    MAX_AGE_S = 4.0  # a fresh server (under 1 s) is cheaper than the 3 s stalls of an older one

    def __init__(self, server: EmbeddedFalkorDB) -> None:
        self.server = server
        self.info: ServerInfo | None = None
        self.store: Neo4jStore | None = None
        self._redis: redis.Redis | None = None
        self._started = 0.0

    def ready(self) -> Neo4jStore:
        """A live, young server (restarted if an earlier test crashed it), empty graphs, a fresh store."""
        if not self._alive() or time.monotonic() - self._started > self.MAX_AGE_S:
            self.recycle()
        assert self.store is not None
        self.store._explain_checks = None  # each test sees the store as new (the EXPLAIN probe)
        for g in (self.WRITE_GRAPH, self.READ_GRAPH):
            self._delete(g)
        return self.store

    def recycle(self) -> None:
        """A new server and a new store (closing the old store only once its server is gone)."""
        self.server.kill()
        if self.store is not None:
            self.store.close()
            self.store = None
        self.restart()

    def restart(self) -> ServerInfo:
        """Start the server if it is down and connect afresh (a new server has no stale sockets)."""
        for attempt in range(3):
            try:
                self.info = self.server.ensure_running()
                break
            except GraphUnavailable:  # the module aborts the server when its Bolt port is taken
                if attempt == 2:
                    raise
                self.server.bolt_port = free_bolt_port()
        assert self.info is not None
        self._started = time.monotonic()
        if self.store is not None and not self.store.uri.endswith(f":{self.info.bolt_port}"):
            self.store.close()
            self.store = None
        if self._redis is not None:
            self._redis.close()
        self._redis = redis.Redis(port=self.info.port, password=self.info.password, socket_timeout=10,
                                  retry=Retry(NoBackoff(), 0))
        if self.store is None:
            self.store = self.new_store()
        return self.info

    def new_store(self, **kwargs) -> Neo4jStore:
        """A store on this server. Closing it stalls the server's next new connection: close only at the end."""
        assert self.info is not None
        opts = dict(database=DATABASE, user="falkordb", password=self.info.password, retries=2, connect_timeout_s=3)
        return Neo4jStore(uri=f"bolt://127.0.0.1:{self.info.bolt_port}", **(opts | kwargs))

    def shutdown(self) -> None:
        if self._alive():
            assert self._redis is not None
            try:
                self._redis.shutdown(nosave=True)
            except redis.RedisError:
                pass
        if self.store is not None:
            self.store.close()
        if self._redis is not None:
            self._redis.close()
        self.server.stop()

    @property
    def redis(self) -> redis.Redis:
        assert self._redis is not None
        return self._redis

    def graphs(self) -> set[str]:
        return {g.decode() for g in self.redis.execute_command("GRAPH.LIST")}

    def publish(self) -> None:
        """Make what WRITE-mode queries wrote visible to READ-mode queries."""
        self._delete(self.READ_GRAPH)
        if self.WRITE_GRAPH in self.graphs():
            # On a connection of its own: FalkorDB answers GRAPH.COPY but may leave the client
            # marked blocked for seconds, stalling that connection's next command.
            assert self.info is not None
            with redis.Redis(port=self.info.port, password=self.info.password, socket_timeout=10,
                             retry=Retry(NoBackoff(), 0)) as conn:
                conn.execute_command("GRAPH.COPY", self.WRITE_GRAPH, self.READ_GRAPH)

    def raw(self, graph: str, cypher: str) -> list[list]:
        if graph not in self.graphs():
            return []
        return self.redis.execute_command("GRAPH.RO_QUERY", graph, cypher)[1]

    def node_counts(self) -> tuple[int, int]:
        def count(g: str) -> int:
            rows = self.raw(g, "MATCH (n) RETURN count(n)")
            return rows[0][0] if rows else 0

        return count(self.WRITE_GRAPH), count(self.READ_GRAPH)

    def _alive(self) -> bool:
        if self._redis is None:
            return False
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def _delete(self, graph: str) -> None:
        try:
            self.redis.execute_command("GRAPH.DELETE", graph)
        except redis.ResponseError:
            pass  # not there
