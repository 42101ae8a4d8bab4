"""Entity linking: mentions the understanding model found (or free text) -> graph nodes.

PRODUCT -> sku, BRAND -> brand name, CATEGORY -> category name, ORDER_ID -> normalised id (never
looked up: ownership is the dialogue's business, through the signed-in customer), ATTRIBUTE ->
the catalog's value in lower case (as in `Product.attr_values`), MONEY -> "200.00 USD".

How a product mention is scored (every score in [0, 1], one ranked list):
1. exact and alias keys (full name, name without brand or variant, model line, brand + model line,
   model numbers in any spacing, sku, the head of a subtitled name), also after taking variant words
   out ("aurora x2 in black", "nova 5 256gb") -> 1.0; a name or title typed exactly names its own
   products before a model line, series or head of the same words names theirs;
2. otherwise fuzzy recall from token postings (rapidfuzz with a cutoff, for typos) and, when that is
   not convincing, the graph's full-text index (which also sees products added since the last
   refresh), scored by a soft TF-IDF F-score of the mention against each line's aliases -> at most
   `fuzzy_weight`; an accessory's kind alone ("65W USB-C Power Adapter") at most `generic_weight`;
3. when the lexical best is below `embedding_threshold`, sentence-embedding similarity for
   paraphrases ("noise cancelling nordic headphones"): with `graph_vectors`, the products' name
   vectors computed at import and searched through the graph's vector index (kg/embeddings.py;
   nothing catalog-sized is embedded here), otherwise the line titles' vectors held here;
4. variant words in the mention, the message (other names in it blanked) and its ATTRIBUTE entities
   pick products inside a line, and lines among tied lines. When the best two candidates are closer
   than `ambiguity_margin` the entity comes back with `ambiguous=True`, no `node_id`, and the tied
   candidates ranked (alternating between lines): the dialogue asks.

On a catalog unlike the one the model was trained on, its spans miss product names, or type them as
brands, categories, values or order ids, or cut them short. `link()` then reads the message itself
(`_spot_products`): spans covering most of one of a line's names, or a few words found together in
at most three lines' names, are linked as product mentions and replace what they explain. When
still nothing names a product, an attribute value that names products (an author, a designer, a
maker: see `LineIndex.naming_key`) offers the products that carry it (`_value_products`).

The index follows the catalog: at most every `refresh_interval_s` one cheap query reads the
catalog version; when it moved, the products stamped since the newest stamp seen are re-read (a
product count catches removals; every `reconcile_interval_s`, or when stamps cannot be trusted, all
fingerprints are compared), and only the model lines they touch are rebuilt and, for new titles,
embedded (held vectors only). No retraining, ever. The index keeps no product records: lines hold what linking needs.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from rapidfuzz import fuzz, process

from common.settings import Settings
from common.text import FILLER, covers, words
from kg.embeddings import vector_index_status
from kg.queries import embeddings as EQ
from kg.queries import linking as Q
from kg.scan import scan
from kg.schema import wait_for_indexes
from nlu.labels import ENTITY_TYPES, FAMILY_OF
from nlu.linking import graph_index, snapshot
from nlu.linking import text as T
from nlu.linking.encoder import TextEncoder
from nlu.linking.index import (
    CappedPosting,
    EmbeddingTable,
    Line,
    LineIndex,
    NameTable,
    ProductRecord,
    brand_entry,
    category_entry,
    compact_ratio,
    fuzzy_cutoff,
    make_line,
    merge_split_tokens,
    soft_coverage,
    soft_score,
    token_sims,
)
from nlu.types import Candidate, Entity, Understanding

log = logging.getLogger(__name__)

LINKED_TYPES = ENTITY_TYPES  # every entity type resolves to something


class LinkerConfig(BaseModel):
    """Tuning knobs; the defaults are what the evaluation in nlu/linking/evaluation.py reports."""

    refresh_interval_s: float = Field(5.0, ge=0.0, description="Least time between catalog-version checks.")
    page_size: int = Field(5000, ge=100, le=100_000)
    snapshot_change_fraction: float = Field(0.01, ge=0.0, le=1.0, description=(
        "The index on disk (`EntityLinker.snapshot`) is written again after a full comparison with the "
        "graph changed more than this share of the products."))
    full_reload_fraction: float = Field(0.3, ge=0.0, le=1.0,
                                        description="Above this share of changed products, re-read all pages.")
    reconcile_interval_s: float = Field(600.0, ge=0.0, description=(
        "When the version moves, compare every product's fingerprint at most this often; in between, "
        "only products stamped since the last change are read (a count check catches removals)."))
    min_score: float = Field(0.6, ge=0.0, le=1.0, description="Below this a mention links to nothing.")
    distinctive_max_lines: int = Field(3, ge=0, le=20, description=(
        "A product mention that nothing else links, whose every word is spelt exactly as in the names "
        "of at most this many model lines ('the lamborghini'), gets those lines as candidates; 0: off."))
    distinctive_score: float = Field(0.7, ge=0.0, le=1.0)
    kind_max_lines: int = Field(30, ge=0, le=200, description=(
        "An untagged word after 'the' that is the head word of at most this many lines' names "
        "('the charger') names their products, to be asked back among; 0: off."))
    ambiguity_margin: float = Field(0.05, ge=0.0, le=1.0)
    max_candidates: int = Field(10, ge=1, le=100)
    fuzzy_weight: float = Field(0.95, gt=0.0, le=1.0, description="Ceiling of a non-exact lexical score.")
    recall_lines: int = Field(30, ge=1, description="Lines scored in full after the token-postings recall.")
    generic_weight: float = Field(0.9, gt=0.0, le=1.0, description=(
        "Ceiling of a match on an accessory's kind alone (\"65W USB-C Power Adapter\"), below a match on its "
        "full name, so that every accessory of that kind ties."))
    posting_cap: int = Field(2000, ge=10, description="Words in more lines than this do not drive recall.")
    graph_cache_entries: int = Field(20_000, ge=100, description=(
        "With the index in the graph: entries (lines, keys, postings) a worker keeps per map, read once per "
        "index version."))
    graph_change_chunk: int = Field(5_000, ge=1, description=(
        "With the index in the graph: products whose change is worked out and written together (one write "
        "per chunk of entries)."))
    graph_index_wait_s: float = Field(900.0, ge=0, description=(
        "With the index in the graph: how long a worker's start waits for the graph server to finish building "
        "its indexes (after the server loads its data) before going on without them (GRAPH_INDEX_WAIT_S)."))
    graph_write_attempts: int = Field(5, ge=1, description=(
        "With the index in the graph: how often a process reads again after another wrote first."))
    graph_build_stall_s: float = Field(120.0, gt=0, description=(
        "With the index in the graph: a first build or a change of several writes by another process that "
        "wrote nothing for this long is taken for dead, and the index is built again from nothing."))
    use_fulltext: bool = True
    fulltext_threshold: float = Field(0.9, ge=0.0, le=1.0, description="The graph's full-text search runs when "
                                      "the in-memory lexical best is below this (it also sees products added "
                                      "since the last refresh).")
    fulltext_limit: int = Field(40, ge=1, le=1000)
    use_embeddings: bool = True
    graph_vectors: bool = Field(False, description=(
        "Search product names by meaning through the graph's vector index (kg/embeddings.py: vectors computed "
        "at import) instead of embedding every line title in this worker; LINKING_VECTORS=graph sets it."))
    embedding_threshold: float = Field(0.85, ge=0.0, le=1.0,
                                       description="Embeddings run only when the lexical best is below this.")
    embedding_dtype: Literal["float16", "float32"] = Field(
        "float32", description="float16 halves the matrix, but numpy converts half floats slowly on a CPU.")
    embedding_top_k: int = Field(20, ge=1)
    embedding_floor: float = Field(0.5, description="Cosine similarity that maps to score 0.")
    embedding_ceiling: float = Field(0.95, description="Cosine similarity that maps to `embedding_max`.")
    embedding_max: float = Field(0.9, ge=0.0, le=1.0)
    category_embedding_floor: float = Field(0.35, description="Categories: one or two words against a "
                                            "name and its description score lower than product titles.")
    category_embedding_ceiling: float = 0.75
    variant_floor: float = Field(0.85, gt=0.0, le=1.0,
                                 description="Score factor per variant word a product does not match.")
    text_min_score: float = Field(0.85, ge=0.0, le=1.0, description="link_text keeps fuzzy spans above this.")
    text_max_tokens: int = Field(8, ge=1, le=16)
    fallback_link_text: bool = Field(True, description="link() runs link_text when the model tagged nothing.")
    find_products: bool = Field(True, description=(
        "link() looks for product names in the message itself when the model linked no product: spans "
        "covering most of a product's name, and attribute values that name products (an author, a maker)."))
    spot_cover: float = Field(0.7, ge=0.0, le=1.0, description=(
        "A span of the message is read as a product name when it covers at least this share of one of the "
        "line's names (IDF-weighted, typos by similarity), and this share of the span is name words."))
    spot_max_tokens: int = Field(12, ge=2, le=32, description="Longest span (content words) read as a name.")
    spot_lines: int = Field(50, ge=1, description="Lines whose names are matched against the message.")
    value_name_max_lines: int = Field(6, ge=0, le=50, description=(
        "An attribute value shared by every product of at most this many lines, under a key that varies "
        "inside no line (an author, a maker), names those products when nothing else does; 0: off."))
    value_name_score: float = Field(0.8, ge=0.0, le=1.0)
    value_name_diversity: float = Field(0.5, ge=0.0, le=1.0, description=(
        "A key names products when it takes at least this many distinct values per line that has it."))


@dataclass(frozen=True, eq=False)
class _State:
    version: Any
    lines: LineIndex
    brands: NameTable
    categories: NameTable
    line_emb: EmbeddingTable = field(default_factory=EmbeddingTable)
    cat_emb: EmbeddingTable = field(default_factory=EmbeddingTable)
    value_keys: tuple[str, ...] = ()  # attribute values joined, for fuzzy ATTRIBUTE linking
    value_words: tuple[str, ...] = ()  # longer words of attribute values, for misspelt variant words
    value_tokens: frozenset[str] = frozenset()  # every word of an attribute value
    naming_words: Mapping[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)  # word -> naming values
    watermark: str | None = None  # the latest `updated_at` among indexed products (the graph's clock)
    reconciled_at: float = 0.0  # when every fingerprint was last compared (this process's clock)
    graph_vectors: bool = False  # names by meaning come from the graph's vector index, not `line_emb`
    # A shopper's word -> the name words it may stand for (`token_sims`), kept while this index lives:
    # the fuzzy search over a large vocabulary is the dearest step, and words repeat between messages.
    word_sims: dict[str, dict[str, float]] = field(default_factory=dict, compare=False, repr=False)


def _distinctive_lines(idx: LineIndex, words: Sequence[str], max_lines: int, min_len: int = 4) -> list[int]:
    """Lines whose names contain every one of `words` exactly, when there are at most `max_lines`
    of them and each word is long enough to mean something (`min_len`+ characters, or a digit in it)."""
    if not words or max_lines <= 0 or any(len(w) < min_len and not any(ch.isdigit() for ch in w) for w in words):
        return []
    common: set[int] | None = None
    capped = []  # words in too many lines for an index in the graph to list them: checked on the lines
    for w in words:
        got = idx.postings.get(w, ())
        if isinstance(got, CappedPosting):
            capped.append(w)
            continue
        post = set(got)
        common = post if common is None else common & post
        if not common:
            return []
    if common and capped:
        if len(common) > 4 * max_lines:
            return []
        idx.prefetch_lines(common)
        common = {lid for lid in common if all(w in idx.lines[lid].tokens for w in capped)}
    return sorted(common) if common and len(common) <= max_lines else []


@dataclass
class _Scored:
    line: Line
    score: float
    skus: frozenset[str] | None = None  # an exact key that names only some products of the line


class EntityLinker:
    """Links entities to graph nodes. Construction is free: the index is built on first use (or by
    `warm()`), and the encoder loads the first time an embedding is needed."""

    def __init__(self, store: Any, *, config: LinkerConfig | None = None, encoder: Any = None,
                 encoder_path: str = "", currency: str = "USD",
                 clock: Callable[[], float] = time.monotonic, snapshot: Path | None = None,
                 in_graph: bool = False) -> None:
        self.store = store
        # The index kept in the graph (nlu/linking/graph_index.py), shared by every worker; else in memory,
        # kept between starts at `snapshot` (nlu/linking/snapshot.py; None: never). With the index in the
        # graph, `snapshot` is only the lock file a host's workers take turns on at their first start.
        self.in_graph = in_graph
        self.snapshot = snapshot
        self.config = config or LinkerConfig()
        self.currency = currency.upper()
        if isinstance(encoder, TextEncoder) or encoder is None:
            self.encoder = encoder or TextEncoder(encoder_path)
        else:  # a SentenceTransformer (or anything with its `encode`) shared with another component
            self.encoder = TextEncoder(encoder_path, model=encoder)
        self._clock = clock
        self._state: _State | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, store: Any = None, *, config: LinkerConfig | None = None,
                      encoder: Any = None) -> EntityLinker:
        if store is None:
            from kg.store import open_store

            store = open_store(settings)
        return cls(store, config=config, encoder=encoder, encoder_path=settings.encoder_path,
                   currency=settings.store_currency)

    # -- the index --------------------------------------------------------------------------------
    def warm(self) -> None:
        """Build the index now (and load the encoder), rather than on the first question."""
        self.refresh(force=True)

    def refresh(self, *, force: bool = False) -> bool:
        """Check the catalog version (at most every `refresh_interval_s`) and apply what changed.
        Returns True when the index changed. While one thread rebuilds, others keep the old index."""
        if not force and self._state is not None and \
                self._clock() - self._checked_at < self.config.refresh_interval_s:
            return False
        if not self._lock.acquire(blocking=self._state is None or force):
            return False
        try:
            state = self._state
            if not force and state is not None and \
                    self._clock() - self._checked_at < self.config.refresh_interval_s:
                return False
            rows = self.store.run(Q.CATALOG_VERSION)
            version = rows[0]["version"] if rows else None
            stamp = rows[0].get("updated_at") if rows else None
            self._checked_at = self._clock()
            # Unchanged catalog: nothing to do, unless the name vectors became searchable since
            # (`kgqa graph embed` ran after this worker started; it changes no catalog version).
            if state is not None and version is not None and version == state.version and not force and \
                    (state.graph_vectors or not self._graph_vectors_ready()):
                return False
            # one worker of the host builds, the others load (with the index in the graph: sync_graph_index)
            starting = state is None and self.snapshot is not None and not self.in_graph
            with snapshot.first_start(self.snapshot) if starting else contextlib.nullcontext():
                new, changed = self._rebuild(state, version, stamp)
            self._state = new
            return changed
        finally:
            self._lock.release()

    def _current(self) -> _State:
        self.refresh()
        assert self._state is not None
        return self._state

    def indexed(self) -> tuple[list[ProductRecord], list[str], list[str]]:
        """The catalog as the index sees it: product records (read again from the graph: the index
        keeps none), brand names, category names. For evaluation and tooling."""
        st = self._current()
        return (sorted(self._all_products(), key=lambda r: r.sku), [e.node_id for e in st.brands.entries],
                [e.node_id for e in st.categories.entries])

    def catalogue_version(self) -> Any:
        """The catalog version the index reflects (checked against the graph at most every
        `refresh_interval_s`): cheap, for callers that cache something derived from the names."""
        return self._current().version

    def catalogue_names(self) -> list[str]:
        """Product, model-line, brand and category names as the index holds them (no graph read):
        what the grounding guard counts as the shop's names."""
        st = self._current()
        names = [e.node_id for e in st.brands.entries] + [e.node_id for e in st.categories.entries]
        if self.in_graph:  # the lines are in the graph: the products' names and model lines, read page by page
            for r in self._all_products():
                names.append(r.line_name)
                names.append(r.name)
            return names
        for line in st.lines.lines.iter_lines():
            names.append(line.name)
            names.extend(line.names)
        return names

    def stats(self) -> dict[str, Any]:
        st = self._state
        if st is None:
            return {"built": False}
        return {"built": True, "version": st.version, "products": len(st.lines.fingerprints),
                "lines": len(st.lines.lines), "brands": len(st.brands.entries),
                "categories": len(st.categories.entries), "vocabulary": len(st.lines.vocab_list),
                "embedding_rows": len(st.line_emb), "embedding_bytes": int(st.line_emb.matrix.nbytes)}

    def _rebuild(self, state: _State | None, version: Any, stamp: str | None = None) -> tuple[_State, bool]:
        if self.in_graph:
            return self._rebuild_in_graph(state, version, stamp)
        t0 = time.perf_counter()
        cfg = self.config
        now = self._clock()
        base = state.lines if state is not None else LineIndex()
        reconciled_at = state.reconciled_at if state is not None else now
        snap = self._load_snapshot() if state is None else None
        changes: dict[str, ProductRecord | None] | None
        compared = False  # every product's fingerprint compared with the index
        if snap is not None:  # a start with the index on disk: what changed since, from the fingerprints
            base = snap.lines
            if version is not None and (snap.version, snap.stamp) == (version, stamp) and \
                    self.store.run(Q.PRODUCT_COUNT)[0]["products"] == len(base.fingerprints):
                changes, watermark = {}, snap.watermark
            else:
                changes, watermark = self._reconcile(base)
                compared = True
        elif state is None:
            changes = {r.sku: r for r in self._all_products()}
            watermark = _latest(r.updated_at for r in changes.values() if r is not None)
        else:
            changes, watermark = self._changes_since(state, now, stamp)
            if changes is None:  # a removal, a product written without a stamp, or time to check all
                changes, watermark = self._reconcile(base)
                reconciled_at = now
                compared = True
        lines = base.apply(changes, self._products_by_skus)
        # The index on disk: written at a start that built it or caught up with another catalog version (before
        # the start's lock is let go: the workers waiting on it load this), and again, in the background (the
        # index is immutable), once a periodic comparison found enough changed.
        if self.snapshot is not None:
            kept = snapshot.Snapshot(version, stamp, watermark, lines)
            if state is None and (snap is None or compared):
                snapshot.save(self.snapshot, kept)
            elif compared and len(changes) > cfg.snapshot_change_fraction * max(len(lines.fingerprints), 1):
                threading.Thread(target=snapshot.save, args=(self.snapshot, kept), name="kgqa-linking-snapshot",
                                 daemon=True).start()
        return self._finish(state, version, lines, len(changes), watermark, reconciled_at, t0)

    def _finish(self, state: _State | None, version: Any, lines: LineIndex, changes: int, watermark: str | None,
                reconciled_at: float, t0: float) -> tuple[_State, bool]:
        """The state over `lines` (`changes`: how many products changed in it): brands, categories, the
        values' vocabulary, the same for both kinds of index."""
        cfg = self.config
        brands = NameTable.build([brand_entry(r["name"]) for r in self.store.run(Q.BRANDS) if r.get("name")])
        cat_rows = [r for r in self.store.run(Q.CATEGORIES) if r.get("name")]
        categories = NameTable.build([category_entry(r["name"], r.get("description")) for r in cat_rows])
        graph_vectors = self._graph_vectors_ready()
        if state is not None and not changes and brands.entries == state.brands.entries and \
                categories.entries == state.categories.entries and state.graph_vectors == graph_vectors:
            return replace(state, version=version, watermark=watermark, reconciled_at=reconciled_at), False
        line_emb = state.line_emb if state is not None else EmbeddingTable()
        cat_emb = state.cat_emb if state is not None else EmbeddingTable()
        if cfg.use_embeddings:
            if not cfg.graph_vectors:  # LINKING_VECTORS=memory: every line title embedded here (small catalogs)
                titles = graph_index.titles(lines)
                line_emb = line_emb.with_texts(titles, self.encoder.encode, cfg.embedding_dtype)
                if len(line_emb) > 1.25 * len(set(titles)) + 64:
                    line_emb = line_emb.compacted(titles)
            cat_texts = [t for e in categories.entries for t in (e.node_id, e.text)]
            cat_emb = cat_emb.with_texts(cat_texts, self.encoder.encode, "float32").compacted(cat_texts)
        value_keys = tuple(" ".join(k) for k in lines.values)
        value_tokens = frozenset(t for k in lines.values for t in k)
        value_words = tuple(sorted(t for t in value_tokens if fuzzy_cutoff(t) is not None))
        new = _State(version, lines, brands, categories, line_emb, cat_emb, value_keys, value_words, value_tokens,
                     _naming_words(lines, cfg.value_name_max_lines, cfg.value_name_diversity), watermark,
                     reconciled_at, graph_vectors)
        log.info("linking index updated", extra={
            "catalog_version": version, "changed_products": changes, "products": len(lines.fingerprints),
            "lines": len(lines.lines), "ms": round((time.perf_counter() - t0) * 1000, 1)})
        return new, True

    # -- the index kept in the graph (nlu/linking/graph_index.py) ----------------------------------
    def _rebuild_in_graph(self, state: _State | None, version: Any, stamp: str | None) -> tuple[_State, bool]:
        t0 = time.perf_counter()
        if state is None:  # a start: ready only once the graph answers the index's look-ups by its own indexes
            # (not the vector index: names by meaning are skipped until it is built, `_graph_vectors_ready`)
            wait_for_indexes(self.store, self.config.graph_index_wait_s, ignore=(EQ.VECTOR_LABEL,))
        meta = self.sync_graph_index(version, stamp)
        old = state.lines if state is not None else None
        if isinstance(old, graph_index.GraphLineIndex) and old.meta is not None and meta is not None and \
                old.meta.version == meta.version:
            lines: LineIndex = old
        elif meta is None:
            lines = LineIndex()
        else:  # another version: a new reading of it, with caches of its own
            lines = graph_index.open_index(self.store, meta, cap=self.config.posting_cap,
                                           bound=self.config.graph_cache_entries)
        changed = 0 if lines is old else max(1, meta.products if meta is not None else 0)
        return self._finish(state, version, lines, changed, meta.watermark if meta else None, self._clock(), t0)

    def sync_graph_index(self, version: Any = None, stamp: str | None = None, *,
                         skus: Sequence[str] | None = None) -> graph_index.Meta | None:
        """Bring the index in the graph up to the catalog (`version`, `stamp`: the catalog's, read now when
        None) and return where it stands. Any process may: writes only land on the version they read, so
        two that saw the same change write it once. A host's workers starting together take turns (the
        lock beside `snapshot`), so one builds and the others find it built. `skus`: the products the
        write that moved the catalog one version touched (an edit, a removal): when the index is at the
        version before, only they are compared."""
        if version is None:
            rows = self.store.run(Q.CATALOG_VERSION)
            version = rows[0]["version"] if rows else None
            stamp = rows[0].get("updated_at") if rows else None
        with snapshot.first_start(self.snapshot) if self.snapshot is not None else contextlib.nullcontext():
            for _ in range(self.config.graph_write_attempts):
                meta = graph_index.read_meta(self.store)
                if meta is not None and meta.complete and (meta.catalog, meta.stamp) == (version, stamp):
                    return meta
                if meta is None or not meta.complete:
                    if meta is not None and self._wait_for_build(meta):
                        continue
                    self._build_graph_index(version, stamp)
                else:
                    self._catch_up_graph_index(meta, version, stamp, skus)
            return graph_index.read_meta(self.store)

    def _wait_for_build(self, meta: graph_index.Meta) -> bool:
        """Another process is writing a first build or a change of several chunks (its version moves):
        wait for it. False when it stopped moving for `graph_build_stall_s` (a writer that died half-way:
        this one builds the index again from nothing)."""
        seen, since = meta.version, time.monotonic()
        while time.monotonic() - since < self.config.graph_build_stall_s:
            time.sleep(0.5)
            now = graph_index.read_meta(self.store)
            if now is None or now.complete:
                return True
            if now.version != seen:
                seen, since = now.version, time.monotonic()
        return False

    def _build_graph_index(self, version: Any, stamp: str | None) -> None:
        t0 = time.perf_counter()
        records = {r.sku: r for r in self._all_products()}
        watermark = _latest(r.updated_at for r in records.values())
        built = LineIndex().apply(records)
        del records
        graph_index.clear(self.store)
        meta = graph_index.start(self.store)
        done = graph_index.write_delta(self.store, meta.version, graph_index.full_delta(built), None,
                                       catalog=version, stamp=stamp, watermark=watermark)
        graph_index.purge_dead(self.store)
        log.info("linking index built in the graph", extra={
            "products": len(built.fingerprints), "lines": len(built.lines), "written": done is not None,
            "ms": round((time.perf_counter() - t0) * 1000, 1)})

    def _catch_up_graph_index(self, meta: graph_index.Meta, version: Any, stamp: str | None,
                              skus: Sequence[str] | None = None) -> None:
        t0 = time.perf_counter()
        base = graph_index.open_index(self.store, meta, cap=None, bound=None)
        if skus is not None and isinstance(version, int) and meta.catalog == version - 1:
            found = {r.sku: r for r in self._products_by_skus(list(skus))}
            changes: dict[str, ProductRecord | None] = {s: found.get(s) for s in skus}
            watermark = _latest([meta.watermark, *(r.updated_at for r in found.values())])
        else:
            changes, watermark = self._graph_changes(base, meta, stamp)
        items = list(changes.items())
        at: int | None = meta.version
        step = self.config.graph_change_chunk
        for i in range(0, max(len(items), 1), step):
            part = dict(items[i:i + step])
            last = i + step >= len(items)
            delta = base.delta(part, self._products_by_skus)
            at = graph_index.write_delta(self.store, at, delta, base, catalog=version if last else meta.catalog,
                                         stamp=stamp if last else meta.stamp,
                                         watermark=watermark if last else meta.watermark, final=last)
            if at is None:
                return  # another process wrote first: read again
            base = graph_index.absorb(base, delta)
        if changes:
            graph_index.purge_dead(self.store)
        log.info("linking index in the graph updated", extra={
            "catalog_version": version, "changed_products": len(changes),
            "ms": round((time.perf_counter() - t0) * 1000, 1)})

    def _graph_changes(self, base: LineIndex, meta: graph_index.Meta,
                       stamp: str | None) -> tuple[dict[str, ProductRecord | None], str | None]:
        """What changed since the index in the graph was written: the products stamped after its
        watermark when the count adds up, else every fingerprint compared."""
        limit = max(1000, int(self.config.full_reload_fraction * max(meta.products, 1)))
        if meta.watermark is not None and stamp is not None and str(stamp) > meta.watermark:
            rows = self.store.run(Q.PRODUCTS_CHANGED_SINCE, {"since": meta.watermark, "limit": limit + 1})
            if len(rows) <= limit:
                recs = [ProductRecord.from_row(r) for r in rows if r.get("sku")]
                old = graph_index.fingerprints_of(base, [r.sku for r in recs])
                changes: dict[str, ProductRecord | None] = {r.sku: r for r in recs if old.get(r.sku) != r.h}
                expected = meta.products + sum(1 for r in recs if r.sku not in old)
                if self.store.run(Q.PRODUCT_COUNT)[0]["products"] == expected:
                    return changes, _latest([meta.watermark, *(r.updated_at for r in recs)])
        return self._reconcile(base)

    def _load_snapshot(self) -> snapshot.Snapshot | None:
        if self.snapshot is None:
            return None
        t0 = time.perf_counter()
        snap = snapshot.load(self.snapshot)
        if snap is not None:
            log.info("linking index loaded", extra={"path": str(self.snapshot), "products": len(snap.lines.fingerprints),
                                                   "catalog_version": snap.version,
                                                   "ms": round((time.perf_counter() - t0) * 1000, 1)})
        return snap

    def _all_products(self) -> Iterable[ProductRecord]:
        for rows in scan(self.store, Q.PRODUCTS_PAGE, limit=self.config.page_size):
            yield from (ProductRecord.from_row(r) for r in rows if r.get("sku"))

    def _changes_since(self, state: _State, now: float,
                       stamp: str | None) -> tuple[dict[str, ProductRecord | None] | None, str | None]:
        """Products stamped after the newest stamp seen; None when only a full comparison can tell:
        no stamps, time for the periodic check, or a catalog change stamped no later than what the
        index has (an import in the same second as the last one, a change made without a stamp)."""
        cfg = self.config
        if state.watermark is None or stamp is None or str(stamp) <= state.watermark or \
                now - state.reconciled_at >= cfg.reconcile_interval_s:
            return None, state.watermark
        limit = max(1000, int(cfg.full_reload_fraction * max(len(state.lines.fingerprints), 1)))
        rows = self.store.run(Q.PRODUCTS_CHANGED_SINCE, {"since": state.watermark, "limit": limit + 1})
        if len(rows) > limit:
            return None, state.watermark  # a big import: cheaper to compare everything
        old = state.lines.fingerprints
        recs = [ProductRecord.from_row(r) for r in rows if r.get("sku")]
        changes: dict[str, ProductRecord | None] = {r.sku: r for r in recs if old.get(r.sku) != r.h}
        expected = len(old) + sum(1 for sku in changes if sku not in old)
        count = self.store.run(Q.PRODUCT_COUNT)[0]["products"]
        if count != expected:
            return None, state.watermark
        return changes, _latest([state.watermark, *(r.updated_at for r in recs)])

    def _reconcile(self, base: LineIndex) -> tuple[dict[str, ProductRecord | None], str | None]:
        """Compare every product's fingerprint with the index; re-read what differs."""
        fps: dict[str, str] = {}
        stamps: list[str | None] = []
        for rows in scan(self.store, Q.PRODUCT_FINGERPRINTS, limit=self.config.page_size):
            fps.update((str(r["sku"]), str(r["h"] or "")) for r in rows if r.get("sku"))
            stamps.extend(r.get("updated_at") for r in rows)
        old = graph_index.fingerprints_of(base, list(fps))
        changed = [s for s, h in fps.items() if old.get(s) != h]
        gone = len(old) != len(base.fingerprints)  # the index holds products the catalog no longer has
        changes: dict[str, ProductRecord | None] = dict.fromkeys(
            (s for s in graph_index.indexed_skus(base) if s not in fps) if gone else (), None)
        if len(changed) > self.config.full_reload_fraction * max(len(fps), 1):
            wanted = set(changed)
            changes.update((r.sku, r) for r in self._all_products() if r.sku in wanted)
        else:
            changes.update((r.sku, r) for r in self._products_by_skus(changed))
        return changes, _latest(stamps)

    def _products_by_skus(self, skus: Sequence[str]) -> list[ProductRecord]:
        out: list[ProductRecord] = []
        for i in range(0, len(skus), 1000):
            rows = self.store.run(Q.PRODUCTS_BY_SKUS, {"skus": list(skus[i:i + 1000])})
            out.extend(ProductRecord.from_row(r) for r in rows if r.get("sku"))
        return out

    # -- public linking ---------------------------------------------------------------------------
    def link(self, understanding: Understanding) -> Understanding:
        """The dialogue's entry point: every entity of the understanding linked (or left as it was
        when it already carries a node or came from the conversation)."""
        text = understanding.text
        self._prefetch(text)
        entities = self._join_cut_names(self.link_entities(understanding.entities, text), text)
        tagged = bool(entities)
        if not entities and self.config.fallback_link_text and text.strip():
            entities = self.link_text(text)
        family = FAMILY_OF.get(understanding.intent.name)
        if self.config.find_products and text.strip() and self._may_name_more(entities, text):
            entities = self._spot_products(entities, text, family)
        if tagged and (family in _PRODUCT_FAMILIES or understanding.intent.name == "out_of_scope") and \
                not _has_product(entities):
            entities = self._mistyped_products(entities, text)
        if self.config.find_products and text.strip() and not _has_product(entities):
            entities = self._value_products(entities, text, family)
        if self.config.find_products and text.strip() and not _has_product(entities) and \
                (family in _PRODUCT_FAMILIES or understanding.intent.name == "out_of_scope"):
            entities = self._kind_products(entities, text)
        return understanding.model_copy(update={"entities": entities})

    def _prefetch(self, text: str) -> None:
        """With the index in the graph: its entries a message will ask for, in one round trip (the postings
        of its words, its word groups as exact and glued keys)."""
        if not self.in_graph or not text.strip():
            return
        st = self._current()
        seqs = [T.tokens(text), T.content_tokens(text)]
        spans = [seq[i:i + n] for seq in seqs for n in range(1, min(len(seq), _PREFETCH_SPAN) + 1)
                 for i in range(len(seq) - n + 1)]
        keys = {" ".join(span) for span in spans} | {"".join(span) for span in spans if len(span) <= 6}
        words = {t for seq in seqs for t in seq} | {"".join(span) for span in spans if len(span) in (2, 3)}
        st.lines.prefetch(words, keys)

    def _join_cut_names(self, entities: list[Entity], text: str) -> list[Entity]:
        """One product name the model cut in two ("Kestrel Slate 14 with | 16 GB RAM", the second
        piece linked to some other product by its words alone): two product mentions with nothing
        but spaces or one word that carries a name on ("with", "in") between them are linked as one
        mention. When that links to one product whose name holds every word of the second piece
        (its variant), it replaces both; "the Aurora X2 with the Nova 5" stays two products, since
        "nova 5" is no part of an Aurora's name."""
        out = sorted(entities, key=lambda e: (e.start is None, e.start or 0))
        i = 0
        while i < len(out) - 1:
            a, b = out[i], out[i + 1]
            joined = None
            if (a.type == b.type == "PRODUCT" and a.source == b.source == "message" and a.start is not None
                    and a.end is not None and b.start is not None and b.end is not None and a.end <= b.start):
                gap = T.fold(text[a.end:b.start]).split()
                if not gap or (len(gap) == 1 and gap[0] in _CARRY_ON):
                    joined = self.link_mention(text[a.start:b.end], "PRODUCT", context=[text])
            if joined is not None and joined.node_id and not joined.ambiguous:
                name = next((c.name for c in joined.candidates if c.node_id == joined.node_id), "")
                piece = [w for w in words(b.text) if w not in FILLER]
                if piece and covers(piece, words(name)):
                    out[i:i + 2] = [joined.model_copy(update={"start": a.start, "end": b.end})]
                    continue
            i += 1
        return out

    def _mistyped_products(self, entities: list[Entity], text: str) -> list[Entity]:
        """A product question whose product the model tagged as something else, which happens with
        names unlike any it was trained on ("3m 8210" as an order id; "lamborghini lego" as a brand
        and a category). When no product was linked, the mentions that found nothing of their own
        type (and order ids with letters in them) are tried as one product mention, over the text
        they span together, then one by one; the first that links replaces them."""
        if any(e.type == "PRODUCT" and (e.node_id or e.candidates) for e in entities):
            return entities
        failed = [e for e in entities if e.source == "message" and e.start is not None and e.end is not None and (
            (e.type in ("BRAND", "CATEGORY") and not e.node_id and not e.candidates)
            or (e.type == "ORDER_ID" and re.search(r"[A-Za-z]", e.text)))]
        if not failed:
            return entities
        tries = [(min(e.start for e in failed), max(e.end for e in failed), failed)] if len(failed) > 1 else []
        tries += [(e.start, e.end, [e]) for e in failed]
        for start, end, replaced in tries:
            linked = self.link_mention(text[start:end], "PRODUCT", context=[text])  # type: ignore[index]
            if linked.node_id or linked.candidates:
                product = linked.model_copy(update={"start": start, "end": end})
                kept = [e for e in entities if all(e is not r for r in replaced)]
                return sorted(kept + [product], key=lambda e: (e.start is None, e.start or 0))
        return entities

    def _may_name_more(self, entities: list[Entity], text: str) -> bool:
        """Whether the message may name a product that its entities miss: none names one, one found
        nothing of its type, or a name word stands right next to an ambiguous product mention ("castle
        siege" of "castle siege the dragon expansion"). A question whose products are linked costs nothing more."""
        if not _has_product(entities) or any(_failed(e) for e in entities):
            return True
        spans = [(e.start, e.end) for e in entities if e.type == "PRODUCT" and not e.node_id and e.start is not None
                 and e.end is not None]
        if not spans:
            return False
        postings = self._current().lines.postings
        toks = T.tokens_with_offsets(text)
        for start, end in spans:
            inside = [n for n, t in enumerate(toks) if start <= t.start and t.end <= end]
            if not inside:
                continue
            for step, at in ((-1, inside[0]), (1, inside[-1])):
                n, seen = at + step, 0
                while 0 <= n < len(toks) and seen < 3:
                    if toks[n].text not in T.STOPWORDS:
                        if toks[n].text in postings:
                            return True
                        seen += 1
                    n += step
        return False

    def _spot_products(self, entities: list[Entity], text: str, family: str | None) -> list[Entity]:
        """Product names the model did not tag, or tagged as something else or too short ("who designed
        the quarry kings game", "harbour town police boat" read as a brand and two categories,
        "castle siege" of "castle siege the dragon expansion"): spans of the message that cover most of a line's name (see
        `_spot_spans`), each linked as a product mention with the message as context. A span replaces
        the entities inside it that it explains better (see `_replaceable`); one that would cut
        through a linked name is left alone."""
        st = self._current()
        toks = T.tokens_with_offsets(text)
        chosen: list[tuple[int, int, list[Entity]]] = []  # (start, end, the entities it replaces)
        for _score, i, j, lids in self._spot_spans(st, toks):
            i, j = _extend_over_values(st.lines, toks, i, j, lids)
            start, end = toks[i].start, toks[j - 1].end
            if any(start < b and a < end for a, b, _ in chosen):
                continue
            inside = [e for e in entities if e.start is not None and e.end is not None and e.start < end and start < e.end]
            if all(_replaceable(e, start, end, family) for e in inside):
                chosen.append((start, end, inside))
        if not chosen:
            return entities
        replaced = [e for _a, _b, inside in chosen for e in inside]
        rest = [e for e in entities if all(e is not x for x in replaced)]
        named = [(e.start, e.end) for e in rest if e.type in _NAMED and e.start is not None and e.end is not None]
        out = list(rest)
        for start, end, inside in chosen:
            # Variant words of the other names in the message are not this one's.
            others = named + [(a, b) for a, b, _ in chosen if (a, b) != (start, end)]
            context = [blank_spans(text, others)] + [e.text for e in rest if e.type == "ATTRIBUTE" and not any(
                e.start is not None and a <= e.start < b for a, b in others)]
            linked = self.link_mention(text[start:end], "PRODUCT", context=context)
            if not linked.node_id and not linked.candidates:
                out.extend(inside)  # the span named nothing after all: what was there stays
                continue
            skus = {c.node_id for c in linked.candidates} | {linked.node_id}
            # An attribute value inside the name that the product has stays (it says which variant).
            out.extend(e for e in inside if e.type == "ATTRIBUTE" and e.candidates and
                       self._has_value(st, skus, e.node_id))
            out.append(linked.model_copy(update={"start": start, "end": end}))
        return sorted(out, key=lambda e: (e.start is None, e.start or 0))

    def _spot_spans(self, st: _State, toks: Sequence[T.Token]) -> list[tuple[float, int, int, tuple[int, ...]]]:
        """(score, first token, end token, lines) of the spans of a message that name products, best
        and longest first:
        - a window of content words covering at least `spot_cover` of one of a line's names, titles
          or model line (IDF-weighted, a misspelt word by its similarity), and made of that much
          name words itself; scored by `soft_score`;
        - two or more exactly spelt words, found together in the names of at most
          `distinctive_max_lines` lines and not a brand or category name ("the herbal tea"
          for the two packs of one tea), scored `distinctive_score`."""
        cfg = self.config
        idx = st.lines
        words = [t.text for t in toks]
        pos = [i for i, w in enumerate(words) if w not in T.STOPWORDS]
        if not pos or not idx.lines:
            return []
        sims = _line_sims(st, {words[i] for i in pos})
        said: dict[str, float] = {}  # name word -> how well the message says it
        for i in pos:
            for v, sim in sims.get(words[i], {}).items():
                said[v] = max(said.get(v, 0.0), sim)
        weight = _recall_lines(idx, sims, [words[i] for i in pos], cfg.posting_cap)
        found: list[tuple[float, int, int, tuple[int, ...]]] = []
        idx.prefetch_lines(sorted(weight, key=lambda x: -weight[x])[:cfg.spot_lines])
        for lid in sorted(weight, key=lambda x: -weight[x])[:cfg.spot_lines]:
            line = idx.lines[lid]
            for alias in line.aliases:
                # at most this share of the alias can be named: skip the windows when it is too little
                total = sum(idx.idf(a) for a in alias)
                if sum(idx.idf(a) * said.get(a, 0.0) for a in alias) < cfg.spot_cover * total:
                    continue
                names = set(alias)
                at = [i for i in pos if names.intersection(sims.get(words[i], ()))]
                for a, first in enumerate(at):
                    for last in at[a:]:
                        window = [words[i] for i in pos if first <= i <= last]
                        if len(window) > cfg.spot_max_tokens:
                            break
                        # one word alone must be spelt right ("visa" is no typo of "vista"), and a
                        # longer span must have a word spelt right
                        if not any(w in names for w in window) or (len(window) == 1 and window[0] not in names):
                            continue
                        r, p = soft_coverage(window, alias, sims, idx.idf)
                        if p >= cfg.spot_cover and r >= cfg.spot_cover:
                            found.append((round(soft_score(window, alias, sims, idx.idf), 4), first, last + 1, (lid,)))
        for a, first in enumerate(pos):
            for b in range(a + 1, min(len(pos), a + 4)):
                window = [words[i] for i in pos[a:b + 1]]
                key = " ".join(window)
                if key in st.brands.exact or key in st.categories.exact or not all(w in idx.postings for w in window) \
                        or all(len(w) < 4 and not any(ch.isdigit() for ch in w) for w in window):
                    continue
                lids = tuple(_distinctive_lines(idx, window, cfg.distinctive_max_lines, min_len=3))
                if lids:
                    found.append((cfg.distinctive_score, first, pos[b] + 1, lids))
        # one entry per span: its best score and every line it names that well
        spans: dict[tuple[int, int], tuple[float, set[int]]] = {}
        for score, i, j, lids in found:
            best, got = spans.get((i, j), (0.0, set()))
            if score > best:
                spans[(i, j)] = (score, set(lids))
            elif score == best:
                got.update(lids)
        out = [(score, i, j, tuple(sorted(lids))) for (i, j), (score, lids) in spans.items()]
        out.sort(key=lambda f: (-f[0], -(f[2] - f[1]), f[1]))
        return out

    @staticmethod
    def _has_value(st: _State, skus: Iterable[str | None], value: str | None) -> bool:
        if not value:
            return False
        for sku in skus:
            lid = st.lines.line_of.get(sku or "")
            if lid is not None and any(v.lower() == value for v in st.lines.lines[lid].values):
                return True
        return False

    def _value_products(self, entities: list[Entity], text: str, family: str | None) -> list[Entity]:
        """Products named by an attribute value when nothing else names one: "the brandvold
        one", "games by lotte brandvold" name the designer's games (several: the dialogue asks which). The
        value must be shared by every product of at most `value_name_max_lines` lines under a key
        that varies inside no line (never a colour or a size), and be typed in full, or by one of
        its longer words that no product name has ("brandvold"). Words the model read as a catalog
        attribute value, and messages that point back ("is it by ..."), are left alone."""
        cfg = self.config
        st = self._current()
        if cfg.value_name_max_lines <= 0 or not st.naming_words:
            return entities
        toks = T.tokens_with_offsets(text)
        words = [t.text for t in toks]
        if _POINTS_BACK.intersection(words):
            return entities
        free = [i for i, t in enumerate(toks) if words[i] not in T.STOPWORDS and
                all(not (e.start is not None and e.end is not None and e.start < t.end and t.start < e.end)
                    or _replaceable(e, t.start, t.end, family) and not (e.type == "ATTRIBUTE" and e.candidates)
                    for e in entities)]
        if not free:
            return entities
        vocab = tuple(st.naming_words)
        sims = token_sims({words[i] for i in free}, st.naming_words, vocab, limit=3)
        best: tuple[float, int, int, list[tuple[str, ...]]] | None = None
        for n, i in enumerate(free):
            for w, sim in sims.get(words[i], {}).items():
                for value in st.naming_words[w]:
                    # the value's words in order from here, stopwords between them allowed
                    got, k, last = [sim], value.index(w) + 1, i
                    for nxt in free[n + 1:]:
                        if k >= len(value) or nxt > last + 2:
                            break
                        s2 = 1.0 if words[nxt] == value[k] else sims.get(words[nxt], {}).get(value[k], 0.0)
                        if s2 <= 0:
                            break
                        got.append(s2)
                        k, last = k + 1, nxt
                    full = len(got) == len(value)
                    # in part: the last word alone (a surname), spelt right, no product's name word
                    if not full and (len(got) > 1 or w != value[-1] or sim < 1.0 or len(w) < 4 or
                                     not w.isalpha() or w in st.lines.postings):
                        continue
                    if full and len(value) == 1 and sim < 1.0:
                        continue
                    score = round(cfg.value_name_score * (1.0 if full else 0.95) * sum(got) / len(got), 4)
                    if best is None or (score, last - i) > (best[0], best[2] - best[1]):
                        best = (score, i, last + 1, [value])
                    elif (score, i, last + 1) == best[:3]:
                        best[3].append(value)
        if best is None:
            return entities
        score, i, j, values = best
        lids = sorted({lid for v in values for lid in st.lines.named_by_value(v, cfg.value_name_diversity)})
        if not lids or len(lids) > cfg.value_name_max_lines:
            return entities
        start, end = toks[i].start, toks[j - 1].end
        scored = [_Scored(st.lines.lines[lid], score) for lid in lids]
        # No product mention here, so no word of it may be misspelt: variant words of the message
        # count only as typed ("the kahneman book" is no misspelt "ebook").
        ctx = _variant_tokens([text])
        cands = self._rank_products(st.lines, scored, _Words(frozenset(), ctx))
        product = self._decide(Entity(type="PRODUCT", text=text[start:end], start=start, end=end), cands)
        if not product.node_id and not product.candidates:
            return entities
        return _in_place_of_span(entities, product, start, end)

    def _kind_products(self, entities: list[Entity], text: str) -> list[Entity]:
        """A product named by its kind alone, untagged, when nothing else names one ("how much is
        the charger?", "is the black charger in stock?", "is the lager cold?" in a shop with three
        lagers): a word after "the" (or "this", "that", "your", "a", "an"), with at most two of
        the catalog's attribute values between them, that is the head word of the names of at most
        `kind_max_lines` lines (`Line.head`: "charger" of "100W GaN Charger for Forge 15"), no
        brand name, and no category name unless said in the singular. Those lines' products become
        tied candidates, variant words of the message choosing among them as typed: the dialogue
        asks which one, or answers at once when their answers agree. Never a guess for one of them."""
        cfg = self.config
        st = self._current()
        if cfg.kind_max_lines <= 0 or not st.lines.lines:
            return entities
        toks = T.tokens_with_offsets(text)
        words = [t.text for t in toks]
        taken = [(e.start, e.end, e.type) for e in entities if e.start is not None and e.end is not None and
                 (e.node_id or e.candidates) and e.type != "ATTRIBUTE"]
        for n, w in enumerate(words):
            if w in T.STOPWORDS or len(w) < 3 or not w.isalpha() or w in st.brands.exact:
                continue
            # a category's word in the singular after "the" is one of its products ("the charger");
            # in the plural it is the category ("how much are the chargers?")
            category_word = w in st.categories.exact
            if category_word and T.fold(text[toks[n].start:toks[n].end]) != w:
                continue
            if any(a < toks[n].end and toks[n].start < b and not (category_word and kind == "CATEGORY")
                   for a, b, kind in taken):
                continue
            k = n - 1
            while k >= 0 and n - k <= 3 and words[k] in st.value_tokens and words[k] not in _KIND_DETERMINERS:
                k -= 1
            if k < 0 or words[k] not in _KIND_DETERMINERS:
                continue
            posting = st.lines.postings.get(w, ())
            if not posting or len(posting) > cfg.posting_cap:
                continue
            st.lines.prefetch_map("lines", posting)
            lids = [lid for lid in posting if st.lines.lines[lid].head == w]
            if not lids or len(lids) > cfg.kind_max_lines:
                continue
            start, end = toks[k + 1].start, toks[n].end
            scored = [_Scored(st.lines.lines[lid], cfg.distinctive_score) for lid in lids]
            cands = self._rank_products(st.lines, scored, _Words(frozenset(), _variant_tokens([text])))
            product = self._decide(Entity(type="PRODUCT", text=text[start:end], start=start, end=end), cands)
            if not product.node_id and not product.candidates:
                continue
            return _in_place_of_span(entities, product, start, end)
        return entities

    def link_entities(self, entities: Sequence[Entity], text: str = "") -> list[Entity]:
        """Link a message's entities together: ATTRIBUTE entities and the message itself supply the
        variant words that choose among a line's products."""
        out: list[Entity] = []
        for e in entities:
            if e.node_id or e.type not in LINKED_TYPES:
                out.append(e)
                continue
            # Variant words of another product in the same message are not this one's.
            others = [(o.start, o.end) for o in entities if o is not e and o.type in _NAMED
                      and o.start is not None and o.end is not None]
            context = [blank_spans(text, others)] + [o.text for o in entities if o.type == "ATTRIBUTE"]
            out.append(self.link_entity(e, context=context))
        return out

    def link_entity(self, entity: Entity, *, context: Sequence[str] = ()) -> Entity:
        linked = self.link_mention(entity.text, entity.type, context=context)
        return entity.model_copy(update={"node_id": linked.node_id, "score": linked.score,
                                         "candidates": linked.candidates, "ambiguous": linked.ambiguous})

    def link_mention(self, mention: str, type: str = "PRODUCT", *, context: Sequence[str] | str = ()) -> Entity:
        """Link one mention of a known type. `context`: further text whose variant words count
        (the whole message, ATTRIBUTE entities, a clarification answer)."""
        ctx = [context] if isinstance(context, str) else list(context)
        out = Entity(type=type, text=mention)
        if type == "ORDER_ID":
            oid = T.normalise_order_id(mention)
            return out.model_copy(update={"node_id": oid, "score": 1.0 if oid else None})
        if type == "MONEY":
            money = T.parse_money(mention, self.currency)
            return out.model_copy(update={"node_id": str(money) if money else None,
                                          "score": 1.0 if money else None})
        st = self._current()
        if type == "PRODUCT":
            self._prefetch(mention)  # nothing to read when the message's read-ahead had it all
            cands = self._product_candidates(st, mention, ctx)
        elif type == "BRAND":
            cands = self._name_candidates(st.brands, mention, None)
        elif type == "CATEGORY":
            cands = self._name_candidates(st.categories, mention, st.cat_emb)
        elif type == "ATTRIBUTE":
            cands = self._attribute_candidates(st, mention)
            if not cands:  # a value no product has: still report it normalised, unlinked to a node
                value = " ".join(T.fold(mention).split())
                return out.model_copy(update={"node_id": value or None, "score": 0.5 if value else None})
        else:
            return out
        return self._decide(out, cands)

    # -- free text ---------------------------------------------------------------------------------
    def link_text(self, text: str) -> list[Entity]:
        """Product, brand, category (and "#12345"-style order) mentions in text no model tagged.
        Longest exact alias spans first, then typo-tolerant spans scoring at least `text_min_score`."""
        st = self._current()
        toks = T.tokens_with_offsets(text)
        words = [t.text for t in toks]
        spans: list[tuple[float, int, int, int, str]] = []  # score, n tokens, i, j, type
        n = len(toks)
        for i in range(n):
            if words[i] in T.STOPWORDS:
                continue
            for j in range(min(n, i + self.config.text_max_tokens), i, -1):
                if words[j - 1] in T.STOPWORDS:
                    continue
                content = [w for w in words[i:j] if w not in T.STOPWORDS]
                k, c = " ".join(content), "".join(content)
                merged = merge_split_tokens(content, st.lines.postings)
                if st.lines.has_exact(k) or (len(c) >= 3 and c in st.lines.compact) or \
                        (merged != content and st.lines.has_exact(" ".join(merged))):
                    spans.append((1.0, j - i, i, j, "PRODUCT"))
                for typ, table in (("BRAND", st.brands), ("CATEGORY", st.categories)):
                    if k in table.exact or (len(c) >= 3 and c in table.compact):
                        spans.append((1.0, j - i, i, j, typ))
        # Misspelt names: spans of known words (up to five) with at least one misspelling in them;
        # spans of correctly spelt words were looked up as they are above.
        content = [w for w in words if w not in T.STOPWORDS]
        vocab = _AnyOf(st.lines.postings, st.brands.postings, st.categories.postings)
        sims = token_sims(content, vocab, st.lines.vocab_list + st.brands.vocab_list + st.categories.vocab_list)
        known = [w not in T.STOPWORDS and bool(sims.get(w)) for w in words]
        typo = [known[x] and words[x] not in vocab for x in range(n)]
        exact_spans = {(i, j) for _, _, i, j, _ in spans}
        for i in range(n):
            if not known[i]:
                continue
            for j in range(i + 1, min(n, i + 5) + 1):
                if not known[j - 1] or (i, j) in exact_spans or not any(typo[i:j]):
                    continue
                if not all(known[x] or words[x] in T.STOPWORDS for x in range(i, j)):
                    break  # an unknown word: longer spans from here contain it too
                mention = text[toks[i].start:toks[j - 1].end]
                for typ in ("PRODUCT", "BRAND", "CATEGORY"):
                    if typ == "PRODUCT":
                        cands = self._product_candidates(st, mention, [text], lexical_only=True, known_sims=sims)
                    else:
                        table = st.brands if typ == "BRAND" else st.categories
                        cands = self._name_candidates(table, mention, None)
                    if cands and cands[0].score >= self.config.text_min_score:
                        spans.append((cands[0].score, j - i, i, j, typ))
        spans.sort(key=lambda s: (-s[0], -s[1], s[2]))
        taken: set[int] = set()
        chosen: list[Entity] = []
        for _score, _n, i, j, typ in spans:
            if taken & set(range(i, j)):
                continue
            taken.update(range(i, j))
            start, end = toks[i].start, toks[j - 1].end
            chosen.append(Entity(type=typ, text=text[start:end], start=start, end=end))
        out = [e for e in self.link_entities(chosen, text) if e.node_id or e.candidates]
        for m in re.finditer(r"(?:#\s?|\border\s+(?:number\s+|no\.?\s*|#\s?)?)(\d{4,12})\b", text, re.I):
            if not any(e.start is not None and e.start <= m.start(1) < (e.end or 0) for e in out):
                out.append(Entity(type="ORDER_ID", text=m.group(0), start=m.start(), end=m.end(),
                                  node_id=m.group(1), score=1.0))
        out.sort(key=lambda e: e.start or 0)
        return out

    # -- scoring ------------------------------------------------------------------------------------
    def _decide(self, entity: Entity, cands: list[Candidate]) -> Entity:
        cfg = self.config
        cands = [c for c in cands if c.score >= cfg.min_score]
        if not cands:
            return entity.model_copy(update={"node_id": None, "score": None, "candidates": [], "ambiguous": False})
        top = cands[0].score
        tied = [c for c in cands if c.score >= top - cfg.ambiguity_margin]
        if len(tied) > 1:
            return entity.model_copy(update={"node_id": None, "score": top, "ambiguous": True,
                                             "candidates": tied[:cfg.max_candidates]})
        return entity.model_copy(update={"node_id": cands[0].node_id, "score": top, "ambiguous": False,
                                         "candidates": cands[:cfg.max_candidates]})

    def _product_candidates(self, st: _State, mention: str, context: Sequence[str],
                            lexical_only: bool = False,
                            known_sims: Mapping[str, Mapping[str, float]] | None = None) -> list[Candidate]:
        cfg = self.config
        idx = st.lines
        qtoks = merge_split_tokens(T.content_tokens(mention), idx.postings)
        if not qtoks:
            return []
        stripped = _strip_values(qtoks, idx.values, idx.postings, st.value_words, st.value_tokens)
        scored: dict[int, _Scored] = {}

        # 1. exact and alias keys
        for form in ([qtoks, stripped] if stripped and stripped != qtoks else [qtoks]):
            skus = idx.exact_skus(" ".join(form)) or idx.compact.get("".join(form))
            if skus:
                idx.prefetch_map("line_of", skus)
                idx.prefetch_lines({lid for s in skus if (lid := idx.line_of.get(s)) is not None})
                for s in skus:
                    lid = idx.line_of[s]
                    cur = scored.get(lid)
                    subset = (cur.skus or frozenset()) | {s} if cur else frozenset({s})
                    scored[lid] = _Scored(idx.lines[lid], 1.0, subset)
                break
        if not scored:
            # 2. fuzzy recall (token postings + full-text) and soft TF-IDF scoring
            forms = [qtoks] + ([stripped] if stripped and stripped != qtoks else [])
            words = {t for f in forms for t in f}
            sims = ({t: dict(known_sims[t]) for t in words} if known_sims is not None and words <= known_sims.keys()
                    else _line_sims(st, words))
            recall = _recall_lines(idx, sims, qtoks, cfg.posting_cap)
            top = sorted(recall, key=lambda x: -recall[x])[:cfg.recall_lines]
            idx.prefetch_lines(top)
            lines = [idx.lines[lid] for lid in top]

            def score_lines(lines: Iterable[Line]) -> None:
                for ln in lines:
                    line_sims = sims if ln.lid >= 0 else _extend_sims(sims, forms, ln.tokens)
                    best = 0.0
                    for f in forms:
                        for a in ln.aliases:
                            best = max(best, soft_score(f, a, line_sims, idx.idf), compact_ratio(f, a))
                        for a in ln.generic:
                            best = max(best, cfg.generic_weight * soft_score(f, a, line_sims, idx.idf))
                    if best > 0:
                        scored[ln.lid] = _Scored(ln, best * cfg.fuzzy_weight)

            score_lines(lines)
            if cfg.use_fulltext and not lexical_only and \
                    max((s.score for s in scored.values()), default=0.0) < cfg.fulltext_threshold:
                score_lines(self._fulltext_lines(st, qtoks, {ln.lid for ln in lines}))
            # 3. embeddings for paraphrases
            best_lex = max((s.score for s in scored.values()), default=0.0)
            if cfg.use_embeddings and not lexical_only and best_lex < cfg.embedding_threshold and \
                    (len(st.line_emb) or st.graph_vectors):
                vec = self.encoder.encode_query(T.fold(mention).strip())
                nearest = self._nearest_lines(st, vec)
                idx.prefetch_lines(lid for lid, _ in nearest)
                for lid, cos in nearest:
                    e = self._emb_score(cos)
                    if e <= 0:
                        continue
                    if lid in idx.lines:
                        cur = scored.get(lid)
                        lex = cur.score if cur else 0.0
                        combined = min(cfg.fuzzy_weight, max(lex, e) + 0.1 * min(lex, e))
                        scored[lid] = _Scored(idx.lines[lid], combined)
        if max((s.score for s in scored.values()), default=0.0) < cfg.min_score:
            # 3b. a few distinctive words: "the lamborghini" for "LEGO Technic Lamborghini Sian FKP 37"
            for lid in _distinctive_lines(idx, stripped or qtoks, cfg.distinctive_max_lines):
                scored[lid] = _Scored(idx.lines[lid], cfg.distinctive_score)
        if not scored:
            return []

        # 4. products inside the best lines, by variant words
        return self._rank_products(idx, list(scored.values()),
                                   _Words(_variant_tokens([mention]), _variant_tokens([mention, *context])))

    def _graph_vectors_ready(self) -> bool:
        cfg = self.config
        return cfg.use_embeddings and cfg.graph_vectors and vector_index_status(self.store) == "OPERATIONAL"

    def _nearest_lines(self, st: _State, vec: np.ndarray) -> list[tuple[int, float]]:
        """The lines whose names are nearest `vec` (cosine): by their products' name vectors in the
        graph's vector index, or by their titles' vectors held here."""
        k = self.config.embedding_top_k
        idx = st.lines
        if not st.graph_vectors:
            return [(lid, cos) for title, cos in st.line_emb.search(vec, k) for lid in idx.by_title.get(title, ())]
        rows = self.store.run(EQ.SIMILAR, {"k": 3 * k, "fetch": 9 * k + 10, "vector": [float(x) for x in vec]})
        idx.prefetch_map("line_of", [r["sku"] for r in rows])
        best: dict[int, float] = {}
        for r in rows:
            lid = idx.line_of.get(r["sku"])
            if lid is not None:
                best[lid] = max(best.get(lid, -1.0), float(r["cosine"]))
        return sorted(best.items(), key=lambda kv: -kv[1])[:k]

    def _rank_products(self, idx: LineIndex, scored: Sequence[_Scored], ctx: _Words) -> list[Candidate]:
        """Products of the scored lines ranked: variant words pick products inside a line, and lines
        among the lines tied for the best score."""
        cfg = self.config
        best = max(s.score for s in scored)
        keep = [s for s in scored if s.score >= max(cfg.min_score, best - 0.2)]
        per_line = [(s, _variant_scores(s.line, sorted(s.skus) if s.skus else s.line.skus, ctx)) for s in keep]
        # The variant words are judged among the lines that tie for the best score: "balance 3 orange"
        # picks the brand that sells it in orange; a weaker line cannot raise the bar for the others.
        top = max((v for s, vs in per_line if s.score >= best - cfg.ambiguity_margin for v in vs.values()),
                  default=0.0)
        out: list[tuple[float, bool, str, str]] = []
        for s, vs in per_line:
            for sku, v in vs.items():
                factor = cfg.variant_floor ** max(0.0, top - v)  # each variant word missed costs a step
                out.append((round(min(1.0, s.score * factor), 4), s.line.is_active(sku), sku, s.line.name_of(sku)))
        out.sort(key=lambda x: (-x[0], not x[1], x[2]))
        out = _interleave_lines(out, idx, cfg.ambiguity_margin)
        return [Candidate(node_id=sku, label="Product", name=name, score=score) for score, _a, sku, name in out]

    def _emb_score(self, cos: float, floor: float | None = None, ceiling: float | None = None) -> float:
        cfg = self.config
        lo = cfg.embedding_floor if floor is None else floor
        hi = cfg.embedding_ceiling if ceiling is None else ceiling
        return max(0.0, min(1.0, (cos - lo) / max(hi - lo, 1e-6))) * cfg.embedding_max

    def _fulltext_lines(self, st: _State, qtoks: Sequence[str], have: set[int]) -> list[Line]:
        """Lines of the graph's full-text hits, including products the index has not seen yet."""
        terms = Q.fulltext_terms(_fulltext_tokens(qtoks), self.store.backend)
        if not terms:
            return []
        rows = self.store.run(Q.FULLTEXT_PRODUCTS, {"terms": terms, "limit": self.config.fulltext_limit})
        idx = st.lines
        idx.prefetch_map("line_of", [str(r["sku"]) for r in rows])
        idx.prefetch_lines({lid for r in rows if (lid := idx.line_of.get(str(r["sku"]))) is not None} - have)
        out: list[Line] = []
        unknown: list[str] = []
        for r in rows:
            sku = str(r["sku"])
            lid = idx.line_of.get(sku)
            if lid is None:
                unknown.append(sku)
            elif lid not in have:
                have.add(lid)
                out.append(idx.lines[lid])
        if unknown:  # added since the last refresh: index them on the fly, just for this mention
            groups: dict[tuple[str, ...], list[ProductRecord]] = {}
            for rec in self._products_by_skus(unknown):
                groups.setdefault(rec.line_key, []).append(rec)
            for n, recs in enumerate(groups.values()):
                out.append(make_line(-1 - n, recs))
        return out

    def _name_candidates(self, table: NameTable, mention: str, emb: EmbeddingTable | None) -> list[Candidate]:
        cfg = self.config
        qtoks = T.content_tokens(mention)
        if not qtoks or not table.entries:
            return []
        scores: dict[int, float] = {}
        hit = table.exact.get(" ".join(qtoks)) or table.compact.get("".join(qtoks))
        if hit:
            scores = dict.fromkeys(hit, 1.0)
        else:
            sims = token_sims(qtoks, table.postings, table.vocab_list)
            cands = {i for q in qtoks for v in sims.get(q, {}) for i in table.postings.get(v, ())}
            for i in cands:
                best = max((max(soft_score(qtoks, a, sims, table.idf), compact_ratio(qtoks, a))
                            for a in table.entries[i].aliases), default=0.0)
                scores[i] = best * cfg.fuzzy_weight
            if emb is not None and len(emb) and cfg.use_embeddings and max(scores.values(), default=0) < \
                    cfg.embedding_threshold:
                by_text = {t: i for i, e in enumerate(table.entries) for t in (e.node_id, e.text)}
                vec = self.encoder.encode_query(T.fold(mention).strip())
                emb_scores: dict[int, float] = {}
                for text, cos in emb.search(vec, 10):
                    i = by_text.get(text)
                    e = self._emb_score(cos, cfg.category_embedding_floor, cfg.category_embedding_ceiling)
                    if i is not None and e > emb_scores.get(i, 0.0):
                        emb_scores[i] = e
                for i, e in emb_scores.items():
                    lex = scores.get(i, 0.0)
                    scores[i] = min(cfg.fuzzy_weight, max(lex, e) + 0.1 * min(lex, e))
        ranked = sorted(scores.items(), key=lambda x: (-x[1], table.entries[x[0]].node_id))
        return [Candidate(node_id=table.entries[i].node_id, label=table.entries[i].label,
                          name=table.entries[i].node_id, score=round(min(1.0, s), 4)) for i, s in ranked]

    def _attribute_candidates(self, st: _State, mention: str) -> list[Candidate]:
        values = st.lines.values
        qtoks = T.content_tokens(mention) or T.tokens(mention)
        if not qtoks:
            return []
        for form in (tuple(qtoks), tuple(_split_alnum(qtoks))):
            if form in values:
                v = values[form]
                return [Candidate(node_id=v.lower(), label="Attribute", name=v, score=1.0)]
        q = " ".join(qtoks)
        if fuzzy_cutoff(q.replace(" ", "")) is None or not st.value_keys:
            return []
        out = []
        for k, s, _ in process.extract(q, st.value_keys, scorer=fuzz.ratio, score_cutoff=85, limit=3):
            v = values[tuple(k.split(" "))]
            out.append(Candidate(node_id=v.lower(), label="Attribute", name=v,
                                 score=round(s / 100 * self.config.fuzzy_weight, 4)))
        return out


