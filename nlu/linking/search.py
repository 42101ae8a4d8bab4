"""The linker's graph stage: products found by the words of a mention, for a name the linker's own
index did not settle (a partial name the model cut short, "the hobbit" among two editions, a
product named by one of its values: "the kahneman book"). It asks the graph with the named
queries `products.search_by_name` and `products.search_by_value`, so it needs no state of its own;
the dialogue reaches it through its handlers' context (qa/handlers/base.py `Context.names`)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from common.text import FILLER, covers, has_phrase, named_exactly
from common.text import words as name_words
from kg.queries import get
from kg.store import GraphStore

Row = dict[str, Any]
_ARTICLES = ("the", "a", "an")


def product_attributes(row: Row) -> dict[str, Any]:
    """A product row's attributes (stored as a JSON string) as scalars."""
    raw = row.get("attributes")
    if isinstance(raw, dict):
        data = raw
    else:
        try:
            data = json.loads(raw) if raw else {}
        except (TypeError, ValueError):
            data = {}
    return {k: v for k, v in data.items() if isinstance(v, (str, int, float, bool))} if isinstance(data, dict) else {}


def _tokens(mention: str) -> list[str]:
    return [t for t in re.findall(r"[^\W_][\w\-]*", mention.lower()) if t not in _ARTICLES]


class NameSearch:
    """Products a mention names, found in the graph. `max_values`: at most this many products
    named by a value are returned (more are a group, not one product)."""

    def __init__(self, store: GraphStore, *, max_values: int = 6) -> None:
        self.store = store
        self.max_values = max_values

    def products(self, mention: str, attrs: Sequence[str] = ()) -> list[Row]:
        """Products whose name holds every word of `mention`, narrowed by exact name, model line,
        device-not-accessory and `attrs` (the message's attribute values); failing any name, the
        products one of whose values holds its words."""
        tokens = _tokens(mention)
        if not tokens:
            return []
        rows = self.store.run(get("products.search_by_name"), {"tokens": tokens, "limit": 40})
        if not rows:
            return self._by_value([t for t in tokens if t not in FILLER])
        wanted = " ".join(tokens)
        exact = [r for r in rows if r["sku"].lower() == wanted or (r.get("name") or "").lower() == wanted]
        if exact:
            return exact
        named = named_exactly(mention, [r.get("name") or "" for r in rows])
        if named:
            return [rows[i] for i in named]
        # whole words before parts of words ("le" names "Le Petit Nicolas", not "Les Misérables")
        rows = [r for r in rows if covers(name_words(mention), name_words(r.get("name") or ""))] or rows
        line = [r for r in rows if wanted in [str(v).lower() for v in (r.get("attr_values") or [])]
                or str(product_attributes(r).get("model_line", "")).lower() == wanted]
        if line:
            rows = line
        if " for " not in f" {wanted} ":
            devices = [r for r in rows if " for " not in (r.get("name") or "").lower()]
            rows = devices or rows
        if attrs:
            narrowed = [r for r in rows if all(has_phrase((r.get("name") or "").lower(), a) or
                                               a in [str(v).lower() for v in (r.get("attr_values") or [])]
                                               for a in attrs)]
            rows = narrowed or rows
        return rows

    def count_named(self, mention: str, limit: int) -> int:
        """How many products (up to `limit`) hold every word of `mention` in their name."""
        tokens = [t for t in re.findall(r"[a-z0-9][a-z0-9\-]*", mention.lower()) if t not in _ARTICLES]
        return len(self.store.run(get("products.search_by_name"), {"tokens": tokens, "limit": limit}))

    def _by_value(self, tokens: list[str]) -> list[Row]:
        """Products a mention names by one of their values rather than their name ("that agatha
        christie one"): every word in one value, else the longest word alone."""
        if not tokens:
            return []
        query = get("products.search_by_value")
        rows = self.store.run(query, {"tokens": tokens, "limit": self.max_values + 1})
        longest = max(tokens, key=len)
        if not rows and len(tokens) > 1 and len(longest) >= 5:
            rows = self.store.run(query, {"tokens": [longest], "limit": self.max_values + 1})
        return rows
