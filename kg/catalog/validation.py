"""Row validation for the import files of DESIGN section 3: from raw values to graph values.

One `FileType` per file name says which columns exist, which are required, how each converts,
which graph property it fills (kg/queries/loader.py `NODES` gives the order) and which columns
name other nodes. `FileType.validate` turns one record into a `Clean` row (key, property values,
references, content hash) or a list of (column, reason) problems: every problem of the row at
once, so a catalog manager fixes a row in one go.

Conversions are strict where a silent guess would put a wrong fact in front of a shopper: a price
that is not a number is an error, never zero; an unknown status is an error, never "active". What
is normalised is normalised once, here: money to two decimals (half up), dates to UTC
"YYYY-MM-DDTHH:MM:SSZ", enums to lower case, currencies to upper case. Reference checks (does the
supplier exist?) need the graph and the rest of the import, so they live in kg/loader.py; this
module only says which references a row makes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import orjson

from kg.catalog.reader import has_nul
from kg.queries.loader import CONTAINS_PROPS, HASH_SPLIT, NODES

# Dependency order of DESIGN section 3: a file may refer to the types before it.
FILE_TYPES = (
    "categories", "brands", "suppliers", "products", "customers", "shipping_methods", "payment_methods",
    "orders", "order_items", "policies", "promotions", "faqs",
)

ORDER_STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled", "returned")
PRODUCT_STATUSES = ("active", "discontinued")
POLICY_TYPES = ("return", "refund", "warranty", "shipping", "payment", "cancellation", "account", "privacy",
                "other")
APPLIES_KINDS = {"category": ("Category", "category"), "brand": ("Brand", "brand"), "sku": ("Product", "sku")}
_SPECIFICITY = ("sku", "brand", "category")  # most specific first

_MAX_MONEY = Decimal("1e12")
_MAX_INT = 10**12
_CENT = Decimal("0.01")
_CURRENCY = re.compile(r"[A-Z]{3}")
_BLANK_JSON_KEY = re.compile(r'"\s*"\s*:')
_KNOWN_CURRENCIES = frozenset({"USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "CNY", "SEK", "NOK", "DKK", "PLN"})
_UTC = dt.UTC


class Bad(Exception):
    """A value that cannot be converted; the message is the reason shown to the user."""


# -- converters (raw text in, graph value out) -----------------------------------------------------
def text(raw: Any) -> str | None:
    """Any scalar as trimmed text; empty means absent. Objects and lists are not text.

    NUL characters never get this far: the reader rejects a record holding one (the graph store
    refuses them), which saves a scan of every field here.
    """
    if type(raw) is str:
        return raw.strip() or None
    if raw is None:
        return None
    if isinstance(raw, (dict, list)):
        raise Bad("must be a single value, not a JSON object or list")
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def money(s: str) -> float:
    # Fast path: plain digits with at most two decimals are already exact to the cent.
    dot = s.find(".")
    if (dot < 0 or len(s) - dot <= 3) and len(s) < 13 and s.replace(".", "", 1).isdigit() and s.isascii():
        return float(s)
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise Bad(f"not a number: {_show(s)}") from None
    if not d.is_finite():
        raise Bad(f"not a number: {_show(s)}")
    if d < 0:
        raise Bad(f"must not be negative: {_show(s)}")
    if d >= _MAX_MONEY:
        raise Bad(f"too large: {_show(s)}")
    return float(d.quantize(_CENT, rounding=ROUND_HALF_UP))


def _int(s: str, minimum: int) -> int:
    try:
        v = int(s)
    except ValueError:
        try:
            f = float(s)
        except ValueError:
            raise Bad(f"not a number: {_show(s)}") from None
        if not math.isfinite(f) or not f.is_integer():
            raise Bad(f"must be a whole number: {_show(s)}") from None
        v = int(f)
    if v < minimum:
        raise Bad(f"must not be negative: {_show(s)}" if minimum == 0 else f"must be at least {minimum}: {_show(s)}")
    if v > _MAX_INT:
        raise Bad(f"too large: {_show(s)}")
    return v


def count(s: str) -> int:
    return _int(s, 0)


def positive(s: str) -> int:
    return _int(s, 1)


def ranged(lo: float, hi: float) -> Callable[[str], float]:
    def conv(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise Bad(f"not a number: {_show(s)}") from None
        if not math.isfinite(v):
            raise Bad(f"not a number: {_show(s)}")
        if not lo <= v <= hi:
            raise Bad(f"must be between {lo:g} and {hi:g}: {_show(s)}")
        return v

    return conv


def enum(name: str, allowed: tuple[str, ...]) -> Callable[[str], str]:
    choices = frozenset(allowed)

    def conv(s: str) -> str:
        v = s.lower()
        if v not in choices:
            raise Bad(f"unknown {name} {_show(s)} (expected one of: {', '.join(allowed)})")
        return v

    return conv


def date(s: str) -> str:
    """ISO 8601 to UTC text; a date alone is midnight UTC, a time without an offset is UTC."""
    try:
        if len(s) == 10 and s[4] == "-":
            d = dt.date.fromisoformat(s)
            return f"{d.isoformat()}T00:00:00Z"
        v = dt.datetime.fromisoformat(s[:-1] + "+00:00" if s[-1:] in "zZ" and len(s) > 1 else s)
    except (ValueError, IndexError):
        raise Bad(f"not an ISO 8601 date: {_show(s)}") from None
    if v.tzinfo is None:
        v = v.replace(tzinfo=_UTC)
    try:
        v = v.astimezone(_UTC)
    except OverflowError:
        raise Bad(f"date out of range: {_show(s)}") from None
    return v.strftime("%Y-%m-%dT%H:%M:%SZ")


def currency(s: str) -> str:
    if s in _KNOWN_CURRENCIES:
        return s
    v = s.upper()
    if not _CURRENCY.fullmatch(v):
        raise Bad(f"not a 3-letter currency code: {_show(s)}")
    return v


def _show(s: Any, n: int = 40) -> str:
    r = repr(s)
    return r if len(r) <= n else r[: n - 4] + "...'"


def check_key(k: Any) -> str:
    if not isinstance(k, str):
        raise Bad(f"bad attributes: key {_show(k)} is not text")
    k = k.strip()
    if not k:
        raise Bad("bad attributes: a key is empty")
    if "`" in k:
        raise Bad(f"bad attributes: key {_show(k)} contains a backtick")
    if "\x00" in k:
        raise Bad("bad attributes: a key contains a NUL character")
    return k


def attributes(raw: Any) -> dict[str, Any]:
    """A JSON object, or `key=value;key=value`; keys must be non-empty and free of backticks
    (FalkorDB's parameter header cannot quote a backtick in a map key)."""
    if type(raw) is str:
        s = raw.strip()
        if not s:
            return {}
        if s[0] == "{":
            try:
                obj = orjson.loads(s)
            except orjson.JSONDecodeError as exc:
                raise Bad(f"bad attributes: invalid JSON ({exc})") from None
            if not isinstance(obj, dict):
                raise Bad("bad attributes: not a JSON object")
            if "\\u0000" in s and has_nul(obj):
                raise Bad("bad attributes: contains a NUL character")
            # The raw text tells cheaply whether any key could be bad; keys are checked one by one
            # only then (a backtick in a value, or an escaped one, also takes the careful path).
            if "`" not in s and "\\u" not in s and not _BLANK_JSON_KEY.search(s):
                return obj
        else:
            obj = {}
            for part in s.split(";"):
                if not part.strip():
                    continue
                k, eq, v = part.partition("=")
                if not eq:
                    raise Bad(f"bad attributes: {_show(part.strip())} is not key=value")
                obj[check_key(k)] = v.strip()
            return obj
    elif isinstance(raw, dict):
        obj = raw
    elif raw is None:
        return {}
    else:
        raise Bad("bad attributes: not a JSON object or key=value;key=value")
    return {check_key(k): v for k, v in obj.items()}


def _attr_text(x: Any) -> str | None:
    t = type(x)
    if t is str:
        return x.strip().lower()
    if t is bool:
        return "true" if x else "false"
    if t is int or t is float:
        return str(x)
    return None


def attr_values(attrs: dict[str, Any]) -> list[str]:
    """Lower-cased attribute values, for "in black"-style filters (kg/schema.py `attr_values`)."""
    seen: dict[str, None] = {}
    for v in attrs.values():
        t = type(v)
        if t is str:  # the common case, inline: this runs for every product
            s = v.strip().lower()
        elif t is int or t is float:
            s = str(v)
        elif t is list:
            for x in v:
                s = _attr_text(x)
                if s:
                    seen[s] = None
            continue
        else:
            s = _attr_text(v)
        if s:
            seen[s] = None
    return list(seen)


def str_list(raw: Any) -> list[str]:
    if isinstance(raw, list):
        items = [text(x) for x in raw]
    else:
        s = text(raw) or ""
        items = [p.strip() for p in s.split(";")]
    return [x for x in items if x]


def applies_to(raw: Any) -> tuple[str | None, list[tuple[str, str, str]]]:
    """`category:NAME;brand:NAME;sku:SKU` (empty: store-wide) -> (raw text, [(label, key, kind)])."""
    if isinstance(raw, list):
        raw = ";".join(str(x) for x in raw)
    s = text(raw)
    if not s:
        return None, []
    targets: dict[tuple[str, str, str], None] = {}
    for part in s.split(";"):
        part = part.strip()
        if not part:
            continue
        kind, sep, name = part.partition(":")
        kind, name = kind.strip().lower(), name.strip()
        if not sep or kind not in APPLIES_KINDS or not name:
            raise Bad(f"bad applies_to entry {_show(part)} (expected category:NAME, brand:NAME or sku:SKU)")
        targets[(APPLIES_KINDS[kind][0], name, kind)] = None
    return s, list(targets)


# -- file types -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Col:
    name: str
    conv: Callable[[str], Any] | None = None  # None: text
    required: bool = False


@dataclass(frozen=True)
class Ref:
    """A column naming another node. `mode`: must exist, created when missing, or linked if present."""

    column: str
    label: str
    what: str  # how the error names it
    mode: str = "must"  # "must" | "implicit" | "optional"


@dataclass(slots=True)
class Clean:
    line: int
    key: Any  # str, or (order_id, sku) for order items
    props: list[Any]  # in NODES[label].props order (CONTAINS_PROPS for order items)
    refs: list[tuple[str, str, str, str]]  # (column, label, key, mode) the row needs
    links: dict[str, Any]  # rel column -> target key, or [(label, key)] for applies_to
    h: str = ""


@dataclass
class FileType:
    name: str
    label: str | None  # None for order items (relationships)
    key: str | tuple[str, ...]
    cols: tuple[Col, ...]
    refs: tuple[Ref, ...] = ()
    extra_to_attributes: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cols)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cols if c.required)