# -- helpers --------------------------------------------------------------------------------------
_NAMED = ("PRODUCT", "BRAND", "CATEGORY")
_PRODUCT_FAMILIES = ("products", "policies")
_CARRY_ON = frozenset({"with", "in", "w"})  # "<name> with 16 GB RAM", "<name> in black"
_KIND_DETERMINERS = frozenset({"the", "this", "that", "your", "a", "an"})
_POINTS_BACK = frozenset({"it", "its", "they", "them", "their", "this", "these", "those"})


_WORD_SIMS_MAX = 50_000
_PREFETCH_SPAN = 12  # the longest word group read ahead as a key (a long product name said whole)


def _recall_lines(idx: LineIndex, sims: Mapping[str, Mapping[str, float]], said: Iterable[str],
                  posting_cap: int) -> dict[int, float]:
    """Lines by the IDF-weighted similarity of the words said to their name words (token postings;
    a word in more than `posting_cap` lines says too little to count)."""
    weight: dict[int, float] = {}
    said = list(said)
    idx.prefetch_map("postings", {v for word in said for v in sims.get(word, {})})
    for word in said:
        for v, sim in sims.get(word, {}).items():
            post = idx.postings.get(v, ())
            if len(post) > posting_cap:
                continue
            w = idx.idf(v) * sim
            for lid in post:
                weight[lid] = weight.get(lid, 0.0) + w
    return weight


