"""Field questions: which property or relationship of a product a message asks about.

"Who supplies the X?", "what category is X in?", "how many pages?", "is it in English?", "how
long does the battery last?": each names one *field* of the product node. The fields are

- the schema's own (kg/schema.py): brand, category, supplier (and its contact line), price,
  stock, warranty, rating, description, status and sku;
- every attribute key the shop imported (DESIGN section 3 keeps unknown product columns as
  `attributes`), read from the graph and cached per catalog version, so a column nobody here
  has seen ("voltage", "shelf_life_days") is a field as soon as it is imported;
- common product properties the shop may lack ("weight", "dimensions", "illustrator"): asked
  about, they get "I don't have that information" instead of another field.

A message is matched three ways, strongest first:

1. names and phrasings: the field's own words (a key "publication_year" is named by
   "publication year"), and a small general lexicon of how shoppers ask for common properties
   ("who wrote" for an author, "how heavy" for a weight, "where is it made" for an origin). A
   shop key is joined to a lexicon concept by its name or, failing that, by embedding
   similarity of the two names, so "writer" and "author" share their phrasings;
2. values: "is it in English?", "paperback or hardcover?" name a value the shop holds under
   one key (language, format) in a yes/no or either/or question;
3. embeddings: the message, with the product mention blanked, against every field's words with
   the sentence encoder qa/search.py and nlu/linking use, above a threshold and a margin.

`FieldResolver.detect` returns a `FieldAsk` (or None); qa/context.py uses it to route the
question to the intent that answers the field (price, stock and warranty have their own
intents, every other field is `product_details`), and the products handler answers it.
This module reads the graph only through named queries (kg/queries/products.py).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Literal

from rapidfuzz import fuzz, process

from common.errors import GraphError
from kg.queries import get
from kg.scan import scan
from kg.store import GraphStore
from nlu.types import Entity

log = logging.getLogger(__name__)

FieldKind = Literal["product", "supplier", "attribute", "unknown"]
Source = Literal["name", "phrase", "part", "value", "embedding", "context"]

DETAILS = "product_details"


# -- the lexicon -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Concept:
    """How shoppers name (`names`: nouns a shop might also use as a column name) and ask for
    (`phrases`) one kind of product property. `weak` phrases only count when nothing stronger
    matches ("how much" asks for a price unless the message says "weigh")."""

    label: str
    names: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    weak: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()  # regular expressions over the normalised message


@dataclass(frozen=True)
class CoreField:
    """A field every product has in the schema: a property, or a relationship's node."""

    key: str
    intent: str
    concepts: tuple[Concept, ...]
    kind: FieldKind = "product"


# The schema's fields. Price, stock and warranty have intents of their own (their writers answer
# them); every other field is answered by product_details.
CORE_FIELDS: tuple[CoreField, ...] = (
    CoreField("brand", DETAILS, (
        Concept("brand", names=("brand", "brand name", "make"), phrases=("what make", "which brand", "what brand")),
        Concept("manufacturer", names=("manufacturer", "maker", "producer"),
                phrases=("who makes", "who made", "made by", "manufactured by", "who manufactures", "who produces",
                         "produced by")),
        Concept("publisher", names=("publisher", "publishing house", "imprint"),
                phrases=("who publishes", "who published", "published by", "who puts out")),
        Concept("label", names=("record label",)),
    )),
    CoreField("category", DETAILS, (
        Concept("category", names=("category", "categories", "section", "department", "aisle", "genre", "shelf",
                                   "product type", "product group"),
                phrases=("what kind of", "which kind of", "what type of", "which type of", "what sort of",
                         "which category", "what category", "classed as", "filed under", "categorised",
                         "categorized", "where would i find", "where do i find")),
    )),
    CoreField("supplier", DETAILS, (
        Concept("supplier", names=("supplier", "suppliers", "distributor", "wholesaler", "vendor"),
                phrases=("who supplies", "supplied by", "supplies", "distributes", "distributed by",
                         "source it from", "source from", "do you source", "get it from", "do you get",
                         "buy it from", "who do you buy")),
    ), kind="supplier"),
    CoreField("price", "product_price", (
        Concept("price", names=("price", "cost", "costs", "retail price"),
                phrases=("how much is", "how much are", "how much does it cost", "set me back", "charge for",
                         "do you charge", "what does it cost", "expensive", "pay for"),
                weak=("how much",)),
    )),
    CoreField("stock", "product_availability", (
        Concept("stock", names=("stock", "stock level", "availability", "inventory"),
                phrases=("in stock", "out of stock", "sold out", "copies left", "any left", "left in stock",
                         "how many left", "how many copies", "how many do you have", "do you have any",
                         "available", "back in stock", "do you currently have", "do you still have"),
                patterns=(r"\b(any|how many)\b.*\b(left|remaining)\b",
                          r"\bcan i (?:get|buy|order)\b.*\b(now|today|at the moment|right away)$")),
    )),
    CoreField("warranty", "product_warranty", (
        Concept("warranty", names=("warranty", "guarantee", "warranty period"), phrases=("guaranteed",)),
    )),
    CoreField("rating", DETAILS, (
        Concept("rating", names=("rating", "ratings", "average rating", "review score", "stars", "score"),
                phrases=("rated", "well reviewed", "reviews", "reviewed", "how good is")),
    )),
    CoreField("description", DETAILS, (
        Concept("description", names=("description", "summary", "synopsis", "blurb", "plot"),
                phrases=("what is it about", "what's it about", "what it's about")),
    )),
    CoreField("status", DETAILS, (
        Concept("status", names=("discontinued",), phrases=("still sell", "still make", "still sold",
                                                            "no longer sold", "still carry")),
    )),
    CoreField("sku", DETAILS, (
        Concept("product number", names=("sku", "product number", "item number", "article number", "product code",
                                         "item code", "part number")),
    )),
)