def _faq_id(question: str) -> str:
    return hashlib.sha1(" ".join(question.lower().split()).encode("utf-8")).hexdigest()[:16]


TYPES: dict[str, FileType] = {t.name: t for t in (
    FileType("categories", "Category", "name",
             (Col("name", required=True), Col("parent"), Col("description")),
             (Ref("parent", "Category", "parent category"),)),
    FileType("brands", "Brand", "name", (Col("name", required=True), Col("country"))),
    FileType("suppliers", "Supplier", "supplier_id",
             (Col("supplier_id", required=True), Col("name", required=True), Col("country"), Col("phone"))),
    FileType("products", "Product", "sku",
             (Col("sku", required=True), Col("name", required=True), Col("brand"),
              Col("category"), Col("supplier_id"), Col("price", money),
              Col("currency", currency), Col("stock", count), Col("description"), Col("warranty_months", count),
              Col("rating", ranged(0, 5)), Col("status", enum("status", PRODUCT_STATUSES)),
              Col("attributes")),
             (Ref("brand", "Brand", "brand", "implicit"), Ref("category", "Category", "category", "implicit"),
              Ref("supplier_id", "Supplier", "supplier_id")),
             extra_to_attributes=True),
    FileType("customers", "Customer", "customer_id",
             (Col("customer_id", required=True), Col("name", required=True), Col("email"), Col("phone"),
              Col("city"), Col("country"), Col("tier"))),
    FileType("shipping_methods", "ShippingMethod", "name",
             (Col("name", required=True), Col("min_days", count), Col("max_days", count), Col("cost", money),
              Col("free_over", money), Col("regions"))),
    FileType("payment_methods", "PaymentMethod", "name", (Col("name", required=True), Col("description"))),
    FileType("orders", "Order", "order_id",
             (Col("order_id", required=True), Col("customer_id", required=True),
              Col("status", enum("status", ORDER_STATUSES), required=True), Col("placed_at", date, required=True),
              Col("shipped_at", date), Col("delivered_at", date), Col("eta", date), Col("carrier"),
              Col("tracking_number"), Col("shipping_method"), Col("payment_method"), Col("ship_to"),
              Col("total", money), Col("currency", currency)),
             (Ref("customer_id", "Customer", "customer_id"),
              Ref("shipping_method", "ShippingMethod", "shipping_method", "optional"),
              Ref("payment_method", "PaymentMethod", "payment_method", "optional"))),
    FileType("order_items", None, ("order_id", "sku"),
             (Col("order_id", required=True), Col("sku", required=True),
              Col("quantity", positive, required=True), Col("unit_price", money), Col("discount", ranged(0, 1))),
             (Ref("order_id", "Order", "order_id"), Ref("sku", "Product", "sku"))),
    FileType("policies", "Policy", "policy_id",
             (Col("policy_id", required=True), Col("type", enum("policy type", POLICY_TYPES), required=True),
              Col("title", required=True), Col("text", required=True), Col("days", count), Col("fee", money),
              Col("applies_to"))),
    FileType("promotions", "Promotion", "code",
             (Col("code", required=True), Col("description", required=True),
              Col("discount_percent", ranged(0, 100)), Col("starts", date), Col("ends", date),
              Col("applies_to"))),
    FileType("faqs", "FAQ", "faq_id",
             (Col("question", required=True), Col("answer", required=True), Col("topic"))),
)}