def _line_sims(st: _State, words: Iterable[str]) -> dict[str, dict[str, float]]:
    """`token_sims` against the product-name vocabulary, through the index's cache."""
    cache = st.word_sims
    out: dict[str, dict[str, float]] = {}
    missing: list[str] = []
    for w in dict.fromkeys(words):
        got = cache.get(w)
        if got is None:
            missing.append(w)
        else:
            out[w] = got
    if missing:
        fresh = token_sims(missing, st.lines.postings, st.lines.vocab_list)
        if len(cache) > _WORD_SIMS_MAX:
            cache.clear()
        cache.update(fresh)
        out.update(fresh)
    return out


def _in_place_of_span(entities: Sequence[Entity], product: Entity, start: int, end: int) -> list[Entity]:
    """`product` in place of the entities that overlap characters start..end, in message order."""
    kept = [e for e in entities if not (e.start is not None and e.end is not None and e.start < end and start < e.end)]
    return sorted(kept + [product], key=lambda e: (e.start is None, e.start or 0))


def _has_product(entities: Iterable[Entity], *, linked_only: bool = False) -> bool:
    return any(e.type == "PRODUCT" and (e.node_id or (e.candidates and not linked_only)) for e in entities)


def _failed(e: Entity) -> bool:
    """A mention of a name or value that found nothing of its type: often a part of a product name."""
    if e.source != "message" or e.start is None:
        return False
    if e.type == "ATTRIBUTE":
        return not e.candidates
    return e.type in _NAMED and not e.node_id and not e.candidates