# Common properties of products of many kinds (a general lexicon, not any one shop's columns):
# when a shop has a key with one of these names, the phrasings find it; when it has none, the
# question is recognised and answered with "I don't have that information".
CONCEPTS: tuple[Concept, ...] = (
    Concept("author", names=("author", "authors", "writer", "written by"),
            phrases=("who wrote", "who writes", "who is the author", "wrote"),
            patterns=(r"\bwho(?:'s| is| was)\b.*\bby\b",)),
    Concept("illustrator", names=("illustrator", "illustrations", "illustrated by", "illustration", "artwork",
                                  "drawings"),
            phrases=("who illustrated", "who drew", "illustrated")),
    Concept("translator", names=("translator", "translated by", "translation"), phrases=("who translated",)),
    Concept("narrator", names=("narrator", "narrated by"), phrases=("who reads", "who narrates")),
    Concept("pages", names=("pages", "page count", "number of pages"), phrases=("how many pages",)),
    Concept("language", names=("language", "languages"), phrases=("written in", "what language", "which language")),
    Concept("isbn", names=("isbn", "isbn number", "isbn 13", "isbn13", "isbn 10")),
    Concept("publication year", names=("publication year", "year of publication", "year published",
                                       "release year", "year", "publication date", "release date"),
            phrases=("when was it published", "first published", "came out", "come out", "was published",
                     "published in", "when was it released", "released", "how old is")),
    Concept("format", names=("format", "binding", "cover type"), phrases=("what format",)),
    Concept("pack size", names=("pack size", "pack", "package size", "units per pack", "pieces", "count",
                                "quantity per pack", "packaging", "pack contents"),
            phrases=("how many in a pack", "how many are in", "how many come in", "in a pack", "per pack",
                     "how is it packed", "how is it packaged", "packed", "in one unit", "in a box", "in each pack")),
    Concept("origin", names=("origin", "country of origin", "made in", "country of manufacture", "provenance"),
            phrases=("where is it made", "where was it made", "where does it come from", "comes from", "come from",
                     "produced in", "manufactured in", "which country", "what country", "printed in", "grown in",
                     "made where")),
    Concept("weight", names=("weight", "net weight", "paper weight", "gsm"), phrases=("weigh", "weighs", "how heavy")),
    Concept("dimensions", names=("dimensions", "measurements", "width", "height", "depth", "length"),
            phrases=("how big", "how large", "how tall", "how wide", "measure")),
    Concept("size", names=("size", "sizes")),
    Concept("colour", names=("colour", "color", "colours", "colors", "colourway", "shade")),
    Concept("material", names=("material", "materials", "fabric"), phrases=("made of", "made from")),
    Concept("battery life", names=("battery life", "battery", "runtime", "battery capacity"),
            phrases=("battery last", "how long does the battery", "on a charge", "on one charge")),
    Concept("capacity", names=("capacity", "volume", "storage"), phrases=("how much storage", "how much does it hold")),
    Concept("voltage", names=("voltage", "volts", "volt")),
    Concept("power", names=("power", "wattage", "watts", "power consumption")),
    Concept("ingredients", names=("ingredients", "ingredient list")),
    Concept("allergens", names=("allergens", "allergen", "allergy information")),
    Concept("nutrition", names=("calories", "nutrition", "nutritional information", "kcal")),
    Concept("shelf life", names=("shelf life", "best before", "expiry", "expiry date", "expiration date"),
            phrases=("how long does it keep", "how long will it keep")),
    Concept("age range", names=("age range", "age", "recommended age", "ages"), phrases=("suitable for ages",)),
    Concept("series", names=("series",), phrases=("part of a series", "which series")),
    Concept("model", names=("model number", "model", "model line")),
    Concept("compatibility", names=("compatible with", "compatibility"), phrases=("works with",)),
    Concept("care", names=("care instructions", "washing instructions"), phrases=("how do i wash", "how to wash")),
    Concept("waterproof", names=("waterproof", "water resistant", "water resistance")),
    Concept("screen size", names=("screen size", "display size")),
    Concept("resolution", names=("resolution",)),
    Concept("finish", names=("finish",)),
    Concept("ruling", names=("ruling",)),
)