class Validator:
    """Validates the rows of one file type; built once per file (it knows the store currency)."""

    _SPECIAL = ("attributes", "regions", "applies_to")

    def __init__(self, ftype: FileType, *, store_currency: str, extra_columns: tuple[str, ...] = ()) -> None:
        self.t = ftype
        self.currency = store_currency
        self.extra = extra_columns if ftype.extra_to_attributes else ()
        self.label = ftype.label
        props = NODES[ftype.label].props if ftype.label else CONTAINS_PROPS
        self.props = props
        ref_cols = {r.column for r in ftype.refs}
        # Property columns in graph order, as (column, converter, required, slot).
        self.plan = [(c.name, c.conv, c.required, props.index(c.name)) for c in ftype.cols
                     if c.name in props and c.name not in self._SPECIAL]
        self.link_cols = [(c.name, c.required) for c in ftype.cols if c.name in ref_cols and c.name not in props]
        self.key_cols = [] if ftype.name == "faqs" else [k for k in (
            (ftype.key,) if isinstance(ftype.key, str) else ftype.key) if k not in ref_cols]
        self.refs = [(r, props.index(r.column) if r.column in props else -1) for r in ftype.refs]
        self._special = getattr(self, f"_post_{ftype.name}", None)
        if ftype.name == "products":
            self._slots = tuple(props.index(n) for n in ("currency", "status", "attributes", "attr_values"))

    def validate(self, values: dict[str, Any]) -> Clean | list[tuple[str | None, str]]:
        """A clean row, or every (column, reason) problem the row has."""
        props: list[Any] = [None] * len(self.props)
        problems: list[tuple[str | None, str]] = []
        links: dict[str, Any] = {}
        get = values.get
        key: Any = None
        for name in self.key_cols:
            v = get(name)
            try:
                key = v.strip() if type(v) is str else text(v)
            except Bad as exc:
                problems.append((name, str(exc)))
                continue
            if not key:
                problems.append((name, "missing required value"))
        for name, conv, required, slot in self.plan:
            v = get(name)
            try:
                v = v.strip() if type(v) is str else text(v)
                if not v:
                    if required:
                        problems.append((name, "missing required value"))
                    continue
                props[slot] = v if conv is None else conv(v)
            except Bad as exc:
                problems.append((name, str(exc)))
        for name, required in self.link_cols:
            v = get(name)
            try:
                v = v.strip() if type(v) is str else text(v)
            except Bad as exc:
                problems.append((name, str(exc)))
                continue
            if not v:
                if required:
                    problems.append((name, "missing required value"))
                continue
            links[name] = v
        refs: list[tuple[str, str, str, str]] = []
        for r, slot in self.refs:
            v = props[slot] if slot >= 0 else links.get(r.column)
            if v is not None:
                links[r.column] = v
                if r.mode != "optional":
                    refs.append((r.column, r.label, v, r.mode))
        if self._special is not None:
            self._special(props, links, refs, values, problems)
        if problems:
            return problems
        if self.t.name == "order_items":
            key = (links["order_id"], links["sku"])
        elif self.t.name == "faqs":
            key = _faq_id(props[self.props.index("question")])
        row = Clean(0, key, props, refs, links)
        row.h = content_hash(props, links)
        return row

    # -- per-type steps ------------------------------------------------------------------------------
    def _post_products(self, props, links, refs, values, problems) -> None:
        cur, status, attr_slot, values_slot = self._slots
        if props[cur] is None:
            props[cur] = self.currency
        if props[status] is None:
            props[status] = "active"
        try:
            attrs = attributes(values.get("attributes"))
        except Bad as exc:
            problems.append(("attributes", str(exc)))
            return
        for col in self.extra:  # unknown columns become attributes; the attributes column wins
            try:
                v = text(values.get(col))
            except Bad as exc:
                problems.append((col, str(exc)))
                continue
            if v is not None and col not in attrs:
                attrs[col] = v
        # Sorted keys: the same attributes in another order are the same content (and hash).
        props[attr_slot] = orjson.dumps(attrs, option=orjson.OPT_SORT_KEYS).decode()
        props[values_slot] = attr_values(attrs)

    def _post_orders(self, props, links, refs, values, problems) -> None:
        i = self.props.index("currency")
        if props[i] is None:
            props[i] = self.currency

    def _post_shipping_methods(self, props, links, refs, values, problems) -> None:
        p = self.props
        lo, hi = props[p.index("min_days")], props[p.index("max_days")]
        if lo is not None and hi is not None and lo > hi:
            problems.append(("max_days", f"max_days ({hi}) is less than min_days ({lo})"))
        try:
            props[p.index("regions")] = str_list(values.get("regions"))
        except Bad as exc:
            problems.append(("regions", str(exc)))

    def _applies(self, props, links, refs, values, problems) -> list[tuple[str, str, str]]:
        try:
            raw, targets = applies_to(values.get("applies_to"))
        except Bad as exc:
            problems.append(("applies_to", str(exc)))
            return []
        props[self.props.index("applies_to")] = raw
        links["applies_to"] = [(label, key) for label, key, _ in targets]
        refs.extend(("applies_to", label, key, "must") for label, key, _ in targets)
        return targets

    def _post_policies(self, props, links, refs, values, problems) -> None:
        targets = self._applies(props, links, refs, values, problems)
        kinds = {kind for _, _, kind in targets}
        props[self.props.index("scope")] = next((k for k in _SPECIFICITY if k in kinds), "store")

    def _post_promotions(self, props, links, refs, values, problems) -> None:
        self._applies(props, links, refs, values, problems)
        p = self.props
        s, e = props[p.index("starts")], props[p.index("ends")]
        if s is not None and e is not None and e < s:
            problems.append(("ends", f"ends ({e}) is before starts ({s})"))

    def _post_categories(self, props, links, refs, values, problems) -> None:
        try:
            name = text(values.get("name"))
        except Bad:
            return
        if name is not None and links.get("parent") == name:
            problems.append(("parent", "a category cannot be its own parent"))


