"""The in-memory linking index: product *lines* (a model sold in several variants), brands,
categories and attribute values, each with exact keys, token postings for fuzzy recall and (for
lines and categories) sentence embeddings.

Why lines: "the Aurora X2" names a model line, not a product; its variants differ only in the
attributes (colour, size, storage). Lines are scored against a mention, then the variant words of
the mention pick products inside the line; with none, every variant ties and the mention is
ambiguous. Embedding one row per line instead of per product also cuts the matrix about threefold.

Updates are copy-on-write: `LineIndex.apply(changes)` returns a new index and leaves the old one
untouched, so readers never lock and a refresh swaps one reference. Only the lines that changed
are rebuilt; a full build is the same call on an empty index with every product as a change.

Lines are kept serialised (`LineStore`: marshal, about a fifth of the memory of the objects, and
nothing for the cyclic garbage collector to walk) and decoded when read, through one bounded LRU
per process; a line id is never reused, so a cached line is never stale.
"""

from __future__ import annotations

import dataclasses
import marshal
import math
import re
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

from nlu import attributes
from nlu.linking import text as T

# Attribute keys whose values name a model or another product, not a variant of this one.
MODEL_KEYS = frozenset({"model_line", "model", "model_name", "line", "series"})
NOT_VALUE_KEYS = MODEL_KEYS | {"compatible_with", "compatibility", "name", "sku", "description", "title", "fits"}
_FALSY = {"true", "false", "yes", "no", "none", "null", "n/a", ""}


# -- products ----------------------------------------------------------------------------------
def parse_attributes(raw: Any) -> tuple[tuple[str, str], ...]:
    """Attributes in their stored order, values up to 60 characters (model lines can be long:
    "Hard Shell Case for Nordic Audio Aurora X2")."""
    return attributes.parse_attributes(raw, max_value_chars=60)


def is_attribute_value(key: str, value: str) -> bool:
    """A value a shopper would type as a variant or filter ("Black", "128 GB", "US 9")."""
    v = value.strip()
    return (key.strip().lower() not in NOT_VALUE_KEYS and any(ch.isalpha() for ch in v)
            and v.lower() not in _FALSY and len(v) <= 25 and len(v.split()) <= 4)


@dataclass(frozen=True)
class ProductRecord:
    sku: str
    name: str
    brand: str | None = None
    category: str | None = None
    status: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    h: str = ""  # content fingerprint from the graph; a change means re-index
    updated_at: str | None = None  # the loader's stamp (ISO 8601, UTC)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ProductRecord:
        return cls(sku=str(row["sku"]), name=str(row.get("name") or row["sku"]),
                   brand=(str(row["brand"]) if row.get("brand") else None),
                   category=(str(row["category"]) if row.get("category") else None),
                   status=(str(row["status"]) if row.get("status") else None),
                   attributes=parse_attributes(row.get("attributes")), h=str(row.get("h") or ""),
                   updated_at=(str(row["updated_at"]) if row.get("updated_at") else None))

    @cached_property
    def model_line(self) -> str | None:
        for k, v in self.attributes:
            if k.lower() in MODEL_KEYS and v.strip():
                return v.strip()
        return None

    @cached_property
    def values(self) -> tuple[str, ...]:
        return tuple(v for k, v in self.attributes if is_attribute_value(k, v))

    def without_brand(self, text: str) -> str:
        """`text` without a leading brand name ("Nordic Audio Aurora X2" -> "Aurora X2")."""
        if self.brand and T.fold(text).startswith(T.fold(self.brand) + " ") and len(text) > len(self.brand):
            return text[len(self.brand):].strip()
        return text

    @cached_property
    def base_name(self) -> str:
        """The name without trailing variant parts (", Black", ", 16 GB RAM", " (US 9)")."""
        values = [T.key(v) for v in self.values]
        values = [v for v in values if v]
        out = self.name.strip()
        while True:
            m = (re.match(r"^(.*\S)\s*(?:,|\s-\s|\s–\s|\|)\s*([^,|]+)$", out)
                 or re.match(r"^(.*\S)\s*\(([^()]*)\)$", out))
            if not m:
                return out
            tail = T.key(m.group(2))
            if not tail or not any(v in tail or tail in v for v in values):
                return out
            out = m.group(1).strip()

    @cached_property
    def line_name(self) -> str:
        return self.model_line or self.without_brand(self.base_name)

    @cached_property
    def title_key(self) -> str:
        """The name without brand and variant parts, as a key ("aurora x2 wireless headphone")."""
        return T.key(self.without_brand(self.base_name))

    @cached_property
    def line_key(self) -> tuple[str, str, str]:
        """Brand, model line and title: products of one model line with different titles are
        different lines (a series of toys: "Harbour Town Ferry", "Harbour Town Police Boat"); the line name still names them
        all. A line's variants (colours, sizes, formats) share their title."""
        line = T.key(self.line_name)
        title = self.title_key
        return (T.key(self.brand or ""), line, "" if title == line else title)


