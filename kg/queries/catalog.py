"""Catalog look-ups used by the loader and by catalog managers' routes."""

from kg.queries import q

PRODUCT_BY_SKU = q(
    "catalog.product_by_sku",
    """
    MATCH (p:Product {sku: $sku})
    OPTIONAL MATCH (p)-[:MADE_BY]->(b:Brand)
    OPTIONAL MATCH (p)-[:IN_CATEGORY]->(c:Category)
    OPTIONAL MATCH (p)-[:SUPPLIED_BY]->(s:Supplier)
    RETURN properties(p) AS product, b.name AS brand, c.name AS category, s.supplier_id AS supplier_id
    """,
)
