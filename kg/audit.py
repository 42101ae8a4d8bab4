"""The audit log of catalog writes: what changed, where it came from and who asked.

The importer (kg/loader.py) describes each batch's writes as `Change` records: the node (label and
key), created / updated / deleted, the old and new values of the fields that changed, and the file
and line the row came from. A sink (`AuditLog.sink`) adds who (the API key id, or `cli:<user>` for
the key-less local command), the route or the import job, and stores them.

Where they are stored, and why: a capped Redis stream (`<prefix>audit`, `AUDIT_MAX_ENTRIES`) in the
state store, not nodes in the graph.
- The state store is a process of its own with an append-only file (kg/backends/state_server.py;
  `REDIS_URL` in production), so the log is as durable as sessions and keys, and a graph that is
  overloaded, restored or replaced (Neo4j) does not take the record of its changes with it.
- The graph stays the shop's data: audit nodes would show up in the analyst route (old and new
  customer and order values are personal data: here only `admin` reads them), in label counts
  and in every backup and export of the catalog.
- A stream is ordered by time (its ids are milliseconds), so `since` and paging are range reads.
  One stream entry holds one write's changes (an import batch's, as one JSON list): one command
  per batch keeps the importer's throughput (one XADD per row costs 25 times as much).
- Capped at `AUDIT_MAX_ENTRIES` changes (the oldest entries drop first): the bound that keeps the
  state store's memory predictable (about 0.4 KB a change); a shop that must keep every change
  forever exports the log (`./kgqa audit --json`) to its own archive.

The graph write and its audit entry are not one transaction: entries are written right after each
batch's statements succeed, so a process killed between the two loses the entries of that batch
(never the reverse: no entry describes a write that did not happen).
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import orjson

log = logging.getLogger(__name__)

T = TypeVar("T")
Action = Literal["created", "updated", "deleted"]
MAX_VALUE_CHARS = 2000  # per field: a 64 KiB description is cut in the log, not in the graph
SCAN_MAX = 20_000  # stream entries one read looks at before it hands back a cursor


@dataclass(frozen=True)
class Change:
    label: str  # Product, Order, ..., OrderItem (an order's CONTAINS relationship), ShopExample
    node: str  # the node's key: sku, order_id, ..., "order_id/sku" for an order item
    action: Action
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    file: str | None = None
    line: int | None = None


AuditSink = Callable[[Sequence[Change]], None]


def local_actor() -> str:
    """Who a key-less local command writes as."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}"


def _cut(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, str) and len(v) > MAX_VALUE_CHARS:
            v = v[:MAX_VALUE_CHARS] + "…"
        out[k] = v
    return out