def name_vector_text(row: Mapping[str, Any]) -> str:
    """The text a product's name vector is computed from (kg/embeddings.py): its name without variant
    parts, with its brand ("Nordic Audio Aurora X2 Wireless Headphones" for every colour of it), so
    that a line's variants share one vector."""
    rec = ProductRecord.from_row(row)
    base = rec.base_name
    if rec.brand and not T.key(base).startswith(T.key(rec.brand)):
        return f"{rec.brand} {base}"
    return base


_HEAD = re.compile(r"\s*:\s+|\s+[-–—]\s+")


def short_title(name: str) -> str | None:
    """The head of a name with a subtitle ("Golden Crunch: Honey Oat Granola" -> "Golden Crunch",
    "Trailmaster - 2 Person Tent" -> "Trailmaster"): shoppers type the head alone."""
    head = _HEAD.split(name, maxsplit=1)[0].strip()
    return head if head != name.strip() and T.content_tokens(head) else None


# -- fuzzy token matching ------------------------------------------------------------------------
def fuzzy_cutoff(token: str) -> float | None:
    """Ratio cutoff for typo matching of a token, or None when only an exact match counts (short
    words, and anything with digits: "x2" is not "x3", "wh1000xm5" is not "wh1000xm4")."""
    if not token.isalpha() or len(token) < 4:
        return None
    return 75.0 if len(token) == 5 else 80.0  # four letters: a dropped or swapped letter, not another word


def token_sims(qtoks: Iterable[str], vocab: Container[str], vocab_list: Sequence[str],
               limit: int = 4) -> dict[str, dict[str, float]]:
    """For each query token, the vocabulary tokens it may stand for, with a similarity in (0, 1]."""
    out: dict[str, dict[str, float]] = {}
    for q in qtoks:
        if q in out:
            continue
        sims: dict[str, float] = {}
        if q in vocab:
            sims[q] = 1.0
        cut = fuzzy_cutoff(q)
        if cut is not None and vocab_list:
            for v, s, _ in process.extract(q, vocab_list, scorer=fuzz.ratio, score_cutoff=cut, limit=limit):
                if v != q:
                    sims[v] = max(sims.get(v, 0.0), s / 100.0)
        out[q] = sims
    return out


def merge_split_tokens(qtoks: list[str], vocab: Container[str]) -> list[str]:
    """Glue tokens a shopper split that the catalog writes as one ("na 700x" -> "na700x", "usb c")."""
    out: list[str] = []
    i = 0
    while i < len(qtoks):
        for n in (3, 2):
            if i + n <= len(qtoks):
                parts = qtoks[i:i + n]
                glued = "".join(parts)
                if glued in vocab and any(len(p) <= 2 or any(ch.isdigit() for ch in p) for p in parts):
                    out.append(glued)
                    i += n
                    break
        else:
            out.append(qtoks[i])
            i += 1
    return out


def soft_score(qtoks: Sequence[str], alias: Sequence[str], sims: Mapping[str, Mapping[str, float]],
               idf: Any, beta: float = 1.5) -> float:
    """Soft TF-IDF F-score of a mention against one alias: how much of the mention the alias covers
    (recall, weighted by beta) and how much of the alias the mention names (precision), with
    typo-tolerant token matches and rare words weighing more."""
    r, p = soft_coverage(qtoks, alias, sims, idf)
    if r <= 0 or p <= 0:
        return 0.0
    b2 = beta * beta
    return (1 + b2) * p * r / (b2 * p + r)


def soft_coverage(qtoks: Sequence[str], alias: Sequence[str], sims: Mapping[str, Mapping[str, float]],
                  idf: Any) -> tuple[float, float]:
    """(share of the mention the alias covers, share of the alias the mention names), IDF-weighted,
    typos counting by their similarity."""
    if not qtoks or not alias:
        return 0.0, 0.0
    rec_num = rec_den = 0.0
    best_for_alias = dict.fromkeys(alias, 0.0)
    for q in qtoks:
        qs = sims.get(q, {})
        best = 0.0
        best_tok = None
        for a in alias:
            s = 1.0 if a == q else qs.get(a, 0.0)
            if s > best:
                best, best_tok = s, a
        w = idf(best_tok) if best_tok is not None else idf(q)
        rec_num += w * best
        rec_den += w
        if best_tok is not None and best > best_for_alias[best_tok]:
            best_for_alias[best_tok] = best
    pre_num = pre_den = 0.0
    for a, s in best_for_alias.items():
        w = idf(a)
        pre_num += w * s
        pre_den += w
    r = rec_num / rec_den if rec_den else 0.0
    p = pre_num / pre_den if pre_den else 0.0
    return r, p