def _replaceable(e: Entity, start: int, end: int, family: str | None) -> bool:
    """Whether a product name spotted at [start, end) may replace entity `e`, which it overlaps:
    what found nothing of its own type (a brand, category or product that linked to nothing, a
    value no product has), and, inside the span, what the name explains (an ambiguous product
    mention, a linked brand, category or value that is only a part of it, a number read as an
    order id or an amount). An order id in an order question stays."""
    assert e.start is not None and e.end is not None
    inside = start <= e.start and e.end <= end
    smaller = inside and (e.end - e.start) < (end - start)
    if e.type == "ORDER_ID":
        return inside and family != "orders"
    if e.type == "MONEY":
        return inside
    if e.type == "PRODUCT":  # a linked one only by a longer name around it
        return smaller if e.node_id else (not e.candidates or inside)
    if e.type == "ATTRIBUTE":
        return not e.candidates or smaller
    return (not e.node_id and not e.candidates) or smaller


def _extend_over_values(idx: LineIndex, toks: Sequence[T.Token], i: int, j: int,
                        lids: Sequence[int]) -> tuple[int, int]:
    """The span [i, j) widened over the variant words of its lines next to it ("castle siege travel
    edition", "wild rosehip tea 40 bags"): only words of the values themselves, typos allowed."""
    vocab = {t for lid in lids if lid in idx.lines for v in idx.lines[lid].values for t in T.content_tokens(v)}
    vocab -= T.STOPWORDS
    if not vocab:
        return i, j
    known: dict[str, bool] = {}

    def value_word(word: str) -> bool:  # one of the values' words, or a typo of one ("editon")
        if word not in known:
            cut = fuzzy_cutoff(word)
            known[word] = word in vocab or (cut is not None and process.extractOne(
                word, vocab, scorer=fuzz.ratio, score_cutoff=cut) is not None)
        return known[word]

    k = j
    while k < len(toks) and (value_word(toks[k].text) or (toks[k].text in T.STOPWORDS and k + 1 < len(toks)
                                                            and value_word(toks[k + 1].text))):
        k += 1
    j = k if k > j and value_word(toks[k - 1].text) else j
    k = i
    while k > 0 and value_word(toks[k - 1].text):
        k -= 1
    return k, j


