"""Graph reports of the analytics routes (api/analytics.py): read-only, named like every other."""

from kg.queries import q

TOP_PRODUCTS = q(
    "analytics.top_products",
    """
    MATCH (o:Order)-[c:CONTAINS]->(p:Product)
    WHERE o.status <> 'cancelled'
    RETURN p.sku AS sku, p.name AS name, sum(coalesce(c.quantity, 1)) AS units, count(DISTINCT o) AS orders
    ORDER BY units DESC, sku ASC
    LIMIT $limit
    """,
    description="Best-selling products by units in orders that were not cancelled.",
)
CO_PURCHASES = q(
    "analytics.co_purchases",
    """
    MATCH (o:Order)-[:CONTAINS]->(a:Product)
    MATCH (o)-[:CONTAINS]->(b:Product)
    WHERE a.sku < b.sku
    RETURN a.sku AS sku_a, a.name AS name_a, b.sku AS sku_b, b.name AS name_b, count(DISTINCT o) AS orders
    ORDER BY orders DESC, sku_a ASC, sku_b ASC
    LIMIT $limit
    """,
    description="Pairs of products bought in the same order, most frequent first.",
)
CO_PURCHASES_OF = q(
    "analytics.co_purchases_of",
    """
    MATCH (a:Product {sku: $sku})<-[:CONTAINS]-(o:Order)-[:CONTAINS]->(b:Product)
    WHERE b.sku <> a.sku
    RETURN a.sku AS sku_a, a.name AS name_a, b.sku AS sku_b, b.name AS name_b, count(DISTINCT o) AS orders
    ORDER BY orders DESC, sku_b ASC
    LIMIT $limit
    """,
    description="Products bought in the same order as one product.",
)
