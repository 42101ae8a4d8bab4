"""Read queries behind entity linking (nlu/linking/): the catalog version, the names to index, and a
full-text search over product names.

The linking index follows the catalog without retraining: it reads `(:Meta {key:'catalog'}).version`
(one cheap look-up), and when that moved it reads the products stamped (`updated_at`, which the
loader sets to the import's start) after the newest stamp it has seen, plus the product count,
which says whether anything was removed or written without a stamp. Only when that cannot be
trusted (no stamps, a count that does not add up, an import stamped in the same second as the last
one) and every so often anyway does it compare every product's fingerprint (`_h`, the loader's
content hash, plus the name). Product pages are keyed by sku so a large catalog never comes back in
one reply. Every query here is read-only.

Full-text syntax differs per backend (FalkorDB uses RediSearch, Neo4j uses Lucene), and so does the
search string: `fulltext_terms` builds it from normalised word tokens only (letters and digits),
so nothing a shopper types can reach the search syntax, let alone the Cypher.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kg.queries import product_scan, q

CATALOG_VERSION = q(
    "linking.catalog_version",
    "OPTIONAL MATCH (m:Meta {key: 'catalog'}) RETURN m.version AS version, m.updated_at AS updated_at",
    description="The catalog version every change bumps, and the stamp of the import that bumped it; the "
                "linking index compares them before updating.",
)

_PRODUCT_FIELDS = """
    OPTIONAL MATCH (p)-[:MADE_BY]->(b:Brand)
    OPTIONAL MATCH (p)-[:IN_CATEGORY]->(c:Category)
    RETURN p.sku AS sku, p.name AS name, b.name AS brand, c.name AS category, p.status AS status,
           p.attributes AS attributes, coalesce(p._h, '') + '|' + coalesce(p.name, '') AS h,
           p.updated_at AS updated_at
    ORDER BY sku"""

PRODUCT_FINGERPRINTS = product_scan(
    "linking.product_fingerprints",
    """
    RETURN p.sku AS sku, coalesce(p._h, '') + '|' + coalesce(p.name, '') AS h, p.updated_at AS updated_at,
           {cursor} AS cursor
    """,
    description="A page of (sku, content fingerprint, updated_at), to find what changed (a scan: kg/scan.py).",
)

PRODUCTS_CHANGED_SINCE = q(
    "linking.products_changed_since",
    """
    MATCH (p:Product)
    WHERE p.updated_at > $since
    """ + _PRODUCT_FIELDS.replace("ORDER BY sku", "ORDER BY sku LIMIT $limit"),
    description="Products stamped after $since (the loader's `updated_at`), with their linking fields.",
)

PRODUCT_COUNT = q(
    "linking.product_count",
    "MATCH (p:Product) RETURN count(p) AS products",
    description="How many products there are: a removal shows as a count below the index's.",
)

PRODUCTS_PAGE = product_scan(
    "linking.products_page",
    _PRODUCT_FIELDS.replace("AS updated_at", "AS updated_at, {cursor} AS cursor"),
    description="A page of products with what the linking index needs (names, brand, category, attributes, "
                "status, fingerprint): a scan (kg/scan.py).",
)

PRODUCTS_BY_SKUS = q(
    "linking.products_by_skus",
    """
    UNWIND $skus AS wanted
    MATCH (p:Product {sku: wanted})
    """ + _PRODUCT_FIELDS,
    description="The linking fields of the given products (the changed ones, or full-text hits not yet indexed).",
)

BRANDS = q(
    "linking.brands",
    "MATCH (b:Brand) RETURN b.name AS name ORDER BY name",
    description="Every brand name, for brand linking.",
)

CATEGORIES = q(
    "linking.categories",
    """
    MATCH (c:Category)
    OPTIONAL MATCH (c)-[:SUBCATEGORY_OF]->(parent:Category)
    RETURN c.name AS name, c.description AS description, parent.name AS parent
    ORDER BY name
    """,
    description="Every category with its description and parent, for category linking.",
)

FULLTEXT_PRODUCTS = q(
    "linking.fulltext_products",
    """
    CALL db.idx.fulltext.queryNodes('Product', $terms) YIELD node, score
    RETURN node.sku AS sku, score
    ORDER BY score DESC, sku
    LIMIT $limit
    """,
    variants={
        "neo4j": """
    CALL db.index.fulltext.queryNodes('product_text', $terms) YIELD node, score
    RETURN node.sku AS sku, score
    ORDER BY score DESC, sku
    LIMIT $limit
    """.strip(),
    },
    description="Products whose name matches any of the search terms (typo-tolerant), best first; build "
                "$terms with fulltext_terms().",
)

_WORD = re.compile(r"^[a-z0-9]+$")


def fulltext_terms(tokens: Sequence[str], backend: str, *, fuzzy_min_len: int = 5) -> str:
    """A full-text search string matching any of `tokens`, with one-edit typo tolerance on longer words.

    Only tokens made of lower-case letters and digits are used, so the result can never carry
    search-syntax operators; an empty string means "nothing to search for".
    """
    words: list[str] = []
    for t in tokens:
        if not _WORD.match(t) or t in words:
            continue
        words.append(t)
    if not words:
        return ""
    fuzzy = [t for t in words if len(t) >= fuzzy_min_len and t.isalpha()]
    if backend == "neo4j":  # Lucene: OR is the default operator; `~1` is one edit
        return " ".join(f"{t}~1" if t in fuzzy else t for t in words)
    # RediSearch: `|` is OR; `%t%` matches within one edit (and the exact word as well)
    return "|".join(f"%{t}%" if t in fuzzy else t for t in words)