def _naming_words(idx: LineIndex, max_lines: int, diversity: float = 0.5) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Word -> the attribute values with that word that name products (`LineIndex.named_by_value`)."""
    out: dict[str, list[tuple[str, ...]]] = {}
    if max_lines <= 0:
        return {}
    for value, _lids in idx.common_values_upto(max_lines):
        if not any(ch.isalpha() for t in value for ch in t):
            continue
        if idx.named_by_value(value, diversity):
            for w in dict.fromkeys(value):
                if w not in T.STOPWORDS:
                    out.setdefault(w, []).append(value)
    return {w: tuple(v) for w, v in out.items()}


def blank_spans(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` with the given character spans replaced by spaces (offsets stay valid)."""
    chars = list(text)
    for start, end in spans:
        chars[max(0, start):max(0, end)] = " " * (max(0, end) - max(0, start))
    return "".join(chars)


class _AnyOf:
    """Membership in any of several vocabularies, without merging them."""

    def __init__(self, *maps: Container[str]) -> None:
        self.maps = maps

    def __contains__(self, key: object) -> bool:
        return any(key in m for m in self.maps)


def _latest(stamps: Iterable[str | None]) -> str | None:
    return max((s for s in stamps if s), default=None)


def _strip_values(qtoks: list[str], values: Mapping[tuple[str, ...], str], names: Container[str] = (),
                  value_words: Sequence[str] = (), value_tokens: Container[str] = ()) -> list[str]:
    """The mention without variant words ("aurora x2 black" -> "aurora x2", "nova 5 256gb" -> "nova 5",
    "gale 3 size 9" -> "gale 3", "elmwood snoked oak" -> "elmwood"): attribute values (longest
    first), sizes, lone units, words of values and misspelt value words that are no name word.
    The first word always stays (a name may begin with a colour). This is a second reading of the
    mention, scored beside the mention as written, so stripping a word too many costs nothing."""
    out: list[str] = []
    i = 0
    while i < len(qtoks):
        t = qtoks[i]
        if i > 0:
            n = next((n for n in (3, 2, 1) if i + n <= len(qtoks) and tuple(qtoks[i:i + n]) in values), 0)
            if n:
                i += n
                continue
            if tuple(_split_alnum([t])) in values or t in T.UNIT_TOKENS or (t in value_tokens and t not in names):
                i += 2 if t in _SIZE_PREFIX and i + 1 < len(qtoks) and _is_size(qtoks[i + 1]) else 1
                continue
            cut = fuzzy_cutoff(t)
            if cut is not None and t not in names and value_words and \
                    process.extractOne(t, value_words, scorer=fuzz.ratio, score_cutoff=cut) is not None:
                i += 1
                continue
        out.append(t)
        i += 1
    return out