# Words that take a field's name ("what is the voltage"), never a field themselves.
_STOP = frozenset("""a an the this that these those it its it's is are was were be been of for with and or in on at
    by from to do does did you your we our i me my what what's whats which who who's whom how where when
    can could would will please tell know about one any some there here have has had get""".split())
# Attribute keys that name a variant or an internal value rather than something shoppers ask for.
_HIDDEN_KEYS = frozenset({"model_line"})
_UNIT_SUFFIXES = ("_hours", "_mah", "_mp", "_mm", "_cm", "_kg", "_g", "_in", "_w", "_k", "_l", "_m", "_days",
                  "_months", "_years", "_ml", "_gb", "_tb", "_v", "_hz")
_YES_NO = re.compile(r"^(?:is|are|was|were|does|do|did|has|have|can|will|would|could)\b")

NAME_W, PHRASE_W, VALUE_W, PART_W, WEAK_W = 4.0, 3.0, 4.0, 1.5, 1.0


# -- what a detection returns -----------------------------------------------------------------
@dataclass(frozen=True)
class FieldAsk:
    """The field a message asks about.

    key: "brand", "category", "supplier", "price", "stock", "warranty", "rating", "description",
    "status", "sku", an attribute key of the shop, or (kind "unknown") a property the shop does
    not record. label: how the reply names it ("publisher" when the shopper said publisher).
    intent: the intent that answers it. value: a value the shopper asked about ("English").
    contact: the supplier's phone was asked for too."""

    key: str
    label: str
    kind: FieldKind
    intent: str
    score: float
    source: Source
    value: str | None = None
    contact: bool = False
    yes_no: bool = False  # "is it in English?" (a value asked about, not "paperback or hardcover?")
    # other attribute keys the same words ask for ("battery_mah" and "battery_life_hours" for "the
    # battery"): a product without `key` is answered from the first of these it has
    alternates: tuple[str, ...] = ()
    rests: tuple[str, ...] = ()  # the message's other content words: where an untagged product name is

    @property
    def strong(self) -> bool:
        """Named outright (a field name or a value), not only by a phrasing or by similarity."""
        return self.source in ("name", "value")


# -- text --------------------------------------------------------------------------------------
def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