def parse_since(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 date or time (a date is midnight UTC)."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            when = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), dt.UTC)
        else:
            when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
    except ValueError:
        raise ValueError("since must be an ISO 8601 date or time, e.g. 2026-11-23 or 2026-11-23T09:30:00Z") from None
    return int(when.timestamp() * 1000)


# Append one entry (a batch of changes), then drop the oldest entries while more than ARGV[1]
# changes are kept (KEYS[2] counts them); never the entry just written.
_APPEND = """
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
local total = redis.call('INCRBY', KEYS[2], tonumber(ARGV[2]))
local cap = tonumber(ARGV[1])
while total > cap do
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  if #oldest == 0 or oldest[1][1] == id then break end
  local n = 1
  local fields = oldest[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'n' then n = tonumber(fields[i + 1]) end
  end
  redis.call('XDEL', KEYS[1], oldest[1][1])
  total = redis.call('DECRBY', KEYS[2], n)
end
return id
"""
CURSOR_PATTERN = r"^[0-9]{1,20}-[0-9]{1,20}\.[0-9]{1,9}$"
_PAGE = 50  # stream entries per read


class AuditLog:
    """The log in Redis; `call` runs a function with a Redis client (the API's `redis_call`, which
    turns a lost connection into a 503).

    One stream entry per write: a single-product change, or one import batch (its changes as one
    JSON list), so the importer pays one command per batch. The cap counts changes, not entries.
    Each change has an id, `<entry id>.<n>` (its place in the entry), which is also a cursor."""

    def __init__(self, call: Callable[[Callable[[Any], Any]], Any], prefix: str, *, max_entries: int) -> None:
        self._call = call
        self.key = prefix + "audit"
        self.count_key = prefix + "audit:kept"
        self.max_entries = max_entries

    def sink(self, *, key_id: str, route: str | None = None, job_id: str | None = None) -> AuditSink:
        def record(changes: Sequence[Change]) -> None:
            self.record(changes, key_id=key_id, route=route, job_id=job_id)

        return record

    def record(self, changes: Sequence[Change], *, key_id: str, route: str | None = None,
               job_id: str | None = None) -> None:
        """One command for a batch of changes."""
        if not changes:
            return
        at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        # A single-product write goes through a one-row file: the route says where, not that file.
        rows = [[c.label, c.node, c.action, _cut(c.old), _cut(c.new), None if route else c.file,
                 None if route else c.line] for c in changes]
        fields: list[Any] = ["at", at, "key_id", key_id, "n", len(rows), "changes",
                            orjson.dumps(rows, default=str)]
        if route:
            fields += ["route", route]
        if job_id:
            fields += ["job_id", job_id]
        self._call(lambda r: r.eval(_APPEND, 2, self.key, self.count_key, self.max_entries, len(rows), *fields))

    def read(self, *, key_id: str | None = None, node: str | None = None, since_ms: int | None = None,
             cursor: str | None = None, limit: int = 50,
             scan_max: int = SCAN_MAX) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first: up to `limit` changes matching the filters, and the cursor to read on from
        (None when nothing older is left). A read looks at no more than `scan_max` changes, so a
        selective filter over a long log may answer few with a cursor: read on with it."""
        out: list[dict[str, Any]] = []
        lower = f"{since_ms}-0" if since_ms is not None else "-"
        upper, below = "+", None  # below: in the cursor's own entry, only the changes before it
        if cursor:
            entry, _, index = cursor.partition(".")
            upper, below = entry, int(index)
        scanned = 0
        while True:
            rows = self._call(lambda r, upper=upper: r.xrevrange(self.key, max=upper, min=lower, count=_PAGE))
            for entry_id, fields in rows:
                raw = fields.get("changes") or "[]"
                wanted = (key_id is None or fields.get("key_id") == key_id) and (node is None or node in raw)
                changes = orjson.loads(raw) if wanted else []
                start = len(changes) if below is None else min(below, len(changes))
                below = None
                for i in range(start - 1, -1, -1):
                    c = changes[i]
                    if node is None or (len(c) > 1 and c[1] == node):
                        out.append(_entry(f"{entry_id}.{i}", fields, c))
                        if len(out) >= limit:
                            return out, f"{entry_id}.{i}"
                scanned += max(1, int(fields.get("n") or 1))
                upper = f"({entry_id}"
                if scanned >= scan_max:
                    return out, f"{entry_id}.0"
            if len(rows) < _PAGE:
                return out, None


def _entry(change_id: str, fields: dict[str, Any], c: list[Any]) -> dict[str, Any]:
    label, node, action, old, new, file, line = (list(c) + [None] * 7)[:7]
    return {"id": change_id, "at": fields.get("at"), "key_id": fields.get("key_id"), "route": fields.get("route"),
            "job_id": fields.get("job_id"), "file": file, "line": line, "label": label, "node": node,
            "action": action, "old": old, "new": new}


def local_sink(settings: Any, connect: Callable[[], Any]) -> AuditSink:
    """The audit sink of a key-less local command (`./kgqa import`, `./kgqa up`): the state store's
    log (`connect` hands out its client: the composition root's `StateRedis.client`), written as
    `cli:<user>`."""
    from kg.backends.state_server import key_prefix

    def call(fn: Callable[[Any], T]) -> T:
        return fn(connect())

    return AuditLog(call, key_prefix(settings.graph_name), max_entries=settings.audit_max_entries).sink(
        key_id=local_actor())