_SIZE_PREFIX = {"size", "us", "uk", "eu"}


def _is_size(token: str) -> bool:
    return token.isdigit() or token in {"xs", "s", "m", "l", "xl", "xxl", "small", "medium", "large"}


_ALNUM_RUN = re.compile(r"[a-z]+|\d+")


def _split_alnum(toks: Iterable[str]) -> list[str]:
    """"128gb" -> "128", "gb": shoppers glue a number to its unit."""
    out: list[str] = []
    for t in toks:
        if any(ch.isdigit() for ch in t) and any(ch.isalpha() for ch in t):
            out.extend(_ALNUM_RUN.findall(t))
        else:
            out.append(t)
    return out


def _variant_tokens(texts: Iterable[str]) -> frozenset[str]:
    toks: set[str] = set()
    for t in texts:
        if t:
            words = T.content_tokens(t)
            toks.update(words)
            toks.update(_split_alnum(words))
    return frozenset(toks)


_SIZE_WORDS = {"small": "s", "medium": "m", "large": "l", "xlarge": "xl", "xxlarge": "xxl"}


@dataclass(frozen=True)
class _Words:
    """Variant words: those of the mention may be misspelt; the rest of the message must match exactly
    (a message is full of short words one typo away from a colour: "send"/"sand", "back"/"black")."""

    mention: frozenset[str]
    all: frozenset[str]