def compact_ratio(qtoks: Sequence[str], alias: Sequence[str]) -> float:
    """Similarity of the glued forms, for words run together or split ("aurorax2", "auroax2"): only
    near-identical strings count, and the distance is doubled (0.95 -> 0.9, below 0.85 -> 0) so
    that two names sharing their kind words ("... smartphone") do not come out close."""
    a, b = "".join(qtoks), "".join(alias)
    if a == b:
        return 1.0
    if len(a) < 4 or len(b) < 4 or _DIGITS.findall(a) != _DIGITS.findall(b):
        return 0.0  # "nova6" is not "nova5", whatever the letters say
    r = fuzz.ratio(a, b) / 100.0
    return 1.0 - 2.0 * (1.0 - r) if r >= 0.85 else 0.0


_DIGITS = re.compile(r"\d+")


class CappedPosting(tuple):
    """The postings of a word in more lines than an index kept in the graph reads back (a common word:
    "wireless", "black"): its length is how many lines have it, and it lists none of them."""

    def __new__(cls, n: int) -> CappedPosting:
        obj = super().__new__(cls, ())
        obj.n = n
        return obj

    def __len__(self) -> int:
        return self.n


# -- lines ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Line:
    """One model line: its aliases and keys, and its products as tuples aligned with `skus` (a
    line keeps what linking needs; the index keeps no product records)."""

    lid: int
    key: tuple[str, ...]
    brand: str | None
    name: str  # the model line as written ("Aurora X2")
    title: str  # brand + name without variant, the embedding text ("Nordic Audio Aurora X2 Wireless Headphones")
    skus: tuple[str, ...]
    names: tuple[str, ...]  # product names
    active: tuple[bool, ...]
    variants: tuple[tuple[tuple[str, tuple[str, ...]], ...], ...]  # (key, value tokens) of the varying keys
    common: tuple[tuple[str, tuple[str, ...]], ...]  # (key, value tokens) every product of the line shares
    values: tuple[str, ...]  # every attribute value of the line's products, for the value vocabulary
    aliases: tuple[tuple[str, ...], ...]  # content-token tuples, for fuzzy scoring
    # An accessory's own kind without the device it fits ("65W USB-C Power Adapter" of "... for Aspect X1"):
    # it names every such accessory alike, so it scores below the full name and leaves them tied.
    generic: tuple[tuple[str, ...], ...]
    name_tokens: frozenset[str]  # brand and model-line tokens (never read as variant words)
    exact: tuple[tuple[str, tuple[str, ...]], ...]  # key -> skus it names: names and titles
    compact: tuple[tuple[str, tuple[str, ...]], ...]
    tokens: frozenset[str]
    # Keys of the model line ("aurora x2", "nordic audio aurora x2", model numbers) -> skus: a title
    # named exactly wins over a model line of the same words ("Moon Rover", not the whole Moon Rover series).
    line_exact: tuple[tuple[str, tuple[str, ...]], ...] = ()
    varying_keys: frozenset[str] = frozenset()  # attribute keys whose value differs between the products

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {sku: i for i, sku in enumerate(self.skus)}

    def _at(self, sku: str) -> int:
        try:
            return self._positions[sku]
        except KeyError:
            raise ValueError(f"{sku!r} is not in line {self.name!r}") from None

    def name_of(self, sku: str) -> str:
        return self.names[self._at(sku)]

    def is_active(self, sku: str) -> bool:
        return self.active[self._at(sku)]

    def variants_of(self, sku: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return self.variants[self._at(sku)] if sku in self.skus else ()

    @cached_property
    def head(self) -> str | None:
        """The word that says what kind of thing the line is: the last word of its model line
        before any "for ..." or "with ..." ("charger" of "100W GaN Charger for Forge 15", "lager"
        of "Harbour Pale Lager", "drill" of "Cordless Drill 18V"); None when no such word."""
        toks = T.content_tokens(_OWN_NAME.split(self.name, maxsplit=1)[0])
        n = len(toks) - 1  # a size or rating after the word is not it ("Drill 18V", "Claw Hammer 16 oz")
        while n >= 0 and (not toks[n].isalpha() or (n > 0 and len(toks[n]) <= 3 and toks[n - 1].isdigit())):
            n -= 1
        if n < 0 or T.is_model_number(toks[n]):
            return None
        return toks[n]


_OWN_NAME = re.compile(r"\s+(?:for|with)\s+|\s*,\s*", re.I)
_LINE_FIELDS = tuple(f.name for f in dataclasses.fields(Line))
LINE_CACHE = 4096  # decoded lines kept per process (a turn reads a few dozen)


def pack_line(line: Line) -> bytes:
    """A line as bytes (`LineStore`): its fields, all tuples, strings, numbers and frozensets."""
    return marshal.dumps(tuple(getattr(line, f) for f in _LINE_FIELDS))


def unpack_line(blob: bytes) -> Line:
    return Line(*marshal.loads(blob))


_cached_line = lru_cache(maxsize=LINE_CACHE)(unpack_line)  # keyed by the blob: shared by every index version


class LineStore(Mapping[int, Line]):
    """Lines by id, serialised (`pack_line`: a line of the sample store takes 1.4 KB as bytes against
    6.7 KB as objects), decoded on read through a bounded LRU. `iter_lines` decodes every line
    without passing through (or flushing) the LRU."""

    __slots__ = ("blobs",)

    def __init__(self, blobs: dict[int, bytes] | None = None) -> None:
        self.blobs: dict[int, bytes] = blobs if blobs is not None else {}

    def __getitem__(self, lid: int) -> Line:
        return _cached_line(self.blobs[lid])

    def __contains__(self, lid: object) -> bool:
        return lid in self.blobs

    def __iter__(self) -> Iterator[int]:
        return iter(self.blobs)

    def __len__(self) -> int:
        return len(self.blobs)

    def iter_lines(self) -> Iterator[Line]:
        return (unpack_line(b) for b in self.blobs.values())


def _category_noun(category: str | None) -> str:
    return category or ""


def make_line(lid: int, records: Sequence[ProductRecord]) -> Line:
    recs = sorted(records, key=lambda r: r.sku)
    first = recs[0]
    brand = first.brand
    line_name = first.line_name
    bases = list(dict.fromkeys(r.base_name for r in recs))
    base = Counter(r.base_name for r in recs).most_common(1)[0][0]
    title = base if not brand or T.key(base).startswith(T.key(brand)) else f"{brand} {base}"
    if first.category and not set(T.content_tokens(first.category)) <= set(T.content_tokens(title)):
        title = f"{title} ({first.category})"
    skus = tuple(r.sku for r in recs)
    all_skus = frozenset(skus)

    titles = list(dict.fromkeys([*bases, *(first.without_brand(b) for b in bases)]))
    heads = [h for h in dict.fromkeys(short_title(t) for t in titles) if h]
    # A title named exactly is that title; the model line (or series) alone, or a subtitled name's
    # head, may name more and yields to it. The line with its brand or its kind, and its model
    # numbers, are as specific as a title.
    named = list(titles)
    if brand:
        named.append(f"{brand} {line_name}")
    if first.category:
        named.append(f"{line_name} {_category_noun(first.category)}")
    own = re.split(r"\s+for\s+", line_name, maxsplit=1, flags=re.I)[0]
    named.extend(t for t in own.split() if T.is_model_number(T.compact(t)))
    model_aliases = [line_name, *heads]
    line_aliases = [line_name, *named, *heads]

    exact: dict[str, set[str]] = {}
    line_exact: dict[str, set[str]] = {}
    compact: dict[str, set[str]] = {}

    def add(alias: str, targets: Iterable[str], keys: dict[str, set[str]]) -> None:
        k, c = T.key(alias), T.compact(alias)
        if k:
            keys.setdefault(k, set()).update(targets)
        if len(c) >= 3:
            compact.setdefault(c, set()).update(targets)

    for a in named:
        add(a, skus, exact)
    for a in model_aliases:
        add(a, skus, line_exact)
    for r in recs:  # a product's full name (exact only: nobody types it glued) and its sku
        k = T.key(r.name)
        if k:
            exact.setdefault(k, set()).add(r.sku)
        add(r.sku, (r.sku,), exact)

    alias_toks = tuple(dict.fromkeys(t for t in (tuple(T.content_tokens(a)) for a in line_aliases) if t))
    generic: tuple[tuple[str, ...], ...] = ()
    if own != line_name:
        generic = tuple(dict.fromkeys(t for t in (tuple(T.content_tokens(a)) for a in (own, f"{brand or ''} {own}"))
                                      if t))
    tokens = frozenset(t for a in alias_toks + generic for t in a)
    name_tokens = frozenset(T.content_tokens(f"{brand or ''} {line_name}"))

    # Variant keys: those whose value differs between the line's products.
    keys = {k for r in recs for k, _ in r.attributes if k.lower() not in NOT_VALUE_KEYS}
    per = [dict(r.attributes) for r in recs]
    varying = sorted(k for k in keys if len({d.get(k, "") for d in per}) > 1)
    variants = tuple(
        tuple((k, t) for k, t in ((k, tuple(T.content_tokens(d[k]))) for k in varying if d.get(k)) if t)
        for d in per
    )
    shared = sorted(k for k in keys if k not in varying and k.lower() not in MODEL_KEYS and
                    is_attribute_value(k, per[0].get(k, "")))
    common = tuple((k, t) for k, t in ((k, tuple(T.content_tokens(per[0][k]))) for k in shared) if t)
    return Line(
        lid=lid, key=first.line_key, brand=brand, name=line_name, title=title, skus=skus,
        names=tuple(r.name for r in recs), active=tuple((r.status or "active") != "discontinued" for r in recs),
        variants=variants, common=common, values=tuple(dict.fromkeys(v for r in recs for v in r.values)),
        aliases=alias_toks, generic=generic, name_tokens=name_tokens,
        exact=tuple((k, tuple(sorted(v & all_skus))) for k, v in exact.items()),
        compact=tuple((k, tuple(sorted(v & all_skus))) for k, v in compact.items()),
        tokens=tokens,
        line_exact=tuple((k, tuple(sorted(v & all_skus))) for k, v in line_exact.items() if k not in exact),
        varying_keys=frozenset(k.lower() for k in varying),
    )


# -- embeddings ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class EmbeddingTable:
    """One unit vector per text; rows are appended for new texts and never rewritten, so an old
    snapshot keeps working while a new one grows (`compacted` drops rows no longer used)."""

    texts: tuple[str, ...] = ()
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    row_of: Mapping[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def with_texts(self, texts: Sequence[str], encode: Any, dtype: str) -> EmbeddingTable:
        new = [t for t in dict.fromkeys(texts) if t not in self.row_of]
        if not new:
            return self
        vecs = encode(new).astype(dtype)
        matrix = vecs if self.matrix.size == 0 else np.concatenate([self.matrix, vecs])
        row_of = dict(self.row_of)
        row_of.update((t, len(self.texts) + i) for i, t in enumerate(new))
        return EmbeddingTable(self.texts + tuple(new), matrix, row_of)

    def compacted(self, live: Iterable[str]) -> EmbeddingTable:
        keep = [t for t in dict.fromkeys(live) if t in self.row_of]
        if len(keep) == len(self.texts):
            return self
        rows = np.array([self.row_of[t] for t in keep], dtype=np.int64)
        matrix = self.matrix[rows] if len(rows) else self.matrix[:0]
        return EmbeddingTable(tuple(keep), matrix, {t: i for i, t in enumerate(keep)})

    def search(self, vec: np.ndarray, k: int, chunk: int = 16384) -> list[tuple[str, float]]:
        n = len(self.texts)
        if n == 0:
            return []
        v = vec.astype(np.float32)
        if self.matrix.dtype == np.float32:
            scores = self.matrix @ v
        else:  # float16 storage: convert a block at a time (numpy has no fast half-precision matmul)
            scores = np.empty(n, dtype=np.float32)
            for i in range(0, n, chunk):
                scores[i:i + chunk] = self.matrix[i:i + chunk].astype(np.float32) @ v
        k = min(k, n)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(self.texts[i], float(scores[i])) for i in top]


# -- the product-line index ------------------------------------------------------------------------
_IDF_CACHE_MAX = 200_000


def _idf(df: int, n: int) -> float:
    return math.log(1.0 + (n + 1) / (df + 0.5))


@dataclass(frozen=True, eq=False)
class LineIndex:
    fingerprints: Mapping[str, str] = field(default_factory=dict)  # sku -> content fingerprint
    lines: LineStore = field(default_factory=LineStore)
    line_of: Mapping[str, int] = field(default_factory=dict)  # sku -> lid
    by_key: Mapping[tuple[str, ...], int] = field(default_factory=dict)
    # Keys map to tuples (a 1-tuple is a fifth of a 1-frozenset: most keys name one line or product).
    exact: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    compact: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    postings: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    # The name words a typo may stand for (`token_sims`): letters only. A token with a digit in it is a
    # model number, a size or a sku, matched exactly like a shopper's ("x2" is not "x3"); at a million
    # products they are nearly all of the vocabulary, and the typo search went over every one of them.
    vocab_list: tuple[str, ...] = ()
    values: Mapping[tuple[str, ...], str] = field(default_factory=dict)  # value tokens -> display value
    value_counts: Mapping[tuple[str, ...], int] = field(default_factory=dict)  # in how many lines
    by_title: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    line_exact: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # model-line keys -> skus
    # Values every product of a line shares (an author, a maker, a material) -> lines; and per
    # attribute key, in how many lines it varies (a colour, a size: a variant, never a name).
    common_values: Mapping[tuple[str, ...], tuple[int, ...]] = field(default_factory=dict)
    key_varies: Mapping[str, int] = field(default_factory=dict)
    # Per key shared inside lines: in how many lines, and how many distinct values it takes there
    # (an author or a maker nearly tells lines apart; a material or a fit does not).
    key_lines: Mapping[str, int] = field(default_factory=dict)
    key_values: Mapping[str, int] = field(default_factory=dict)
    key_value_lines: Mapping[tuple[str, tuple[str, ...]], int] = field(default_factory=dict)
    next_lid: int = 0
    _idf_cache: dict[str | None, float] = field(default_factory=dict, repr=False)

    def idf(self, token: str | None) -> float:
        """Inverse line frequency; a word no line has weighs most. Cached per index (immutable) for
        the index's own words only: shoppers' unknown words and typos would grow the cache forever."""
        w = self._idf_cache.get(token)
        if w is None:
            post = self.postings.get(token, ()) if token is not None else ()
            w = _idf(len(post), len(self.lines))
            if post and len(self._idf_cache) < _IDF_CACHE_MAX:
                self._idf_cache[token] = w
        return w

    def prefetch(self, tokens: Iterable[str], keys: Iterable[str]) -> None:
        """Read ahead what a message will look up (an index kept elsewhere); nothing to do in memory."""

    def prefetch_lines(self, lids: Iterable[int]) -> None:
        """Read ahead lines about to be scored (an index kept elsewhere); nothing to do in memory."""

    def prefetch_map(self, name: str, keys: Iterable[Any]) -> None:
        """Read ahead entries of one map (an index kept elsewhere); nothing to do in memory."""

    def common_values_upto(self, max_lines: int) -> Iterable[tuple[tuple[str, ...], tuple[int, ...]]]:
        """Attribute values every product of at most `max_lines` lines has, with those lines."""
        return ((v, lids) for v, lids in self.common_values.items() if len(lids) <= max_lines)

    def apply(self, changes: Mapping[str, ProductRecord | None],
              fetch: Callable[[Sequence[str]], Iterable[ProductRecord]] | None = None) -> LineIndex:
        """A new index with `changes` applied (sku -> new record, or None for a deleted product).

        Every line a change touches is rebuilt from all its products; `fetch` reads the records of
        its unchanged products (the index keeps none), so an update costs the touched lines only."""
        if not changes:
            return self
        e = self._edit(changes, fetch)
        post = e.postings.frozen()
        vocab_list = self.vocab_list if e.postings.keys_unchanged() else tuple(t for t in post if t.isalpha())
        return LineIndex(fingerprints=e.fps.merged(), lines=LineStore(e.lines.merged()), line_of=e.line_of.merged(),
                         by_key=e.by_key.merged(), exact=e.exact.frozen(), compact=e.compact.frozen(), postings=post,
                         vocab_list=vocab_list, values=e.values.merged(), value_counts=e.value_counts.merged(),
                         by_title=e.by_title.frozen(), line_exact=e.line_exact.frozen(),
                         common_values=e.common_values.frozen(), key_varies=e.key_varies.merged(),
                         key_lines=e.key_lines.merged(), key_values=e.key_values.merged(),
                         key_value_lines=e.key_value_lines.merged(), next_lid=e.next_lid)

    def delta(self, changes: Mapping[str, ProductRecord | None],
              fetch: Callable[[Sequence[str]], Iterable[ProductRecord]] | None = None) -> IndexDelta:
        """What `apply` would change, map by map, without copying the index: for an index kept
        elsewhere (the graph: nlu/linking/graph_index.py), whose maps are read on demand."""
        e = self._edit(changes, fetch) if changes else None
        if e is None:
            return IndexDelta({}, self.next_lid)
        return IndexDelta({name: getattr(e, name).changed() for name in _EDITED}, e.next_lid)

    def _edit(self, changes: Mapping[str, ProductRecord | None],
              fetch: Callable[[Sequence[str]], Iterable[ProductRecord]] | None) -> _Edit:
        e = _Edit(self)
        old = self.lines
        line_of, by_key, lines, fps = e.line_of, e.by_key, e.lines, e.fps
        records: dict[str, ProductRecord] = {s: r for s, r in changes.items() if r is not None}
        touched: dict[tuple[str, ...], set[str]] = {}
        for sku, rec in changes.items():
            lid = line_of.get(sku)
            if lid is not None:
                touched.setdefault(old[lid].key, set())
            if rec is not None:
                touched.setdefault(rec.line_key, set())
        unchanged = [s for lk in touched if (lid := by_key.get(lk)) is not None for s in old[lid].skus
                     if s not in changes]
        if unchanged:
            if fetch is None:
                raise ValueError("updating a line needs the records of its other products (fetch)")
            for r in fetch(unchanged):
                if r.line_key in touched:  # one that moved meanwhile comes back as a change next time
                    records.setdefault(r.sku, r)
        for rec in records.values():
            touched[rec.line_key].add(rec.sku)

        for lk, members in touched.items():
            lid = by_key.pop(lk)
            if lid is not None:  # take the old line out
                line = unpack_line(lines.pop(lid))  # not through the LRU: it is about to go
                for k, skus in line.exact:
                    e.exact.discard(k, skus)
                for k, skus in line.line_exact:
                    e.line_exact.discard(k, skus)
                for k, skus in line.compact:
                    e.compact.discard(k, skus)
                for _k, toks in line.common:
                    e.common_values.discard(toks, (lid,))
                _count_keys(line.varying_keys, e.key_varies, -1)
                _count_shared(line.common, e.key_lines, e.key_values, e.key_value_lines, -1)
                for t in line.tokens:
                    e.postings.discard(t, (lid,))
                e.by_title.discard(line.title, (lid,))
                _count_values(line.values, e.values, e.value_counts, -1)
                for s in line.skus:
                    if line_of.get(s) == lid:
                        line_of.pop(s)
                        fps.pop(s)
            if not members:
                continue
            lid = e.next_lid
            e.next_lid += 1
            line = make_line(lid, [records[s] for s in members])
            lines[lid] = pack_line(line)
            by_key[lk] = lid
            for k, skus in line.exact:
                e.exact.add(k, skus)
            for k, skus in line.line_exact:
                e.line_exact.add(k, skus)
            for k, skus in line.compact:
                e.compact.add(k, skus)
            for _k, toks in line.common:
                e.common_values.add(toks, (lid,))
            _count_keys(line.varying_keys, e.key_varies, +1)
            _count_shared(line.common, e.key_lines, e.key_values, e.key_value_lines, +1)
            for t in line.tokens:
                e.postings.add(t, (lid,))
            e.by_title.add(line.title, (lid,))
            _count_values(line.values, e.values, e.value_counts, +1)
            for s in line.skus:
                line_of[s] = lid
                fps[s] = records[s].h
        for sku, rec in changes.items():
            if rec is None:
                fps.pop(sku)
        return e

    def exact_skus(self, key: str) -> tuple[str, ...]:
        """The skus an exact key names: a product's or title's name first, else a model line's."""
        return self.exact.get(key) or self.line_exact.get(key) or ()

    def has_exact(self, key: str) -> bool:
        return key in self.exact or key in self.line_exact

    def naming_key(self, key: str, min_diversity: float = 0.5) -> bool:
        """A key whose values name lines: it varies inside no line (never a colour or a size of a
        line's variants), and takes nearly as many values as there are lines that have it (an
        author, a maker, a designer; not a material or a fit that many lines share)."""
        k = key.lower()
        n = self.key_lines.get(k, 0)
        return n > 0 and not self.key_varies.get(k) and self.key_values.get(k, 0) >= min_diversity * n

    def named_by_value(self, value: tuple[str, ...], min_diversity: float = 0.5) -> list[int]:
        """Lines that an attribute value names: every product of the line has it, under a naming key."""
        out = []
        for lid in self.common_values.get(value, ()):
            line = self.lines[lid]
            if any(t == value and self.naming_key(k, min_diversity) for k, t in line.common):
                out.append(lid)
        return sorted(out)


def _count_keys(keys: Iterable[Any], counts: _Layer, step: int) -> None:
    for k in keys:
        n = counts.get(k, 0) + step
        if n > 0:
            counts[k] = n
        else:
            counts.pop(k)


def _count_shared(common: Iterable[tuple[str, tuple[str, ...]]], key_lines: _Layer, key_values: _Layer,
                  key_value_lines: _Layer, step: int) -> None:
    for k, toks in common:
        k = k.lower()
        _count_keys((k,), key_lines, step)
        before = key_value_lines.get((k, toks), 0)
        _count_keys(((k, toks),), key_value_lines, step)
        after = key_value_lines.get((k, toks), 0)
        if (before == 0) != (after == 0):
            _count_keys((k,), key_values, 1 if after else -1)


def _count_values(line_values: Iterable[str], values: _Layer, counts: _Layer, step: int) -> None:
    for v in line_values:
        toks = tuple(T.content_tokens(v))
        if not toks:
            continue
        n = counts.get(toks, 0) + step
        if n > 0:
            counts[toks] = n
            if values.get(toks) is None:
                values[toks] = v
        else:
            counts.pop(toks)
            values.pop(toks)


_MISSING: Any = object()


class _Layer:
    """Changes to a map over an unchanged base: reads fall through to the base, writes stay here.
    `merged()` is the new map (a copy of the base with the changes); `changed()` only the changes,
    None for a key taken out (what an index kept elsewhere writes)."""

    __slots__ = ("base", "out")

    def __init__(self, base: Mapping[Any, Any]) -> None:
        self.base = base
        self.out: dict[Any, Any] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        v = self.out.get(key, _MISSING)
        if v is _MISSING:
            return self.base.get(key, default)
        return default if v is None else v

    def __setitem__(self, key: Any, value: Any) -> None:
        self.out[key] = value

    def pop(self, key: Any) -> Any:
        v = self.get(key)
        self.out[key] = None
        return v

    def merged(self) -> dict[Any, Any]:
        out = dict(self.base)
        for k, v in self.out.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = v
        return out

    def changed(self) -> dict[Any, Any]:
        return self.out


class _CowMap:
    """Copy-on-write map of key -> tuple of members: the first change to a key copies its members
    into a set; `frozen()` gives back a plain dict of tuples (the base's copy with the changes),
    `changed()` the changed keys alone (None: gone). Keeps a full build linear in the catalog size."""

    def __init__(self, base: Mapping[Any, tuple]) -> None:
        self._base = base
        self._dirty: dict[Any, set] = {}
        self._added_keys = False

    def _mutable(self, key: Any) -> set:
        s = self._dirty.get(key)
        if s is None:
            s = set(self._base.get(key, ()))
            self._dirty[key] = s
        return s

    def add(self, key: Any, items: Iterable[Any]) -> None:
        if key not in self._dirty and key not in self._base:
            self._added_keys = True
        self._mutable(key).update(items)

    def discard(self, key: Any, items: Iterable[Any]) -> None:
        if key in self._dirty or key in self._base:
            self._mutable(key).difference_update(items)

    def keys_unchanged(self) -> bool:
        return not self._added_keys and not any(not s for s in self._dirty.values())

    def frozen(self) -> dict[Any, tuple]:
        out = dict(self._base)
        for k, s in self._dirty.items():
            if s:
                out[k] = tuple(s)
            else:
                out.pop(k, None)
        return out

    def changed(self) -> dict[Any, tuple | None]:
        return {k: (tuple(s) if s else None) for k, s in self._dirty.items()}


_EDITED = ("fps", "lines", "line_of", "by_key", "exact", "line_exact", "compact", "postings", "by_title",
           "common_values", "values", "value_counts", "key_varies", "key_lines", "key_values", "key_value_lines")


class _Edit:
    """One `LineIndex._edit`: a layer over each map of the index it starts from."""

    def __init__(self, idx: LineIndex) -> None:
        self.fps = _Layer(idx.fingerprints)
        self.lines = _Layer(idx.lines.blobs)
        self.line_of = _Layer(idx.line_of)
        self.by_key = _Layer(idx.by_key)
        self.exact = _CowMap(idx.exact)
        self.line_exact = _CowMap(idx.line_exact)
        self.compact = _CowMap(idx.compact)
        self.postings = _CowMap(idx.postings)
        self.by_title = _CowMap(idx.by_title)
        self.common_values = _CowMap(idx.common_values)
        self.values = _Layer(idx.values)
        self.value_counts = _Layer(idx.value_counts)
        self.key_varies = _Layer(idx.key_varies)
        self.key_lines = _Layer(idx.key_lines)
        self.key_values = _Layer(idx.key_values)
        self.key_value_lines = _Layer(idx.key_value_lines)
        self.next_lid = idx.next_lid


@dataclass(frozen=True)
class IndexDelta:
    """What one change did to an index, map by map (`_EDITED`'s names): key -> new value, None
    for a key taken out; and the next line id."""

    maps: Mapping[str, Mapping[Any, Any]]
    next_lid: int


# -- brands and categories -----------------------------------------------------------------------
_IRREGULAR = {"mice": ("mouse",), "mouse": ("mice",), "knives": ("knife",), "shelves": ("shelf",),
              "feet": ("foot",), "glasses": ("glass",), "men": ("man",), "women": ("woman",)}


@dataclass(frozen=True)
class NameEntry:
    node_id: str
    label: str
    aliases: tuple[tuple[str, ...], ...]
    text: str = ""  # embedding text (categories: name and description)


@dataclass(frozen=True, eq=False)
class NameTable:
    """A small table of names (brands or categories) with the same matching as product lines."""

    entries: tuple[NameEntry, ...] = ()
    exact: Mapping[str, frozenset[int]] = field(default_factory=dict)
    compact: Mapping[str, frozenset[int]] = field(default_factory=dict)
    postings: Mapping[str, frozenset[int]] = field(default_factory=dict)
    vocab_list: tuple[str, ...] = ()

    @classmethod
    def build(cls, entries: Sequence[NameEntry]) -> NameTable:
        exact: dict[str, set[int]] = {}
        compact: dict[str, set[int]] = {}
        postings: dict[str, set[int]] = {}
        for i, e in enumerate(entries):
            for a in e.aliases:
                exact.setdefault(" ".join(a), set()).add(i)
                if len("".join(a)) >= 3:
                    compact.setdefault("".join(a), set()).add(i)
                for t in a:
                    postings.setdefault(t, set()).add(i)
        return cls(tuple(entries), {k: frozenset(v) for k, v in exact.items()},
                   {k: frozenset(v) for k, v in compact.items()},
                   {k: frozenset(v) for k, v in postings.items()}, tuple(postings))

    def idf(self, token: str | None) -> float:
        if token is None:
            return _idf(0, len(self.entries))
        return _idf(len(self.postings.get(token, ())), len(self.entries))


def brand_entry(name: str) -> NameEntry:
    toks = tuple(T.content_tokens(name))
    aliases = [toks]
    # "Driftwood & Co", "Meridian Computing": the distinctive first word alone is a common way to say it
    generic = {"co", "company", "inc", "ltd", "gmbh", "labs", "gear", "works", "studio", "computing", "mobile",
               "audio", "sound", "optics", "outfitters", "peripherals"}
    if len(toks) > 1 and toks[-1] in generic and len(toks[0]) >= 4:
        aliases.append(toks[:-1])
    return NameEntry(name, "Brand", tuple(dict.fromkeys(a for a in aliases if a)))


def category_entry(name: str, description: str | None = None) -> NameEntry:
    toks = tuple(T.content_tokens(name))
    aliases: list[tuple[str, ...]] = [toks]
    parts = [p for p in re.split(r"\s*(?:&|\band\b|,|/)\s*", name) if p.strip()]
    if len(parts) > 1:  # "Chargers & Cables" -> "chargers", "cables"; "Mice & Keyboards" -> "mouse", ...
        for p in parts:
            pt = tuple(T.content_tokens(p))
            if pt:
                aliases.append(pt)
    for a in list(aliases):
        for i, t in enumerate(a):
            for alt in _IRREGULAR.get(t, ()):
                aliases.append(a[:i] + (alt,) + a[i + 1:])
    text = f"{name}: {description}" if description else name
    return NameEntry(name, "Category", tuple(dict.fromkeys(a for a in aliases if a)), text)
