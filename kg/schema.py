"""Labels, relationship types, keys and indexes, created idempotently per backend.

Every node type has one key property; upserts `MERGE` on it, so it is indexed and unique. Names
that shoppers type (products, brands, categories) get a full-text index for entity linking, and
FAQ/policy texts one for procedure questions.

Node properties (the contract between the loader, the named queries and entity linking):

- Product: sku, name, price (float, 2 decimals), currency, stock (int), description,
  warranty_months (int or null), rating (float or null), status ("active" | "discontinued"),
  attributes (JSON object as a string: both backends lack map properties), attr_values (list of
  lower-cased attribute values, for "in black"-style filters), _h (content hash), updated_at.
- Brand: name, country. Category: name, description; (child)-[:SUBCATEGORY_OF]->(parent).
- Supplier: supplier_id, name, country, phone.
- Customer: customer_id, name, email, phone, city, country, tier.
- Order: order_id, status, placed_at, shipped_at, delivered_at, eta, carrier, tracking_number,
  shipping_method, payment_method, ship_to, total, currency; (Customer)-[:PLACED]->(Order),
  (Order)-[:CONTAINS {quantity, unit_price, discount}]->(Product), (Order)-[:SHIPPED_VIA]->
  (ShippingMethod), (Order)-[:PAID_WITH]->(PaymentMethod) when those exist.
- Policy: policy_id, type, title, text, days, fee, applies_to (the raw string), scope ("store" |
  "category" | "brand" | "sku"); (Policy)-[:APPLIES_TO]->(Category | Brand | Product).
- ShippingMethod: name, min_days, max_days, cost, free_over, regions (list).
- PaymentMethod: name, description.
- Promotion: code, description, discount_percent, starts, ends, applies_to; APPLIES_TO as policies.
- FAQ: faq_id (first 16 hex of sha1 of the normalised question), question, answer, topic.
- Request: request_id, kind, status, reason, created_at, created_by (actions with confirmation).
- ShopExample: id (first 12 hex of sha256 of the normalised text), text, intent, added_at, added_by,
  pos (order within one add); ShopExampleSet {key: "default"}: version (bumped by every add or
  remove that changed something), epoch, updated_at. See kg/queries/shop_examples.py.
- LinkLine, LinkKey, LinkWord, LinkTerm, LinkValue, LinkStat, LinkProduct {k, v, n}, LinkMeta {key:
  "link"}: the entity-linking index, derived from the products (kg/queries/link_index.py).
- FieldSummary {key: "fields"}: stamp, keys, values (JSON texts): the shop's attribute keys and values
  as the last scan of every product found them (qa/fields.py).
- Meta {key: "catalog"}: version (int, bumped by every import or product change that changed
  something; caches such as the entity-linking index compare it), updated_at.

Every upserted node also carries `_h`, a hash of its imported content, so a re-import can tell
created, updated and unchanged rows apart and skips unchanged ones without writing.

Dates are stored as ISO 8601 strings in UTC ("2026-11-02T14:05:00Z") rather than temporal values:
they sort and compare as strings identically on both backends, and FalkorDB's Bolt listener
crashes on temporal results.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass

from kg.queries import system as SQ
from kg.store import GraphStore

log = logging.getLogger(__name__)

INDEX_LISTING_TIMEOUT_MS = 60_000  # index listings: the schema statements' own limit


@dataclass(frozen=True)
class NodeType:
    label: str
    key: str
    fulltext: tuple[str, ...] = ()
    indexed: tuple[str, ...] = ()


NODE_TYPES: tuple[NodeType, ...] = (
    NodeType("Category", "name", fulltext=("name",)),
    NodeType("Brand", "name", fulltext=("name",)),
    NodeType("Supplier", "supplier_id"),
    NodeType("Product", "sku", fulltext=("name",), indexed=("status",)),
    NodeType("Customer", "customer_id"),
    NodeType("Order", "order_id", indexed=("status",)),
    NodeType("Policy", "policy_id", fulltext=("title", "text"), indexed=("type",)),
    NodeType("ShippingMethod", "name"),
    NodeType("PaymentMethod", "name"),
    NodeType("Promotion", "code"),
    NodeType("FAQ", "faq_id", fulltext=("question", "answer")),
    NodeType("Request", "request_id"),
    NodeType("Meta", "key"),
    NodeType("ShopExample", "id"),
    NodeType("ShopExampleSet", "key"),
    # The entity-linking index (kg/queries/link_index.py): entries keyed by `k`, one meta node.
    NodeType("LinkLine", "k", indexed=("dead",)),
    NodeType("LinkKey", "k"),
    NodeType("LinkWord", "k"),
    NodeType("LinkTerm", "k"),
    NodeType("LinkValue", "k"),
    NodeType("LinkStat", "k"),
    NodeType("LinkProduct", "k"),
    NodeType("LinkMeta", "key"),
    NodeType("FieldSummary", "key"),  # the shop's attribute keys and values (qa/fields.py), per catalog stamp
)
NODE_BY_LABEL = {n.label: n for n in NODE_TYPES}

RELATIONSHIPS: dict[str, tuple[str, str]] = {
    "MADE_BY": ("Product", "Brand"),
    "IN_CATEGORY": ("Product", "Category"),
    "SUBCATEGORY_OF": ("Category", "Category"),
    "SUPPLIED_BY": ("Product", "Supplier"),
    "PLACED": ("Customer", "Order"),
    "CONTAINS": ("Order", "Product"),  # quantity, unit_price, discount
    "APPLIES_TO": ("Policy|Promotion", "Product|Brand|Category"),
    "SHIPPED_VIA": ("Order", "ShippingMethod"),
    "PAID_WITH": ("Order", "PaymentMethod"),
    "REQUESTED": ("Customer", "Request"),
    "CONCERNS": ("Request", "Order"),
}


def falkordb_statements() -> list[str]:
    out: list[str] = []
    for n in NODE_TYPES:
        out.append(f"CREATE INDEX FOR (n:{n.label}) ON (n.{n.key})")
        out.extend(f"CREATE INDEX FOR (n:{n.label}) ON (n.{p})" for p in n.indexed)
        if n.fulltext:
            props = ", ".join(f"n.{p}" for p in n.fulltext)
            out.append(f"CREATE FULLTEXT INDEX FOR (n:{n.label}) ON ({props})")
    return out


def neo4j_statements() -> list[str]:
    out: list[str] = []
    for n in NODE_TYPES:
        low = n.label.lower()
        out.append(
            f"CREATE CONSTRAINT {low}_{n.key}_unique IF NOT EXISTS FOR (n:{n.label}) REQUIRE n.{n.key} IS UNIQUE"
        )
        out.extend(
            f"CREATE INDEX {low}_{p} IF NOT EXISTS FOR (n:{n.label}) ON (n.{p})" for p in n.indexed
        )
        if n.fulltext:
            props = ", ".join(f"n.{p}" for p in n.fulltext)
            out.append(f"CREATE FULLTEXT INDEX {low}_text IF NOT EXISTS FOR (n:{n.label}) ON EACH [{props}]")
    return out


def ensure_schema(store: GraphStore) -> None:
    """Create keys and indexes; safe to call on every start."""
    if store.backend == "falkordb":
        store.execute_schema(falkordb_statements())
        for n in NODE_TYPES:
            store.create_unique_constraint(n.label, n.key)  # type: ignore[attr-defined]
    else:
        store.execute_schema(neo4j_statements())


def indexes_building(store: GraphStore) -> dict[str, str]:
    """The graph's indexes that do not answer look-ups yet: {label: the server's word on its progress}
    (empty when all do). A server builds the indexes of the data it loads in the background (the
    embedded FalkorDB is started with DELAY_INDEXING, kg/backends/embedded.py; Neo4j populates a new
    index in the background too), and a look-up meanwhile scans every node of its label."""
    rows = store.run(SQ.INDEXES_BUILDING, timeout_ms=INDEX_LISTING_TIMEOUT_MS)
    out: dict[str, str] = {}
    for r in rows:
        label = str(r.get("label") or "")
        out[label] = "; ".join(x for x in (out.get(label), str(r.get("status") or "")) if x)
    return out


def wait_for_indexes(store: GraphStore, timeout_s: float, *, ignore: Collection[str] = (),
                     poll_s: float = 0.5, report_s: float = 15.0) -> dict[str, str]:
    """Wait until the graph's indexes answer look-ups, logging their progress every `report_s`; those
    of the labels in `ignore` are not waited for. Returns what was still being built when `timeout_s`
    passed (empty: all built)."""
    started = time.monotonic()
    reported = started
    while True:
        building = {k: v for k, v in indexes_building(store).items() if k not in ignore}
        now = time.monotonic()
        if not building:
            if now - started >= report_s:
                log.info("graph indexes built", extra={"waited_s": round(now - started, 1)})
            return {}
        if now - started >= timeout_s:
            log.warning("graph indexes still being built; going on without them", extra={"building": building})
            return building
        if now - reported >= report_s:
            log.info("waiting for the graph's indexes", extra={"building": building})
            reported = now
        time.sleep(poll_s)