def _variant_scores(line: Line, skus: Iterable[str], ctx: _Words) -> dict[str, float]:
    """How well each product's variant values match the variant words of the context.

    Per varying key (colour, size, storage...) the best-matching values of the line win, and a
    product scores the strength of each key it wins: "blue" picks "Blue" over "Midnight Blue",
    "24-70 lens" picks that kit over the 18-55 one. A value's strength is the share of its words
    named (typos allowed); units never count alone ("GB" says nothing), and brand and model-line
    words never count ("Gale 3" is no size 3)."""
    avail = set(ctx.all - line.name_tokens)
    avail.update(_SIZE_WORDS[w] for w in list(avail) if w in _SIZE_WORDS)
    loose = set(ctx.mention - line.name_tokens)
    for w in list(loose):  # a misspelt name word is no variant word ("ultrra" in "kairo ultrra")
        cut = fuzzy_cutoff(w)
        if cut is None or any(fuzz.ratio(w, n) >= cut for n in line.name_tokens):
            loose.discard(w)
    cache: dict[str, float] = {}

    def tok(t: str) -> float:
        got = cache.get(t)
        if got is None:
            got = 1.0 if t in avail else 0.0
            if not got and fuzzy_cutoff(t) is not None:  # one typo, among this line's few values
                got = max((fuzz.ratio(t, a) / 100 for a in loose), default=0.0)
                got = got if got >= 0.75 else 0.0
            cache[t] = got
        return got

    # Values every product of the line shares count too: they tell lines apart ("vapor trail ... coral":
    # the brand whose Vapor Trail comes in coral), though never products within the line.
    # Between two values named in full, the longer wins ("navy blue" over "blue").
    strength: dict[tuple[str, tuple[str, ...]], tuple[float, float]] = {}
    best: dict[str, tuple[float, float]] = {}
    for sku in line.skus:
        for k, value in line.variants_of(sku) + line.common:
            if (k, value) not in strength:
                core = [t for t in value if t not in T.UNIT_TOKENS] or list(value)
                named = sum(tok(t) for t in core)
                strength[(k, value)] = (named / len(core), named)
                best[k] = max(best.get(k, (0.0, 0.0)), strength[(k, value)])
    out: dict[str, float] = {}
    for sku in skus:
        total = 0.0
        for k, value in line.variants_of(sku) + line.common:
            s = strength[(k, value)]
            if s[0] > 0 and s >= best[k]:
                total += s[0]
        out[sku] = total
    return out