def _stem(word: str) -> str:
    w = word.replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("ches", "shes", "sses", "xes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def tokens(text: str) -> list[str]:
    """Lower-cased, accent-folded words (apostrophes kept inside words)."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", _fold(text.lower().replace("’", "'")))


def _stems(text: str) -> tuple[str, ...]:
    return tuple(_stem(t) for t in tokens(text))


def humanise(key: str) -> str:
    """An attribute key as words: "battery_life_hours" -> "battery life", "packSize" -> "pack size"."""
    k = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key.strip()).lower()
    for suffix in _UNIT_SUFFIXES:
        if k.endswith(suffix) and len(k) > len(suffix):
            k = k[: -len(suffix)]
            break
    return " ".join(re.split(r"[_\-\s.]+", k)).strip()


def blank_mentions(text: str, entities: Iterable[Entity], keep_values: AbstractSet[str] = frozenset()) -> str:
    """The message with its product (and other name) mentions blanked out, so the words left ask
    the question. ATTRIBUTE mentions stay when they are values the shop knows (`keep_values`, in
    lower case: the field catalog's `value_texts`, built once per catalog, never per message)."""
    spans = []
    for e in entities:
        if e.start is None or e.end is None or e.source != "message":
            continue
        if e.type == "ATTRIBUTE" and (e.text.lower() in keep_values or (e.node_id or "").lower() in keep_values):
            continue
        if e.type in ("PRODUCT", "BRAND", "CATEGORY", "ATTRIBUTE"):
            spans.append((e.start, e.end))
    out = text
    for start, end in sorted(spans, reverse=True):
        out = out[:start] + " _ " + out[end:]
    return out


# -- the catalogue of fields ----------------------------------------------------------------------
@dataclass(frozen=True)
class _Term:
    stems: tuple[str, ...]
    weight: float
    label: str  # the concept the term names (the reply's word for the field)


@dataclass
class FieldEntry:
    key: str
    kind: FieldKind
    intent: str
    label: str
    terms: list[_Term] = field(default_factory=list)
    patterns: list[tuple[re.Pattern[str], str]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # what the encoder compares the message with
    concept: str | None = None  # the lexicon concept an attribute key was joined to


@dataclass
class FieldCatalog:
    """The fields of one shop (schema + its attribute keys + common properties it lacks), and the
    values its attribute keys hold."""

    entries: list[FieldEntry]
    values: dict[tuple[str, ...], set[str]]  # value (as stems) -> attribute keys holding it
    keys: dict[str, int]  # attribute key -> how many products have it
    version: Any = None
    vectors: Any = None  # (n_texts, dim) unit rows, built on first use
    owners: list[int] = field(default_factory=list)  # entry index of each vector row
    vocab: list[str] = field(default_factory=list)  # every word of every field's terms (typo repair)
    lexicon: frozenset[str] = frozenset()
    currencies: dict[str, int] = field(default_factory=dict)  # products priced in each currency
    # indexes for matching: terms by their first word, the entries' patterns, the values as text
    first_words: dict[str, list[tuple[int, _Term]]] = field(default_factory=dict)
    patterns: list[tuple[int, re.Pattern[str], str]] = field(default_factory=list)
    value_texts: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for ei, e in enumerate(self.entries):
            for t in e.terms:
                if t.stems and not (len(t.stems) == 1 and t.stems[0] in _STOP):
                    self.first_words.setdefault(t.stems[0], []).append((ei, t))
            self.patterns += [(ei, rx, lbl) for rx, lbl in e.patterns]
        self.value_texts = frozenset(" ".join(v) for v in self.values)

    def entry(self, key: str) -> FieldEntry | None:
        return next((e for e in self.entries if e.key == key), None)


def _add_concept(entry: FieldEntry, c: Concept) -> None:
    for n in c.names:
        entry.terms.append(_Term(_stems(n), NAME_W + 0.25 * (len(tokens(n)) - 1), c.label))
        entry.texts.append(n)
    for p in c.phrases:
        entry.terms.append(_Term(_stems(p), PHRASE_W + 0.25 * (len(tokens(p)) - 1), c.label))
        entry.texts.append(p)
    for p in c.weak:
        entry.terms.append(_Term(_stems(p), WEAK_W, c.label))
    for rx in c.patterns:
        entry.patterns.append((re.compile(rx), c.label))


def build_catalog(attribute_keys: dict[str, int], values: dict[tuple[str, ...], set[str]],
                  *, similar: Callable[[list[str], list[str]], Any] | None = None, version: Any = None
                  ) -> FieldCatalog:
    """The fields of a shop with these attribute keys (key -> product count) and values.
    `similar(a, b)` (optional) gives cosine similarities of two lists of names: a key whose
    name is close to a lexicon concept's name takes that concept's phrasings."""
    entries: list[FieldEntry] = []
    for cf in CORE_FIELDS:
        e = FieldEntry(cf.key, cf.kind, cf.intent, cf.concepts[0].label)
        for c in cf.concepts:
            _add_concept(e, c)
        entries.append(e)
    core_labels = {c.label for cf in CORE_FIELDS for c in cf.concepts}

    concept_names = {c.label: {_stems(n) for n in (c.label, *c.names)} for c in CONCEPTS}
    by_label = {c.label: c for c in CONCEPTS}
    keys = [k for k in sorted(attribute_keys, key=lambda k: (-attribute_keys[k], k)) if k not in _HIDDEN_KEYS]
    labels = {k: humanise(k) for k in keys}
    matched: dict[str, str] = {}
    for k in keys:
        st = _stems(labels[k])
        hit = next((lbl for lbl, names in concept_names.items() if st in names), None)
        if hit is not None:
            matched[k] = hit
    unmatched = [k for k in keys if k not in matched]
    if similar is not None and unmatched:
        cands = [c.label for c in CONCEPTS]
        sims = similar([labels[k] for k in unmatched], [" / ".join((c.label, *c.names[:3])) for c in CONCEPTS])
        for i, k in enumerate(unmatched):
            j = int(sims[i].argmax())
            if float(sims[i][j]) >= 0.72 and cands[j] not in matched.values():
                matched[k] = cands[j]
    for k in keys:
        e = FieldEntry(k, "attribute", DETAILS, labels[k])
        e.terms.append(_Term(_stems(labels[k]), NAME_W + 0.25 * (len(tokens(labels[k])) - 1), labels[k]))
        if k.lower() != labels[k]:
            e.terms.append(_Term(_stems(k), NAME_W, labels[k]))
        e.texts.append(labels[k])
        words = [t for t in _stems(labels[k]) if t not in _STOP and len(t) >= 3]
        if len(words) > 1:
            for w in words:
                e.terms.append(_Term((w,), PART_W, labels[k]))
        if k in matched:
            e.concept = matched[k]
            _add_concept(e, by_label[matched[k]])
            # the shop's own word names it in replies ("pack size"), the concept's phrasings find it
            e.terms = [_Term(t.stems, t.weight, labels[k]) for t in e.terms]
            e.patterns = [(rx, labels[k]) for rx, _ in e.patterns]
        entries.append(e)
    for c in CONCEPTS:
        if c.label in matched.values() or c.label in core_labels:
            continue
        e = FieldEntry(c.label, "unknown", DETAILS, c.label)
        _add_concept(e, c)
        entries.append(e)
    lexicon = {w for e in entries for t in e.terms for w in t.stems if w not in _STOP}
    return FieldCatalog(entries, values, dict(attribute_keys), version,
                        vocab=sorted(w for w in lexicon if len(w) >= 5), lexicon=frozenset(lexicon))


# Keys whose values name one product or model line ("Aurora X2"), not a property products share: not
# values a question asks about ("is it in English?"), and as many as the catalog has lines (a million
# products: one a model line, 750 MB a worker against 576 without them, bench/bench_catalog_scale.py).
_NAMING_KEYS = frozenset({"model_line", "model", "model_name", "sku", "name"})


def scan_attributes(rows: Iterable[dict[str, Any]], keys: dict[str, int], values: dict[tuple[str, ...], set[str]]
                    ) -> None:
    """Adds one page of products' attribute objects to the key counts and the value index (values of
    keys that name products left out)."""
    for r in rows:
        raw = r.get("attributes")
        try:
            data = json.loads(raw) if isinstance(raw, str) and raw else (raw if isinstance(raw, dict) else {})
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        for k, v in data.items():
            if not isinstance(k, str) or v in (None, ""):
                continue
            keys[k] = keys.get(k, 0) + 1
            if isinstance(v, str) and k.lower() not in _NAMING_KEYS and not re.fullmatch(r"[\d\s.,\-/]+", v) \
                    and len(v) <= 60:
                st = _stems(v)
                if st and len(st) <= 5:
                    values.setdefault(st, set()).add(k)


# -- detection --------------------------------------------------------------------------------
def _find(seq: Sequence[str], sub: Sequence[str]) -> list[int]:
    n, m = len(seq), len(sub)
    if not m or m > n:
        return []
    return [i for i in range(n - m + 1) if tuple(seq[i:i + m]) == tuple(sub)]


@dataclass
class _Hit:
    entry: FieldEntry
    score: float = 0.0
    label: str = ""
    best_term: float = 0.0
    source: Source = "phrase"
    value: str | None = None
    used: set[str] = field(default_factory=set)  # the words (stems) that asked for it


def match_lexical(catalog: FieldCatalog, text: str) -> list[_Hit]:
    """Fields named or asked for by the words of `text` (mentions already blanked), best first."""
    st = _stems(text)
    joined = " ".join(tokens(text))
    found: dict[int, list[_Term]] = {}  # entry -> its terms in the text (indexed by first word: no full scan)
    for i, word in enumerate(st):
        for ei, t in catalog.first_words.get(word, ()):
            if tuple(st[i:i + len(t.stems)]) == t.stems:
                found.setdefault(ei, []).append(t)
    hits: list[_Hit] = []
    for ei in sorted(set(found) | {ei for ei, _, _ in catalog.patterns}):
        e = catalog.entries[ei]
        used: set[int] = set()
        h = _Hit(e)
        for t in sorted(dict.fromkeys(found.get(ei, ())), key=lambda t: (-t.weight, -len(t.stems))):
            i = next(i for i in _find(st, t.stems))
            span = set(range(i, i + len(t.stems)))
            # words already counted for this field add little ("which language" after "language")
            h.score += t.weight * (0.25 if span & used else 1.0)
            used |= span
            h.used |= set(t.stems)
            if t.weight > h.best_term:
                h.best_term, h.label = t.weight, t.label
                h.source = "name" if t.weight >= NAME_W else "phrase" if t.weight >= PHRASE_W else "part"
        for pei, rx, lbl in catalog.patterns:
            m = rx.search(joined) if pei == ei else None
            if m:
                ends = m.group(0).split()
                h.used |= {_stem(ends[0]), _stem(ends[-1])}
                h.score += PHRASE_W
                if PHRASE_W > h.best_term:
                    h.best_term, h.label, h.source = PHRASE_W, lbl, "phrase"
        if h.score > 0:
            hits.append(h)
    # one word of a longer field name alone ("life" of "shelf life") is no question about it
    hits = [h for h in hits if not (h.best_term == PART_W and h.score < 2 * PART_W)]
    # a weak phrasing ("how much") only counts when nothing else is asked for
    strong = [h for h in hits if h.best_term > WEAK_W]
    if strong:
        hits = strong
    hits.sort(key=lambda h: (-h.score, -h.best_term))
    return hits


def match_values(catalog: FieldCatalog, text: str) -> _Hit | None:
    """A yes/no or either/or question naming a value the shop holds under one attribute key
    ("is it in English?", "paperback or hardcover?")."""
    words = tokens(text)
    if not words or not (_YES_NO.match(" ".join(words)) or "or" in words):
        return None
    st = [_stem(w) for w in words]
    found: dict[str, list[tuple[str, set[str]]]] = {}
    for n in range(min(5, len(st)), 0, -1):
        for i in range(len(st) - n + 1):
            gram = tuple(st[i:i + n])
            if len(gram) == 1 and (gram[0] in _STOP or len(gram[0]) < 3):
                continue
            for k in catalog.values.get(gram, ()):
                found.setdefault(k, []).append((" ".join(words[i:i + n]), set(gram)))
    if not found:
        return None
    key = max(found, key=lambda k: (len(found[k]), catalog.keys.get(k, 0)))
    e = catalog.entry(key)
    if e is None:
        return None
    used = set().union(*(span for _, span in found[key]))
    return _Hit(e, VALUE_W * len(found[key]), e.label, VALUE_W, "value", found[key][0][0], used)


_CONTACT = re.compile(r"\b(phone|telephone|phone number|contact|call|reach|number|email|e-mail)\b")


class FieldResolver:
    """The shop's fields (cached per catalog version) and `detect`. The encoder (a
    SentenceTransformer-like object with `encode`) loads on first use through `encoder_factory`;
    without one, detection is lexical only."""

    def __init__(self, store: GraphStore | None, encoder_factory: Callable[[], Any] | None = None, *,
                 refresh_interval_s: float = 5.0, page_size: int = 5000, embedding_threshold: float = 0.55,
                 embedding_margin: float = 0.04) -> None:
        self.store = store
        self.encoder_factory = encoder_factory
        self.refresh_interval_s = refresh_interval_s
        self.page_size = page_size
        self.embedding_threshold = embedding_threshold
        self.embedding_margin = embedding_margin
        self._catalog: FieldCatalog | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._encoder: Any = None

    # -- the catalogue ------------------------------------------------------------------------
    def _encode(self, texts: list[str]) -> Any:
        if self._encoder is None and self.encoder_factory is not None:
            self._encoder = self.encoder_factory()
        if self._encoder is None:
            return None
        return self._encoder.encode(texts, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True)

    def _similar(self, a: list[str], b: list[str]) -> Any:
        va, vb = self._encode(a), self._encode(b)
        if va is None or vb is None:
            return None
        return va @ vb.T

    def catalog(self) -> FieldCatalog:
        now = time.monotonic()
        with self._lock:
            if self._catalog is not None and now - self._checked < self.refresh_interval_s:
                return self._catalog
            stamp = self._stamp()
            self._checked = now
            if self._catalog is not None and self._catalog.version == stamp:
                return self._catalog
            self._catalog = self._build(stamp)
            return self._catalog

    def _stamp(self) -> Any:
        if self.store is None:
            return None
        rows = self.store.run(get("products.catalog_stamp"), {})
        return (rows[0].get("version"), rows[0].get("products")) if rows else (None, 0)

    def _scan(self, stamp: Any) -> tuple[dict[str, int], dict[tuple[str, ...], set[str]]]:
        """The shop's attribute keys (how many products have each) and values (which keys hold each):
        kept in the graph per catalog stamp, so one process scans every product's attributes after a
        change (24 s at a million products) and every other worker reads what it found."""
        keys: dict[str, int] = {}
        values: dict[tuple[str, ...], set[str]] = {}
        if self.store is None:
            return keys, values
        text = json.dumps(stamp, default=str)
        rows = self.store.run(get("products.field_summary"), {})
        row = rows[0] if rows else {}
        if row.get("stamp") == text and row.get("keys") is not None:
            try:
                keys = {str(k): int(n) for k, n in json.loads(row["keys"]).items()}
                values = {tuple(st): set(ks) for st, ks in json.loads(row["values"])}
                return keys, values
            except (ValueError, TypeError, AttributeError):
                log.warning("field summary unreadable: scanning the catalog again")
                keys, values = {}, {}
        for page in scan(self.store, get("products.attribute_page"), limit=self.page_size):
            scan_attributes(page, keys, values)
        try:
            self.store.run(get("products.save_field_summary"), {
                "stamp": text, "keys": json.dumps(keys, ensure_ascii=False),
                "values": json.dumps([[list(st), sorted(ks)] for st, ks in values.items()], ensure_ascii=False)})
        except GraphError:  # a store that refuses writes: each worker scans for itself, as before
            log.warning("field summary not kept", exc_info=True)
        return keys, values

    def _build(self, stamp: Any) -> FieldCatalog:
        keys, values = self._scan(stamp)
        similar = self._similar if self.encoder_factory is not None else None
        try:
            cat = build_catalog(keys, values, similar=similar, version=stamp)
        except Exception:  # noqa: BLE001 - the encoder failing must not stop questions being answered
            log.warning("field catalogue: embedding keys failed; names only", exc_info=True)
            cat = build_catalog(keys, values, version=stamp)
        if self.store is not None:
            cat.currencies = {str(r["currency"]): int(r["products"])
                              for r in self.store.run(get("products.currencies"), {}) if r.get("currency")}
        if similar is not None:  # the texts' vectors now, with the catalogue, not in a shopper's turn
            try:
                self._vectors(cat)
            except Exception:  # noqa: BLE001 - computed again on first use; lexical matches meanwhile
                log.warning("field catalogue: embedding field texts failed", exc_info=True)
        return cat

    def shop_currency(self, default: str) -> str:
        """The currency of amounts that carry none (a policy's fee, a shipping cost): the one every
        product is priced in when there is exactly one, else the configured store currency."""
        found = self.catalog().currencies
        return next(iter(found)) if len(found) == 1 else default

    def _vectors(self, cat: FieldCatalog) -> Any:
        if cat.vectors is None:
            texts, owners = [], []
            for i, e in enumerate(cat.entries):
                for t in dict.fromkeys(e.texts):
                    texts.append(t)
                    owners.append(i)
            vecs = self._encode(texts)
            if vecs is None:
                return None
            cat.vectors, cat.owners = vecs, owners
        return cat.vectors

    # -- detection ------------------------------------------------------------------------------
    def detect(self, text: str, entities: Sequence[Entity] = (), *, embeddings: bool = True) -> FieldAsk | None:
        """The field `text` asks about, or None (a generic "tell me about it", or no field)."""
        cat = self.catalog()
        text = _repair(cat, text)
        blanked = blank_mentions(text, entities, keep_values=cat.value_texts)
        contact = bool(_CONTACT.search(blanked.lower()))
        hits = match_lexical(cat, blanked)
        value = match_values(cat, blanked)
        best: _Hit | None = None
        if hits:
            best = hits[0]
            if value is not None and value.entry is best.entry:
                best.value, best.used = value.value, best.used | value.used
            elif value is not None and value.score > best.score:
                best = value
        elif value is not None:
            best = value
        if best is not None:
            either = best.value is not None and "or" in tokens(blanked)
            every = set().union(*(h.used for h in hits)) | best.used
            alternates = tuple(h.entry.key for h in hits if h is not best and h.entry.kind == "attribute"
                               and best.entry.kind == "attribute" and best.entry.concept is not None
                               and h.entry.concept == best.entry.concept and h.score >= 0.6 * best.score)
            return self._ask(best, contact, yes_no=best.value is not None and not either,
                             rests=tuple(dict.fromkeys(r for r in (_rest(text, best.used), _rest(text, every)) if r)),
                             alternates=alternates)
        if not embeddings:
            return None
        return self._by_embedding(cat, blanked, contact)

    def mention_words(self, text: str) -> str:
        """The words of a follow-up that may name a product ("and for the brass owl bookmark?" ->
        "brass owl bookmark"): no function words, no field words."""
        cat = self.catalog()
        return " ".join(w for w in tokens(text) if w not in _STOP and w not in _QUESTION_WORDS
                        and w not in _FOLLOW_UP and _stem(w) not in cat.lexicon)

    def _by_embedding(self, cat: FieldCatalog, blanked: str, contact: bool) -> FieldAsk | None:
        words = [w for w in tokens(blanked) if w not in _STOP and w != "_"]
        if not words:
            return None
        try:
            vecs = self._vectors(cat)
            q = self._encode([blanked.replace(" _ ", " it ")])
        except Exception:  # noqa: BLE001 - no encoder: lexical matches only
            log.warning("field detection: encoder unavailable", exc_info=True)
            return None
        if vecs is None or q is None:
            return None
        sims = vecs @ q[0]
        best: dict[int, float] = {}
        for row, owner in enumerate(cat.owners):
            s = float(sims[row])
            if s > best.get(owner, -1.0):
                best[owner] = s
        ranked = sorted(best.items(), key=lambda kv: -kv[1])
        if not ranked:
            return None
        top, score = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        if score < self.embedding_threshold or score - second < self.embedding_margin:
            return None
        e = cat.entries[top]
        return self._ask(_Hit(e, score * NAME_W, e.label, 0.0, "embedding"), contact)

    @staticmethod
    def _ask(h: _Hit, contact: bool, *, yes_no: bool = False, rests: tuple[str, ...] = (),
             alternates: tuple[str, ...] = ()) -> FieldAsk:
        e = h.entry
        return FieldAsk(key=e.key, label=h.label or e.label, kind=e.kind, intent=e.intent, score=round(h.score, 3),
                        source=h.source, value=h.value, contact=contact and e.kind == "supplier", yes_no=yes_no,
                        rests=rests, alternates=alternates)


# Words of a field question that are not a product's name.
_QUESTION_WORDS = frozenset("""book books product item edition copy copies version one your you got have has need
    want know tell find show give looking like yes no again forgot please thanks now yet still currently right
    today moment quick hi hello hey thx""".split())


_FOLLOW_UP = frozenset("same question also what how going back then ok okay so".split())


def _repair(cat: FieldCatalog, text: str) -> str:
    """Misspelt field words put right ("pubisher" -> "publisher"): a word that is no field's, close
    to one that is (edit similarity of 85% or more, five letters or longer)."""
    out = text
    for word in set(tokens(text)):
        if len(word) < 5 or word in _STOP or _stem(word) in cat.lexicon:
            continue
        found = process.extractOne(_stem(word), cat.vocab, scorer=fuzz.ratio, score_cutoff=85)
        if found is not None:
            out = re.sub(rf"(?<![\w']){re.escape(word)}(?![\w'])", found[0], out, flags=re.IGNORECASE)
    return out


def _rest(text: str, used: set[str]) -> str:
    """The words of `text` that neither ask the question nor are function words: the product's
    name when the model did not tag it ("who's alchemist by?" -> "alchemist")."""
    return " ".join(w for w in tokens(text) if _stem(w) not in used and w not in _STOP and w not in _QUESTION_WORDS)
