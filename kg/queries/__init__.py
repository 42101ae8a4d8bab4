"""Named, parameterised Cypher queries: the only Cypher the product sends on its own behalf.

Every query is a `Query` registered by name, with a `read_only` flag that decides how a backend
runs it (FalkorDB `GRAPH.RO_QUERY`, Neo4j READ access mode). A query may carry a variant per
backend where the dialects differ (full-text search procedures); everything else is portable
Cypher. User text only ever travels in `params`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.errors import UnknownQuery


@dataclass(frozen=True)
class Query:
    name: str
    cypher: str
    read_only: bool = True
    # A write that may safely run twice (MERGE upserts). Non-idempotent writes (creating a
    # request node) set False and are never retried once they may have reached the server.
    idempotent: bool = True
    variants: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def text_for(self, backend: str) -> str:
        return self.variants.get(backend, self.cypher)


_REGISTRY: dict[str, Query] = {}


def register(query: Query) -> Query:
    if query.name in _REGISTRY and _REGISTRY[query.name] != query:
        raise ValueError(f"query {query.name!r} registered twice with different text")
    _REGISTRY[query.name] = query
    return query


def q(name: str, cypher: str, *, read_only: bool = True, idempotent: bool = True,
      variants: dict[str, str] | None = None, description: str = "") -> Query:
    """Define and register a query in one line; returns it so modules can keep a handle."""
    return register(Query(name, cypher.strip(), read_only, idempotent, dict(variants or {}), description))


# Catalog-wide reads come in pages, each page a query of its own ("scans", run by kg/scan.py): on
# FalkorDB a page seeks node ids above the last one seen (its plan is `Node By Label and ID Scan`,
# so a page costs its own size; paging by sku sorted every remaining product for each page, which
# made a scan of a million products take minutes), on Neo4j it walks the sku index in order. A scan
# query takes $after (SCAN_START[backend] first) and $limit, and returns its cursor as `cursor`.
SCAN_START: dict[str, object] = {"falkordb": -1, "neo4j": ""}


def product_scan(name: str, body: str, *, where: str = "", description: str = "") -> Query:
    """A scan over products: `body` follows the page's `WITH p` and says `{cursor} AS cursor` in
    its RETURN; `where` filters the products (the page holds up to $limit of those that pass)."""
    extra = f" AND ({where})" if where else ""
    falkordb = f"MATCH (p:Product)\nWHERE id(p) > $after{extra}\nWITH p LIMIT $limit\n" + body.format(cursor="id(p)")
    neo4j = (f"MATCH (p:Product)\nWHERE p.sku > $after{extra}\nWITH p ORDER BY p.sku LIMIT $limit\n"
             + body.format(cursor="p.sku"))
    return q(name, falkordb, variants={"neo4j": neo4j}, description=description)


def get(name: str) -> Query:
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownQuery(f"no named query {name!r}") from None


def all_queries() -> dict[str, Query]:
    _load_all()
    return dict(_REGISTRY)


def _load_all() -> None:
    # Importing the modules registers their queries; kept lazy so `kg.queries` imports nothing heavy.
    from kg.queries import (  # noqa: F401
        analytics,
        catalog,
        embeddings,
        link_index,
        linking,
        loader,
        nlu,
        orders,
        policies,
        procedures,
        products,
        shop_examples,
        system,
    )
