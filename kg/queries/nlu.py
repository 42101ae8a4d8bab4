"""Read queries that collect the names the understanding model trains on (nlu/catalog.py).

Paged by key so a large catalog never comes back in one reply; every query is read-only.
"""

from kg.queries import q

PRODUCT_NAMES = q(
    "nlu.product_names",
    """
    MATCH (p:Product)
    WHERE p.sku > $after
    WITH p ORDER BY p.sku LIMIT $limit
    OPTIONAL MATCH (p)-[:MADE_BY]->(b:Brand)
    OPTIONAL MATCH (p)-[:IN_CATEGORY]->(c:Category)
    RETURN p.sku AS sku, p.name AS name, b.name AS brand, c.name AS category, p.attributes AS attributes
    ORDER BY sku
    """,
    description="A page of products (sku > $after) with brand, category and attributes, for NLU training.",
)

BRAND_NAMES = q(
    "nlu.brand_names",
    "MATCH (b:Brand) RETURN b.name AS name ORDER BY name",
    description="Every brand name, for NLU training.",
)

CATEGORY_NAMES = q(
    "nlu.category_names",
    "MATCH (c:Category) RETURN c.name AS name ORDER BY name",
    description="Every category name, for NLU training.",
)

ORDER_IDS = q(
    "nlu.order_ids",
    "MATCH (o:Order) RETURN o.order_id AS order_id ORDER BY order_id LIMIT $limit",
    description="Up to $limit order ids, for NLU training (the id format is what matters).",
)
