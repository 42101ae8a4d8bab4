"""The names the understanding model learns from: products, brands, categories, attribute values
and order ids, read from the graph or from a directory of import files (DESIGN section 3).

A deterministic split by a stable hash holds out about a fifth of the products (and of the brands
and categories where there are enough of them) for evaluation only, so the reported entity
figures are on names the model never saw in training.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from common.errors import NLUError
from nlu import attributes

EVAL_FRACTION = 0.2
_PAGE = 5000
_MAX_ORDER_IDS = 5000


@dataclass(frozen=True)
class ProductName:
    sku: str
    name: str
    brand: str | None = None
    category: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()  # (key, value) pairs, values as text

    @property
    def variant_values(self) -> tuple[str, ...]:
        """The attribute values a shopper would type ("Black", "128 GB", "US 9"), not numbers,
        flags, long phrases or the names of other products (`compatible_with`)."""
        return tuple(v for k, v in self.attributes if is_attribute_value(k, v))

    @property
    def model_line(self) -> str | None:
        for k, v in self.attributes:
            if k.lower() in _MODEL_KEYS and v.strip():
                return v.strip()
        return None


@dataclass(frozen=True)
class Catalog:
    products: tuple[ProductName, ...] = ()
    brands: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    attribute_values: tuple[str, ...] = ()
    order_ids: tuple[str, ...] = ()
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.products:
            raise NLUError(f"catalog from {self.source or 'nowhere'} has no products to learn names from")

    def summary(self) -> dict[str, int]:
        return {
            "products": len(self.products),
            "brands": len(self.brands),
            "categories": len(self.categories),
            "attribute_values": len(self.attribute_values),
            "order_ids": len(self.order_ids),
        }

    def split(self, eval_fraction: float = EVAL_FRACTION) -> tuple[Catalog, Catalog]:
        """(train, eval): a stable, content-keyed split; the same catalog always splits the same way.

        Products split by sku. Brands and categories split by name when there are at least ten of
        them (fewer would leave one side nearly empty); otherwise both sides share them. Attribute
        values (colours, sizes, capacities) are a small, closed vocabulary that a shop's new
        products reuse, so both sides share them. Order ids split by id; their format is what the
        model learns, not the values.
        """
        prod_eval = tuple(p for p in self.products if _held_out(p.sku, eval_fraction))
        prod_train = tuple(p for p in self.products if not _held_out(p.sku, eval_fraction))
        if not prod_eval or not prod_train:  # tiny catalogs: keep both sides usable
            prod_train = prod_eval = self.products

        def names(values: tuple[str, ...], min_count: int = 10) -> tuple[tuple[str, ...], tuple[str, ...]]:
            if len(values) < min_count:
                return values, values
            ev = tuple(v for v in values if _held_out(v.lower(), eval_fraction))
            tr = tuple(v for v in values if not _held_out(v.lower(), eval_fraction))
            return (tr, ev) if tr and ev else (values, values)

        b_tr, b_ev = names(self.brands)
        c_tr, c_ev = names(self.categories)
        a_tr = a_ev = self.attribute_values
        o_tr, o_ev = names(self.order_ids)
        train = replace(self, products=prod_train, brands=b_tr, categories=c_tr, attribute_values=a_tr,
                        order_ids=o_tr)
        held = replace(self, products=prod_eval, brands=b_ev, categories=c_ev, attribute_values=a_ev,
                       order_ids=o_ev)
        return train, held


# Attribute keys whose values name a model or another product rather than a variant of this one.
_MODEL_KEYS = {"model_line", "model", "model_name", "line", "series"}
_NOT_VARIANT_KEYS = _MODEL_KEYS | {"compatible_with", "compatibility", "name", "sku", "description", "title", "fits"}


def is_attribute_value(key: str, value: str) -> bool:
    v = value.strip()
    return (
        key.strip().lower() not in _NOT_VARIANT_KEYS
        and any(ch.isalpha() for ch in v)
        and v.lower() not in {"true", "false", "yes", "no", "none", "null", "n/a"}
        and len(v) <= 25
        and len(v.split()) <= 3
    )


def _held_out(key: str, fraction: float) -> bool:
    h = int.from_bytes(hashlib.sha1(f"nlu-split:{key}".encode()).digest()[:8], "big")
    return (h % 10_000) < int(fraction * 10_000)


def parse_attributes(raw: Any) -> tuple[tuple[str, str], ...]:
    """Attributes sorted by key (a file and the graph's JSON order keys differently), values up to
    40 characters (longer ones are descriptions, not something a shopper types as a slot)."""
    return tuple(sorted(attributes.parse_attributes(raw, max_value_chars=40)))


def _build(products: Iterable[ProductName], brands: Iterable[str], categories: Iterable[str],
           order_ids: Iterable[str], source: str) -> Catalog:
    prods = tuple(sorted({p.sku: p for p in products if p.sku and p.name}.values(), key=lambda p: p.sku))
    brand_set = {b.strip() for b in brands if b and b.strip()} | {p.brand for p in prods if p.brand}
    cat_set = {c.strip() for c in categories if c and c.strip()} | {p.category for p in prods if p.category}
    attr_set: dict[str, str] = {}
    for p in prods:
        for v in p.variant_values:
            attr_set.setdefault(v.lower(), v)
    return Catalog(
        products=prods,
        brands=tuple(sorted(brand_set)),
        categories=tuple(sorted(cat_set)),
        attribute_values=tuple(sorted(attr_set.values(), key=str.lower)),
        order_ids=tuple(sorted({str(o).strip() for o in order_ids if str(o).strip()})),
        source=source,
    )


def catalog_from_store(store: Any) -> Catalog:
    """Read the names from the graph through the named `nlu.*` read queries."""
    from kg.queries import nlu as queries

    products: list[ProductName] = []
    after = ""
    while True:
        rows = store.run(queries.PRODUCT_NAMES, {"after": after, "limit": _PAGE})
        for r in rows:
            products.append(ProductName(
                sku=str(r["sku"]), name=str(r["name"] or ""), brand=r.get("brand"), category=r.get("category"),
                attributes=parse_attributes(r.get("attributes")),
            ))
        if len(rows) < _PAGE:
            break
        after = str(rows[-1]["sku"])
    brands = [r["name"] for r in store.run(queries.BRAND_NAMES)]
    categories = [r["name"] for r in store.run(queries.CATEGORY_NAMES)]
    orders = [r["order_id"] for r in store.run(queries.ORDER_IDS, {"limit": _MAX_ORDER_IDS})]
    return _build(products, brands, categories, orders, source=f"graph:{getattr(store, 'backend', '?')}")


def _read_table(directory: Path, name: str) -> list[dict[str, str]]:
    """Rows of `name.csv` or `name.jsonl` with lower-cased, stripped header names; [] if absent."""
    csv_path, jsonl_path = directory / f"{name}.csv", directory / f"{name}.jsonl"
    if csv_path.exists():
        with csv_path.open(encoding="utf-8-sig", newline="") as fh:
            return [{(k or "").strip().lower(): (v or "") for k, v in row.items()} for row in csv.DictReader(fh)]
    if jsonl_path.exists():
        rows = []
        with jsonl_path.open(encoding="utf-8-sig") as fh:
            for line in fh:
                if line.strip():
                    obj = json.loads(line)
                    rows.append({str(k).strip().lower(): v for k, v in obj.items()})
        return rows
    return []


def catalog_from_dir(path: str | Path) -> Catalog:
    """Read the names from a directory of import files (the sample store, or a shop's export)."""
    directory = Path(path)
    if not directory.is_dir():
        raise NLUError(f"catalog directory {directory} does not exist")
    products = [
        ProductName(
            sku=str(r.get("sku", "")).strip(), name=str(r.get("name", "")).strip(),
            brand=(str(r.get("brand") or "").strip() or None), category=(str(r.get("category") or "").strip() or None),
            attributes=parse_attributes(r.get("attributes")),
        )
        for r in _read_table(directory, "products")
    ]
    brands = [str(r.get("name", "")) for r in _read_table(directory, "brands")]
    categories = [str(r.get("name", "")) for r in _read_table(directory, "categories")]
    orders = [str(r.get("order_id", "")) for r in _read_table(directory, "orders")][:_MAX_ORDER_IDS]
    return _build(products, brands, categories, orders, source=str(directory))
