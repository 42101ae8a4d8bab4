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
- A stream is ordered by time (its ids are milliseconds), so `since` and paging are range reads,
  and one pipelined XADD per import batch keeps the importer's throughput (no per-row round trip).
- Capped, approximately, at `AUDIT_MAX_ENTRIES` entries (oldest dropped first): the bound that keeps
  the state store's memory predictable; a shop that must keep every entry forever exports the
  stream (`./kgqa audit --json`) to its own archive.

The graph write and its audit entry are not one transaction: entries are written right after each
batch's statements succeed, so a process killed between the two loses the entries of that batch
(never the reverse: no entry describes a write that did not happen).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

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


class AuditLog:
    """The log in Redis; `call` runs a function with a Redis client (the API's `redis_call`, which
    turns a lost connection into a 503)."""

    def __init__(self, call: Callable[[Callable[[Any], Any]], Any], prefix: str, *, max_entries: int) -> None:
        self._call = call
        self.key = prefix + "audit"
        self.max_entries = max_entries

    def sink(self, *, key_id: str, route: str | None = None, job_id: str | None = None) -> AuditSink:
        def record(changes: Sequence[Change]) -> None:
            self.record(changes, key_id=key_id, route=route, job_id=job_id)

        return record

    def record(self, changes: Sequence[Change], *, key_id: str, route: str | None = None,
               job_id: str | None = None) -> None:
        """One pipelined round trip for a batch of changes."""
        if not changes:
            return
        at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        entries = []
        for c in changes:
            fields = {"at": at, "key_id": key_id, "label": c.label, "node": c.node, "action": c.action,
                      "old": json.dumps(_cut(c.old), ensure_ascii=False, default=str),
                      "new": json.dumps(_cut(c.new), ensure_ascii=False, default=str)}
            if route:
                fields["route"] = route  # a single-product write: the route says where, not a file
            elif c.file is not None:
                fields["file"] = c.file
                if c.line is not None:
                    fields["line"] = str(c.line)
            if job_id:
                fields["job_id"] = job_id
            entries.append(fields)

        def write(r: Any) -> None:
            pipe = r.pipeline(transaction=False)
            for fields in entries:
                pipe.xadd(self.key, fields, maxlen=self.max_entries, approximate=True)
            pipe.execute()

        self._call(write)

    def read(self, *, key_id: str | None = None, node: str | None = None, since_ms: int | None = None,
             cursor: str | None = None, limit: int = 50, scan_max: int = SCAN_MAX) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first: up to `limit` entries matching the filters, and the cursor to read on from
        (None when nothing older is left). A read looks at no more than `scan_max` entries, so a
        selective filter over a long log may answer few entries with a cursor: read on with it."""
        out: list[dict[str, Any]] = []
        upper = f"({cursor}" if cursor else "+"
        lower = f"{since_ms}-0" if since_ms is not None else "-"
        scanned = 0
        last_id: str | None = None
        while len(out) < limit and scanned < scan_max:
            chunk = min(1000, scan_max - scanned)
            rows = self._call(lambda r, upper=upper, chunk=chunk: r.xrevrange(self.key, max=upper, min=lower,
                                                                             count=chunk))
            if not rows:
                return out, None
            for entry_id, fields in rows:
                scanned += 1
                last_id = entry_id
                if (key_id is None or fields.get("key_id") == key_id) and (node is None or fields.get("node") == node):
                    out.append(_entry(entry_id, fields))
                    if len(out) >= limit:
                        break
            if len(rows) < chunk and len(out) < limit:
                return out, None
            upper = f"({last_id}"
        return out, last_id


def _entry(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    def loads(raw: str | None) -> Any:
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    line = fields.get("line")
    return {"id": entry_id, "at": fields.get("at"), "key_id": fields.get("key_id"),
            "route": fields.get("route"), "job_id": fields.get("job_id"), "file": fields.get("file"),
            "line": int(line) if line and line.isdigit() else None, "label": fields.get("label"),
            "node": fields.get("node"), "action": fields.get("action"), "old": loads(fields.get("old")),
            "new": loads(fields.get("new"))}


def local_sink(settings: Any, store: Any = None) -> AuditSink:
    """The audit sink of a key-less local command (`./kgqa import`, `./kgqa up`): the state store's
    log, written as `cli:<user>`."""
    from kg.backends.state_server import StateRedis, key_prefix

    state = StateRedis(settings, (lambda: store.redis) if store is not None and hasattr(store, "redis") else None)

    def call(fn: Callable[[Any], T]) -> T:
        return fn(state.client())

    return AuditLog(call, key_prefix(settings.graph_name), max_entries=settings.audit_max_entries).sink(
        key_id=local_actor())
