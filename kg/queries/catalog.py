"""Catalog look-ups and single-product writes used by the loader and the catalog service
(kg/catalog/service.py, behind catalog managers' routes)."""

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
PRODUCT_ORDER_COUNT = q(
    "catalog.product_order_count",
    "MATCH (p:Product {sku: $sku}) OPTIONAL MATCH (o:Order)-[:CONTAINS]->(p) RETURN count(o) AS orders",
    description="How many orders contain a product (a hard delete is refused when any do).",
)
PRODUCT_HARD_DELETE = q(
    "catalog.product_hard_delete",
    "MATCH (p:Product {sku: $sku}) WHERE NOT (p)<-[:CONTAINS]-(:Order) DETACH DELETE p RETURN 1 AS deleted",
    read_only=False,
    description="Remove a product that no order contains, with its relationships.",
)