def content_hash(props: list[Any], links: dict[str, Any]) -> str:
    """16 hex digits for the properties, then 16 for the relationship targets (see HASH_SPLIT)."""
    # `links` is built in a fixed order per file type, so its JSON needs no key sorting.
    return (hashlib.blake2b(orjson.dumps(props), digest_size=_HALF).hexdigest()
            + hashlib.blake2b(orjson.dumps(links), digest_size=_HALF).hexdigest())


_HALF = HASH_SPLIT // 2


def file_type(filename: str) -> tuple[str, str] | None:
    """(type, format) for a file named after its type (`products.csv`, `orders.jsonl`), else None."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].lower()
    stem, dot, ext = base.rpartition(".")
    if not dot or ext not in ("csv", "jsonl") or stem not in TYPES:
        return None
    return stem, ext


def file_format(filename: str) -> str:
    """`jsonl` for a .jsonl file, else `csv` (a file whose type is given or read from its header
    may have any name)."""
    return "jsonl" if filename.lower().endswith(".jsonl") else "csv"


def type_from_columns(columns: list[str]) -> tuple[str | None, str]:
    """The file type a header identifies, or None and why not.

    A type fits when the header holds all its required columns. Of several, the most specific win
    (a products header holds a brand's `name` too), then those that know every column of the
    header; exactly one must be left.
    """
    cols = set(columns)
    fits = [t for t in TYPES.values() if set(t.required) <= cols]
    fits = [t for t in fits if not any(set(t.required) < set(o.required) for o in fits)]
    if len(fits) > 1:
        fits = [t for t in fits if cols <= set(t.columns)] or fits
    if len(fits) == 1:
        return fits[0].name, ""
    shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
    if not fits:
        return None, f"its header ({shown}) holds the required columns of no file type"
    return None, f"its header ({shown}) fits several file types: {', '.join(t.name for t in fits)}"
