"""Labels, relationship types, keys and indexes, created idempotently per backend.

Every node type has one key property; upserts `MERGE` on it, so it is indexed and unique. Names
that shoppers type (products, brands, categories) get a full-text index for entity linking, and
FAQ/policy texts one for procedure questions.

Dates are stored as ISO 8601 strings in UTC ("2026-11-02T14:05:00Z") rather than temporal values:
they sort and compare as strings identically on both backends, and FalkorDB's Bolt listener
crashes on temporal results.
"""

from __future__ import annotations

from dataclasses import dataclass

from kg.store import GraphStore


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
    NodeType("Product", "sku", fulltext=("name",), indexed=("model_line", "status")),
    NodeType("Customer", "customer_id"),
    NodeType("Order", "order_id", indexed=("status",)),
    NodeType("Policy", "policy_id", fulltext=("title", "text"), indexed=("type",)),
    NodeType("ShippingMethod", "name"),
    NodeType("PaymentMethod", "name"),
    NodeType("Promotion", "code"),
    NodeType("FAQ", "faq_id", fulltext=("question", "answer")),
    NodeType("Request", "request_id"),
    NodeType("Meta", "key"),
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
