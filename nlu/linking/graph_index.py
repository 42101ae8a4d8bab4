"""The linking index kept in the graph: the same `LineIndex` the linker scores with, its maps read
from the graph on demand instead of held whole, so that a worker's memory does not grow with the
catalog and every worker and host shares one index (kg/queries/link_index.py has the layout).

Reading: `open_index` gives a `GraphLineIndex` whose catalog-sized maps (lines, keys, postings, a
product's line) are `GraphMap`s: a key is looked up in the graph the first time it is asked for
and kept in a bounded cache of that index object (an object per index version: a cache is never
stale for long, and a line id is never reused). The linker asks for a message's words and word
groups in one round trip first (`prefetch`). What is read whole is what a typo or a value is
matched against: the name words made of letters, the attribute values, and the per-key counts
(bounded by the shop's vocabulary, not by its number of products).

Writing: `LineIndex.delta` works out what a change does to each map (reading the old entries
through the same `GraphMap`s) and `write_delta` writes it, in one atomic query per chunk that only
applies if nobody wrote since it read (`link_index.write`); a change of several chunks leaves the
index marked incomplete until its last one lands (a reader that finds it so waits for the writer, or
rebuilds the index when the writer died). A first build indexes every product in memory
(`LineIndex.apply`) and creates every entry (`link_index.create`). The linker decides when
(`EntityLinker.sync_graph_index`).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from kg.queries import link_index as Q
from nlu.linking.index import CappedPosting, IndexDelta, Line, LineIndex, LineStore

log = logging.getLogger(__name__)

CHUNK = 20_000  # entries per write (one query, one transaction) ...
CHUNK_BYTES = 4 << 20  # ... or about this much text (FalkorDB parses the parameters with the query)
DEAD_KEPT_S = 600.0  # a line taken out stays readable this long for readers of older postings


def _same(v: Any) -> Any:
    return v


def _tuple(v: Any) -> tuple:
    return tuple(v or ())


def _int(v: Any) -> int:
    return int(v)


def _blob_out(v: bytes) -> str:
    return base64.b64encode(v).decode("ascii")


def _blob_in(v: Any) -> bytes:
    return base64.b64decode(v)


def _toks(key: tuple[str, ...]) -> str:
    return " ".join(key)


def _line_key(key: tuple[str, ...]) -> str:
    return "|".join(key)


def _key_value(key: tuple[str, tuple[str, ...]]) -> str:
    return f"{key[0]}|{' '.join(key[1])}"


class _Spec(NamedTuple):
    label: str
    code: str
    key: Callable[[Any], str]
    out: Callable[[Any], Any]  # value -> what the graph stores
    into: Callable[[Any], Any]  # what the graph stores -> value


SPECS: dict[str, _Spec] = {
    "lines": _Spec("LinkLine", "L", str, _blob_out, _blob_in),
    "fps": _Spec("LinkProduct", "f", str, _same, str),
    "line_of": _Spec("LinkProduct", "o", str, _same, _int),
    "by_key": _Spec("LinkKey", "k", _line_key, _same, _int),
    "exact": _Spec("LinkKey", "x", str, list, _tuple),
    "line_exact": _Spec("LinkKey", "l", str, list, _tuple),
    "compact": _Spec("LinkKey", "c", str, list, _tuple),
    "by_title": _Spec("LinkKey", "ti", str, list, _tuple),
    "postings": _Spec("LinkTerm", "t", str, list, _tuple),  # LinkWord for words of letters (`_label`)
    "common_values": _Spec("LinkValue", "cv", _toks, list, _tuple),
    "values": _Spec("LinkValue", "v", _toks, _same, str),
    "value_counts": _Spec("LinkValue", "vn", _toks, _same, _int),
    "key_value_lines": _Spec("LinkValue", "kvl", _key_value, _same, _int),
    "key_varies": _Spec("LinkStat", "kv", str, _same, _int),
    "key_lines": _Spec("LinkStat", "kl", str, _same, _int),
    "key_values": _Spec("LinkStat", "kx", str, _same, _int),
}


def _label(name: str, key: Any) -> str:
    if name == "postings" and str(key).isalpha():
        return "LinkWord"
    return SPECS[name].label


def _entry_key(name: str, key: Any) -> str:
    spec = SPECS[name]
    return f"{spec.code}:{spec.key(key)}"


@dataclass(frozen=True)
class Meta:
    version: int
    next_lid: int
    lines: int
    products: int
    catalog: Any
    stamp: str | None
    watermark: str | None
    complete: bool


def read_meta(store: Any) -> Meta | None:
    rows = store.run(Q.META)
    r = rows[0] if rows else None
    if not r or r.get("version") is None:
        return None
    return Meta(int(r["version"]), int(r["next_lid"] or 0), int(r["lines"] or 0), int(r["products"] or 0),
                r.get("catalog"), r.get("stamp"), r.get("watermark"), bool(r.get("complete")))


class _Reader:
    """Entries by key, every label in one round trip."""

    def __init__(self, store: Any, cap: int | None) -> None:
        self.store = store
        self.cap = cap
        self.round_trips = 0

    def read(self, wanted: Iterable[tuple[str, Any]]) -> dict[tuple[str, Any], Any]:
        """(map name, key) -> stored value (decoded; a `CappedPosting` for postings over the cap);
        absent keys are left out."""
        by_entry: dict[str, tuple[str, Any]] = {}
        params: dict[str, Any] = {lb: [] for lb in Q.LABELS}
        for name, key in wanted:
            ek = _entry_key(name, key)
            if ek not in by_entry:
                by_entry[ek] = (name, key)
                params[_label(name, key)].append(ek)
        if not by_entry:
            return {}
        params["cap"] = self.cap if self.cap is not None else 2 ** 62
        self.round_trips += 1
        out: dict[tuple[str, Any], Any] = {}
        for row in self.store.run(Q.READ, params):
            name, key = by_entry[row["k"]]
            v = row.get("v")
            if v is None and row.get("n") is not None:
                out[(name, key)] = CappedPosting(int(row["n"]))
            elif v is not None:
                out[(name, key)] = SPECS[name].into(v)
        return out


_MISSING: Any = object()


class GraphMap(Mapping[Any, Any]):
    """One map of the index, read from the graph key by key and kept in a bounded LRU (absent keys
    included). Not iterable: a catalog-sized map is only ever looked up."""

    def __init__(self, reader: _Reader, name: str, size: int, bound: int | None) -> None:
        self.reader = reader
        self.name = name
        self.size = size
        self.bound = bound
        self.memo: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()  # a worker's threads share the index

    def _remember(self, key: Any, value: Any) -> None:
        with self._lock:
            self.memo[key] = value
            if self.bound is not None and len(self.memo) > self.bound:
                self.memo.popitem(last=False)

    def prefetch(self, keys: Iterable[Any]) -> list[tuple[str, Any]]:
        """The (map, key) pairs of `keys` not known yet (for `GraphLineIndex.prefetch`)."""
        return [(self.name, k) for k in dict.fromkeys(keys) if k not in self.memo]

    def get(self, key: Any, default: Any = None) -> Any:
        with self._lock:
            v = self.memo.get(key, _MISSING)
            if v is not _MISSING and self.bound is not None:
                self.memo.move_to_end(key)
        if v is _MISSING:
            got = self.reader.read([(self.name, key)])
            v = got.get((self.name, key))
            self._remember(key, v)
        return default if v is None else v

    def __getitem__(self, key: Any) -> Any:
        v = self.get(key, _MISSING)
        if v is _MISSING:
            raise KeyError(key)
        return v

    def __contains__(self, key: object) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[Any]:
        raise TypeError(f"the linking index's {self.name} are kept in the graph: look them up by key")

    def absorb(self, changed: Mapping[Any, Any]) -> None:
        """Take a change this process wrote (the writer's next chunk reads through it)."""
        for k, v in changed.items():
            self._remember(k, v)


class GraphLineStore(LineStore):
    """Lines by id from the graph (`GraphMap` of packed lines), decoded through the same LRU."""

    __slots__ = ("count",)

    def __init__(self, blobs: GraphMap, count: int) -> None:
        super().__init__(blobs)  # type: ignore[arg-type]
        self.count = count

    def __len__(self) -> int:
        return self.count

    def iter_lines(self) -> Iterator[Line]:
        raise TypeError("the linking index's lines are kept in the graph: look them up by id")


@dataclass(frozen=True, eq=False)
class GraphLineIndex(LineIndex):
    """A `LineIndex` read from the graph at one version of the index (see the module's text)."""

    meta: Meta | None = None
    reader: _Reader | None = None
    store: Any = None
    maps: Mapping[str, GraphMap] = field(default_factory=dict)

    def prefetch(self, tokens: Iterable[str], keys: Iterable[str]) -> None:
        """Read what a message will ask for in one round trip: the postings of its words, and its word
        groups (and their glued forms) as exact, model-line and glued keys."""
        keys = list(dict.fromkeys(keys))
        self._fill([*self.maps["postings"].prefetch(tokens), *self.maps["exact"].prefetch(keys),
                    *self.maps["line_exact"].prefetch(keys), *self.maps["compact"].prefetch(keys)])

    def prefetch_map(self, name: str, keys: Iterable[Any]) -> None:
        self._fill(self.maps[name].prefetch(keys))

    def _fill(self, wanted: list[tuple[str, Any]]) -> None:
        """Read the (map, key) pairs not known yet in one round trip into their maps' caches (absent ones too)."""
        if not wanted:
            return
        assert self.reader is not None
        got = self.reader.read(wanted)
        for name, key in wanted:
            self.maps[name]._remember(key, got.get((name, key)))

    def prefetch_lines(self, lids: Iterable[int]) -> None:
        """The lines, then the postings of their words (what scoring them weighs them by): two round trips."""
        lids = list(lids)
        self.prefetch_map("lines", lids)
        self.prefetch_map("postings", {t for lid in lids if lid in self.lines for t in self.lines[lid].tokens})

    def common_values_upto(self, max_lines: int) -> Iterable[tuple[tuple[str, ...], tuple[int, ...]]]:
        for r in self.store.run(Q.NAMING_VALUES, {"max_lines": max_lines}):
            yield tuple(str(r["value"]).split(" ")), tuple(int(x) for x in r["lines"] or ())


def open_index(store: Any, meta: Meta, *, cap: int | None, bound: int | None) -> GraphLineIndex:
    """The index at `meta`'s version: lookups through bounded caches (`bound` entries per map; None: the
    writer's, unbounded for the length of one change), postings longer than `cap` read as their length."""
    reader = _Reader(store, cap)
    sizes = {"lines": meta.lines, "fps": meta.products, "line_of": meta.products}
    maps = {name: GraphMap(reader, name, sizes.get(name, 0), bound)
            for name in ("lines", "fps", "line_of", "by_key", "exact", "line_exact", "compact", "by_title",
                         "postings", "common_values", "value_counts", "key_value_lines")}
    words = tuple(sorted(str(r["word"]) for r in store.run(Q.WORDS)))
    values = {tuple(str(r["value"]).split(" ")): str(r["display"]) for r in store.run(Q.VALUES)}
    stats: dict[str, dict[str, int]] = {"kv": {}, "kl": {}, "kx": {}}
    for r in store.run(Q.STATS):
        code, _, key = str(r["k"]).partition(":")
        if code in stats:
            stats[code][key] = int(r["v"])
    return GraphLineIndex(
        fingerprints=maps["fps"], lines=GraphLineStore(maps["lines"], meta.lines), line_of=maps["line_of"],
        by_key=maps["by_key"], exact=maps["exact"], compact=maps["compact"], postings=maps["postings"],
        vocab_list=words, values=values, value_counts=maps["value_counts"], by_title=maps["by_title"],
        line_exact=maps["line_exact"], common_values=maps["common_values"], key_varies=stats["kv"],
        key_lines=stats["kl"], key_values=stats["kx"], key_value_lines=maps["key_value_lines"],
        next_lid=meta.next_lid, meta=meta, reader=reader, store=store, maps=maps)


# -- writing ---------------------------------------------------------------------------------------
@dataclass
class _Batch:
    sets: dict[str, list[list[Any]]] = field(default_factory=lambda: {lb: [] for lb in Q.LABELS})
    gones: dict[str, list[str]] = field(default_factory=lambda: {lb: [] for lb in Q.LABELS})
    dead: list[str] = field(default_factory=list)
    lines: int = 0
    products: int = 0
    size: int = 0
    bytes: int = 0


def _entries(delta: IndexDelta, base: LineIndex | None) -> Iterator[tuple[str, str, Any, str, int, int]]:
    """(label, entry key, stored value or None to remove, what, lines +-, products +-) for each
    change; the products' own entries last, so an entry saying a product is indexed is written
    after everything its line needs (a write cut in two by a crash leaves that product to index again)."""
    order = [n for n in delta.maps if n not in ("fps", "line_of")] + [n for n in ("line_of", "fps") if n in delta.maps]
    for name in order:
        spec = SPECS[name]
        for key, value in delta.maps[name].items():
            existed = base is not None and name in ("lines", "fps") and \
                (base.lines.blobs if name == "lines" else base.fingerprints).get(key) is not None
            grow = (1 if value is not None and not existed else -1 if value is None and existed else 0)
            stored = None if value is None else spec.out(value)
            n = len(value) if isinstance(value, tuple) else None
            yield (_label(name, key), _entry_key(name, key), stored, name, grow, n or 0)


def write_delta(store: Any, version: int, delta: IndexDelta, base: LineIndex | None, *, catalog: Any,
                stamp: str | None, watermark: str | None, final: bool = True,
                clock: Callable[[], float] = time.time) -> int | None:
    """Write `delta` (worked out from `base` at index `version`; None: from nothing, into an empty index:
    entries are created without looking them up) in chunks of
    `CHUNK` entries or `CHUNK_BYTES`, the catalog it reflects recorded with the last chunk of the `final` delta.
    Returns the index's new version, or None when another writer wrote first (nothing of the chunk
    was written; of a delta of several chunks, those before it were: what is left is found again by
    the next comparison, the products' own entries going last)."""
    at: int | None = version
    batch = _Batch()

    def flush(last: bool) -> bool:
        nonlocal at, batch
        params: dict[str, Any] = {f"set_{lb}": v for lb, v in batch.sets.items()}
        params.update({f"gone_{lb}": v for lb, v in batch.gones.items()})
        params.update(version=at, next_lid=delta.next_lid, lines=batch.lines, products=batch.products,
                      catalog=catalog, stamp=stamp, watermark=watermark, last=last and final, dead=batch.dead,
                      now=clock())
        rows = store.run(Q.WRITE if base is not None else Q.CREATE, params)
        if not rows:
            at = None
            return False
        at = int(rows[0]["version"])
        batch = _Batch()
        return True

    for label, ek, stored, name, grow, n in _entries(delta, base):
        if name == "lines":
            if stored is None:
                batch.dead.append(ek)
            else:
                batch.sets[label].append([ek, stored, None])
            batch.lines += grow
        elif stored is None:
            batch.gones[label].append(ek)
        else:
            batch.sets[label].append([ek, stored, n if isinstance(stored, list) else None])
        if name == "fps":
            batch.products += grow
        batch.size += 1
        batch.bytes += len(ek) + (len(stored) if isinstance(stored, str) else 8 * n + 8)
        if (batch.size >= CHUNK or batch.bytes >= CHUNK_BYTES) and not flush(False):
            return None
    flush(True)
    return at


def absorb(base: LineIndex, delta: IndexDelta) -> LineIndex:
    """`base` (the writer's reading of the graph) with `delta`, which it has just written, taken in:
    the next chunk of a change reads through it."""
    if isinstance(base, GraphLineIndex):
        for name, changed in delta.maps.items():
            m = base.maps.get(name)
            if m is not None:
                m.absorb(changed)
            else:  # read whole: values, per-key counts
                whole = getattr(base, name)
                for k, v in changed.items():
                    if v is None:
                        whole.pop(k, None)
                    else:
                        whole[k] = v
    return replace(base, next_lid=delta.next_lid)


def fingerprints_of(idx: LineIndex, skus: Sequence[str], page: int = 10_000) -> dict[str, str]:
    """sku -> the fingerprint the index holds, for those of `skus` it has (read in pages, not cached)."""
    if not isinstance(idx, GraphLineIndex):
        return {s: h for s in skus if (h := idx.fingerprints.get(s)) is not None}
    assert idx.reader is not None
    out: dict[str, str] = {}
    for i in range(0, len(skus), page):
        got = idx.reader.read(("fps", s) for s in skus[i:i + page])
        out.update((key, v) for (_name, key), v in got.items())
    return out


def titles(idx: LineIndex) -> list[str]:
    """Every line's title (what LINKING_VECTORS=memory embeds in each worker)."""
    if isinstance(idx, GraphLineIndex):
        return [str(r["title"]) for r in idx.store.run(Q.TITLES)]
    return [ln.title for ln in idx.lines.iter_lines()]


def indexed_skus(idx: LineIndex) -> Iterable[str]:
    """Every sku the index holds."""
    if isinstance(idx, GraphLineIndex):
        return products_in_index(idx.store)
    return iter(idx.fingerprints)


def full_delta(idx: LineIndex) -> IndexDelta:
    """Every entry of an index built in memory, as a change from nothing."""
    maps: dict[str, Mapping[Any, Any]] = {name: {} for name in SPECS}
    maps["lines"] = idx.lines.blobs
    maps["fps"] = idx.fingerprints
    maps["line_of"] = idx.line_of
    maps["by_key"] = idx.by_key
    maps["exact"] = idx.exact
    maps["line_exact"] = idx.line_exact
    maps["compact"] = idx.compact
    maps["by_title"] = idx.by_title
    maps["postings"] = idx.postings
    maps["common_values"] = idx.common_values
    maps["values"] = idx.values
    maps["value_counts"] = idx.value_counts
    maps["key_value_lines"] = idx.key_value_lines
    maps["key_varies"] = idx.key_varies
    maps["key_lines"] = idx.key_lines
    maps["key_values"] = idx.key_values
    return IndexDelta(maps, idx.next_lid)


def start(store: Any) -> Meta:
    store.run(Q.START)
    meta = read_meta(store)
    assert meta is not None
    return meta


def clear(store: Any, *, limit: int = 50_000) -> int:
    """Delete the whole index (a rebuild from nothing)."""
    total = 0
    for query in Q.CLEAR.values():
        while True:
            n = int(store.run(query, {"limit": limit})[0]["deleted"])
            total += n
            if n < limit:
                break
    return total


def purge_dead(store: Any, *, now: float | None = None, limit: int = 10_000) -> int:
    """Delete lines taken out more than `DEAD_KEPT_S` ago."""
    before = (time.time() if now is None else now) - DEAD_KEPT_S
    total = 0
    while True:
        n = int(store.run(Q.PURGE, {"before": before, "limit": limit})[0]["purged"])
        total += n
        if n < limit:
            return total


def products_in_index(store: Any, page: int = 50_000) -> Iterator[str]:
    """Every sku the index holds (the writer's comparison, to find products deleted since)."""
    after = "f:"
    while True:
        rows = store.run(Q.INDEXED_SKUS, {"after": after, "limit": page})
        for r in rows:
            yield str(r["k"])[2:]
        if len(rows) < page:
            return
        after = str(rows[-1]["k"])


def round_trips(idx: LineIndex) -> int:
    """Graph reads this index made so far (0 for an index in memory): for the bench."""
    reader = getattr(idx, "reader", None)
    return reader.round_trips if reader is not None else 0
