"""Catalog-wide reads in pages (the scan queries of kg/queries: `product_scan`): each page is a
query of its own, bounded by `limit` rows and the store's query timeout, and continues after the
last page's cursor, so a large catalog never comes back in one reply and no page costs more than
its own size."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from kg.queries import SCAN_START, Query
from kg.store import GraphStore

Row = dict[str, Any]


def scan(store: GraphStore, query: Query, params: Mapping[str, Any] | None = None, *, limit: int,
         timeout_ms: int | None = None) -> Iterator[list[Row]]:
    """The pages of `query` (non-empty lists of rows), until one comes back short."""
    after = SCAN_START.get(store.backend, "")
    while True:
        rows = store.run(query, {**(params or {}), "after": after, "limit": limit}, timeout_ms=timeout_ms)
        if rows:
            yield rows
        if len(rows) < limit:
            return
        after = max(r["cursor"] for r in rows)