def _interleave_lines(ranked: list[tuple[float, bool, str, str]], idx: LineIndex,
                      margin: float) -> list[tuple[float, bool, str, str]]:
    """Within the tie at the top, alternate between lines, so that a clarifying question lists
    every line ("the Squall 2 by Driftwood & Co or by Northwind?") before more variants of one."""
    if not ranked:
        return ranked
    top = ranked[0][0]
    n = sum(1 for x in ranked if x[0] >= top - margin)
    tied, rest = ranked[:n], ranked[n:]
    queues: dict[int, list[tuple[float, bool, str, str]]] = {}
    for x in tied:
        queues.setdefault(idx.line_of.get(x[2], -1), []).append(x)
    if len(queues) < 2:
        return ranked
    mixed: list[tuple[float, bool, str, str]] = []
    while any(queues.values()):
        for q in queues.values():
            if q:
                mixed.append(q.pop(0))
    return mixed + rest


def _fulltext_tokens(qtoks: Sequence[str]) -> list[str]:
    out: list[str] = []
    for t in qtoks:
        out.append(t)
        if T.is_model_number(t):  # the full-text index splits "NA-700X" into "na" and "700x"
            m = re.match(r"^([a-z]+)(\d.*)$", t)
            if m:
                out.extend(m.groups())
    return out


def _extend_sims(sims: Mapping[str, Mapping[str, float]], forms: Sequence[Sequence[str]],
                 tokens: Iterable[str]) -> dict[str, dict[str, float]]:
    """Similarities to the words of a product not in the index yet (a full-text hit)."""
    out = {q: dict(v) for q, v in sims.items()}
    toks = list(tokens)
    for q in {t for f in forms for t in f}:
        cut = fuzzy_cutoff(q)
        d = out.setdefault(q, {})
        for a in toks:
            if a == q:
                d[a] = 1.0
            elif cut is not None and a not in d:
                s = fuzz.ratio(q, a)
                if s >= cut:
                    d[a] = s / 100.0
    return out
