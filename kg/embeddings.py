"""Product-name vectors in the graph (kg/queries/embeddings.py): the vector index, which products
are stale, filling them in batches, and rebuilding the index after enough churn.

The graph layer knows neither the model nor what a product's vector text is: the composition root
(common/bootstrap.py) gives `Embed` (the linker's sentence encoder: texts to unit vectors) and
`TextOf` (a product row to the text its vector is computed from: nlu/linking/index.py
`name_vector_text`, shared by a model line's variants). A stale product (new, changed, or from a
catalog imported before vectors were kept) gets its text worked out again, and only texts without a
vector are embedded: an unchanged re-import, and a price or stock change, embed nothing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from common.errors import QueryError, QueryTimeout
from kg.queries import embeddings as Q
from kg.scan import scan
from kg.schema import INDEX_LISTING_TIMEOUT_MS
from kg.store import GraphStore

log = logging.getLogger("kgqa.kg.embeddings")

Embed = Callable[[Sequence[str]], Any]  # texts -> an (n, dim) array of unit vectors
TextOf = Callable[[Mapping[str, Any]], str]  # a product row (sku, name, brand, attributes) -> its vector text
Progress = Callable[[int, int], None]  # (products done so far, stale products in all)

# Rebuild the vector index once this share of its vectors was removed since it was built (each
# leaves an entry behind that takes a place among the nearest neighbours).
REBUILD_SHARE = 0.2
SCAN_TIMEOUT_MS = 120_000  # a look at every product (a million on one core: seconds)


def vector_index_status(store: GraphStore) -> str | None:
    """None: no vector index; "OPERATIONAL": built and searchable; anything else: being built."""
    try:
        rows = store.run(Q.VECTOR_INDEXES, timeout_ms=INDEX_LISTING_TIMEOUT_MS)
    except QueryTimeout:
        raise  # a busy server, not a missing index: deciding on it would drop or skip the index wrongly
    except QueryError:  # a server without vector indexes
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
    """Create the name vector index and the text indexes once (safe to call again)."""
    if not vector_index_exists(store):
        store.execute_schema(Q.vector_index_statements(store.backend, dimension))
        store.run(Q.CHURN, {"replaced": 0, "reset": True})
    else:  # a graph whose vectors were kept per product before: the text indexes are new
        store.execute_schema(Q.text_index_statements(store.backend))


def rebuild_vector_index(store: GraphStore, dimension: int) -> None:
    """Drop and create the vector index: it is built again from the vector nodes, without the
    entries replaced vectors left behind."""
    if vector_index_exists(store):
        store.execute_schema([Q.drop_vector_index_statement(store.backend)])
    ensure_vector_index(store, dimension)


def space_key(space: str) -> str:
    """The short name of an encoder's vector space (`TextEncoder.space`) kept in each product's
    fingerprint: a product whose vector another encoder made is stale."""
    return hashlib.sha256(space.encode("utf-8")).hexdigest()[:12]


def stale_count(store: GraphStore, space: str) -> int:
    """Products whose vector text is not worked out from what they hold now by the encoder of
    `space` (all of them when the graph's vectors are another encoder's)."""
    rows = store.run(Q.STALE_COUNT, {"space": space_key(space)}, timeout_ms=SCAN_TIMEOUT_MS)
    return int(rows[0]["stale"]) if rows else 0


def vectors_space(store: GraphStore) -> tuple[str | None, bool]:
    """(the space key the graph's name vectors were made in, whether there are any)."""
    rows = store.run(Q.SPACE)
    return (rows[0].get("space"), bool(rows[0].get("any_vector"))) if rows else (None, False)


def adopt_space(store: GraphStore, space: str, dimension: int, *, page: int = 10_000) -> bool:
    """Make `space` the graph's vector space: vectors of another encoder (or of a graph from before
    vectors were stamped) are deleted and the index built again, so the fill that follows makes
    them all in this one. Returns True when vectors were deleted."""
    key = space_key(space)
    current, any_vector = vectors_space(store)
    if current == key:
        return False
    purged = 0
    if any_vector:
        log.info("name vectors of another encoder: making them again", extra={"was": current, "now": key})
        while True:
            rows = store.run(Q.PURGE, {"limit": page}, timeout_ms=SCAN_TIMEOUT_MS)
            n = int(rows[0]["deleted"]) if rows else 0
            purged += n
            if n < page:
                break
        rebuild_vector_index(store, dimension)
    store.run(Q.SPACE_SET, {"space": key})
    return purged > 0


def fill_embeddings(store: GraphStore, embed: Embed, dimension: int, text_of: TextOf, *, space: str,
                    batch: int = 4096, progress: Progress | None = None, skus: Sequence[str] | None = None,
                    before_writing: Callable[[], object] | None = None) -> int:
    """Make every stale product current: work out its vector text, embed the texts that have no
    vector yet, point the products at them, and drop vectors no product names any more. Returns how
    many texts were embedded. `space` names the encoder (`TextEncoder.space`): vectors another one
    made are deleted first and made again (`adopt_space`). Safe to stop and run again: each batch is
    written as it is computed, and a product changed meanwhile stays stale (the scan goes on past
    it: no loop). A batch is written while the next one is embedded (the encoder and the graph
    server share the cores). `skus`: only those products (a single-product edit), without a scan of
    the catalog, and nothing while the graph's vectors are another encoder's (`kgqa graph embed`
    makes them all). `before_writing` is called once before a whole-catalog fill writes anything (the
    catalog service waits there for the graph server's indexes: none after a load, until built)."""
    ensure_vector_index(store, dimension)
    key = space_key(space)
    if skus is None:
        adopt_space(store, space, dimension)
    elif vectors_space(store)[0] != key:
        log.warning("name vectors not updated: the graph's vectors were made by another encoder; "
                    "run ./kgqa graph embed", extra={"products": len(skus)})
        return 0
    total = len(skus) if skus is not None else stale_count(store, space)
    if skus is None and total and before_writing is not None:
        before_writing()
    pages: Iterable[list[dict[str, Any]]] = \
        [store.run(Q.STALE_OF, {"skus": list(skus), "space": key})] if skus is not None \
        else scan(store, Q.STALE, {"space": key}, limit=batch, timeout_ms=SCAN_TIMEOUT_MS)
    writer = _Writer(store, key, track_old=skus is not None)
    done = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kgqa-vectors") as pool:
        pending: Future[None] | None = None
        for page in pages:
            stale = [str(r["sku"]) for r in page]
            if not stale:
                break
            rows = store.run(Q.PRODUCTS, {"skus": stale, "space": key})
            texts = {str(r["sku"]): text_of(r) for r in rows}
            wanted = [t for t in dict.fromkeys(texts.values()) if t and t not in writer.in_flight]
            have = {r["text"] for r in store.run(Q.HAVE, {"texts": wanted})} if wanted else set()
            new = [t for t in wanted if t not in have]
            vectors = embed(new) if new else None  # while the batch before is written
            if pending is not None:
                pending.result()
            writer.in_flight = set(new)
            pending = pool.submit(writer.write, rows, texts, new, vectors)
            done += len(rows)
            if progress is not None:
                progress(min(done, total), total)
        if pending is not None:
            pending.result()
    removed = writer.removed
    if skus is None and done:
        gone = store.run(Q.ORPHANS_DELETE, timeout_ms=SCAN_TIMEOUT_MS)
        removed += int(gone[0]["deleted"]) if gone else 0
    _note_churn(store, dimension, removed)
    if writer.embedded:
        log.info("product vectors written", extra={"texts": writer.embedded, "products": done})
    return writer.embedded


class _Writer:
    """Writes one batch of a fill: its new vectors, then its products' texts (a batch's texts are
    all written before its products point at them)."""

    def __init__(self, store: GraphStore, space_key: str, *, track_old: bool) -> None:
        self.store, self.space_key, self.track_old = store, space_key, track_old
        self.embedded = self.removed = 0
        self.in_flight: set[str] = set()  # texts being written: the next batch does not embed them again

    def write(self, rows: list[dict[str, Any]], texts: Mapping[str, str], new: list[str], vectors: Any) -> None:
        if new:
            self.store.run(Q.WRITE, {"rows": [[t, [float(x) for x in vec]] for t, vec in zip(new, vectors, strict=True)]})
            self.embedded += len(new)
        assigned = self.store.run(Q.ASSIGN, {"rows": [[str(r["sku"]), texts[str(r["sku"])], r["vh"]] for r in rows],
                                             "space": self.space_key})
        if self.track_old:  # the texts the edited products had: gone when nothing names them now
            old = [r["old_text"] for r in rows if r.get("old_text") and r["old_text"] != texts[str(r["sku"])]]
            if old:
                gone = self.store.run(Q.ORPHANS_OF, {"texts": old})
                self.removed += int(gone[0]["deleted"]) if gone else 0
        if not assigned or assigned[0]["assigned"] < len(rows):  # left stale for the next run
            log.warning("product vectors not assigned: the products changed meanwhile",
                        extra={"products": len(rows) - (assigned[0]["assigned"] if assigned else 0)})


def _note_churn(store: GraphStore, dimension: int, replaced: int) -> None:
    """Count vectors removed; past `REBUILD_SHARE` of them, rebuild the index."""
    churn = store.run(Q.CHURN, {"replaced": replaced, "reset": False})
    vectors_now = store.run(Q.COUNT)
    count = int(vectors_now[0]["vectors"]) if vectors_now else 0
    if churn and count and int(churn[0]["replaced"] or 0) > REBUILD_SHARE * count:
        log.info("rebuilding the name vector index", extra={"replaced": churn[0]["replaced"], "vectors": count})
        rebuild_vector_index(store, dimension)
    wait_until_searchable(store)
