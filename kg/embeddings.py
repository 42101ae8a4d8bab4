"""Product-name vectors in the graph (kg/queries/embeddings.py): the vector index, which products
still need a vector, filling them in batches, and rebuilding the index after enough churn.

The graph layer does not know the model: `Embed` is given by the composition root
(common/bootstrap.py: the linker's sentence encoder), turns names into unit vectors, and is
called only for products whose name has no vector yet (a new product, a renamed one, a catalog
imported before vectors were kept). An unchanged re-import therefore embeds nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from common.errors import QueryError
from kg.queries import embeddings as Q
from kg.store import GraphStore

log = logging.getLogger("kgqa.kg.embeddings")

Embed = Callable[[Sequence[str]], Any]  # names -> an (n, dim) array of unit vectors
Progress = Callable[[int, int], None]  # (embedded so far, total to embed)

# Rebuild the vector index once this share of its vectors was replaced or removed since it was
# built (each leaves an entry behind that takes a place among the nearest neighbours).
REBUILD_SHARE = 0.2


def vector_index_status(store: GraphStore) -> str | None:
    """None: no vector index; "OPERATIONAL": built and searchable; anything else: being built."""
    try:
        rows = store.run(Q.VECTOR_INDEXES)
    except QueryError:
        return None
    if not rows or not rows[0].get("indexes"):
        return None
    return str(rows[0].get("status") or "OPERATIONAL").upper()


def vector_index_exists(store: GraphStore) -> bool:
    return vector_index_status(store) is not None


def wait_until_searchable(store: GraphStore, timeout_s: float = 300.0) -> bool:
    """Wait for the vector index to finish building (the server builds it in the background)."""
    deadline = time.monotonic() + timeout_s
    while vector_index_status(store) not in (None, "OPERATIONAL"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return vector_index_status(store) == "OPERATIONAL"


def ensure_vector_index(store: GraphStore, dimension: int) -> None:
    """Create the name vector index once (safe to call again)."""
    if not vector_index_exists(store):
        store.execute_schema(Q.vector_index_statements(store.backend, dimension))
        store.run(Q.CHURN, {"replaced": 0, "reset": True})


def rebuild_vector_index(store: GraphStore, dimension: int) -> None:
    """Drop and create the vector index: it is built again from the vector nodes, without the
    entries replaced vectors left behind."""
    if vector_index_exists(store):
        store.execute_schema([Q.drop_vector_index_statement(store.backend)])
    ensure_vector_index(store, dimension)


def stale_count(store: GraphStore) -> int:
    rows = store.run(Q.STALE_COUNT)
    return int(rows[0]["stale"]) if rows else 0


def fill_embeddings(store: GraphStore, embed: Embed, dimension: int, *, batch: int = 512,
                    progress: Progress | None = None, skus: Sequence[str] | None = None) -> int:
    """Embed every product whose name has no vector (or a vector of an older name), `batch` at
    a time, and drop the vectors of removed products; returns how many were written. Safe to stop
    and run again: each batch is written as it is computed, and a product renamed meanwhile stays
    stale. `skus`: only those products (a single-product edit), without a scan of the catalog."""
    ensure_vector_index(store, dimension)
    replaced = done = 0
    if skus is not None:
        rows = store.run(Q.STALE_OF, {"skus": list(skus)})
        if rows and _write_batch(store, embed, rows):
            done, replaced = len(rows), sum(bool(r.get("replaces")) for r in rows)
    else:
        removed = store.run(Q.ORPHANS_DELETE)
        replaced = int(removed[0]["deleted"]) if removed else 0
        total = stale_count(store)
        while total:
            rows = store.run(Q.STALE, {"limit": batch})
            if not rows or not _write_batch(store, embed, rows):
                break
            replaced += sum(bool(r.get("replaces")) for r in rows)
            done += len(rows)
            if progress is not None:
                progress(min(done, total), total)
    _note_churn(store, dimension, replaced)
    if done:
        log.info("product vectors written", extra={"products": done})
    return done


def _write_batch(store: GraphStore, embed: Embed, rows: Sequence[dict[str, Any]]) -> bool:
    """Embed and store one batch of [sku, name] rows; False when none was written (every product
    was renamed since it was read: left stale for the next run, never looped on)."""
    vectors = embed([r["name"] for r in rows])
    payload = [[r["sku"], [float(x) for x in vec], r["name"]] for r, vec in zip(rows, vectors, strict=True)]
    written = store.run(Q.WRITE, {"rows": payload})
    if written and written[0]["written"]:
        return True
    log.warning("product vectors not written: the products changed meanwhile", extra={"products": len(rows)})
    return False


def _note_churn(store: GraphStore, dimension: int, replaced: int) -> None:
    """Count vectors replaced or removed; past `REBUILD_SHARE` of them, rebuild the index."""
    churn = store.run(Q.CHURN, {"replaced": replaced, "reset": False})
    vectors_now = store.run(Q.COUNT)
    count = int(vectors_now[0]["vectors"]) if vectors_now else 0
    if churn and count and int(churn[0]["replaced"] or 0) > REBUILD_SHARE * count:
        log.info("rebuilding the name vector index", extra={"replaced": churn[0]["replaced"], "vectors": count})
        rebuild_vector_index(store, dimension)
    wait_until_searchable(store)
