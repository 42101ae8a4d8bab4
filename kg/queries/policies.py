"""Store policies by specificity, shipping and payment methods.

Specificity (DESIGN section 3): a `sku:` policy beats a `brand:` one, which beats a `category:`
one (nearest in the hierarchy first), which beats the store-wide one of the same type. The
queries return every applicable policy with a `rank` (0 sku, 1 brand, 2 + distance for a
category, 100 store-wide) so the caller takes the lowest and can still say what it overrides.
"""

from kg.queries import q

_POLICY = """pol.policy_id AS policy_id, pol.type AS type, pol.title AS title, pol.text AS text,
           pol.days AS days, pol.fee AS fee, pol.scope AS scope, pol.applies_to AS applies_to"""

FOR_PRODUCT = q(
    "policies.for_product",
    """
    MATCH (p:Product {sku: $sku})<-[:APPLIES_TO]-(pol:Policy)
    WHERE pol.type IN $types
    RETURN """ + _POLICY + """, 0 AS rank, p.sku AS target
    UNION
    MATCH (p:Product {sku: $sku})-[:MADE_BY]->(b:Brand)<-[:APPLIES_TO]-(pol:Policy)
    WHERE pol.type IN $types
    RETURN """ + _POLICY + """, 1 AS rank, b.name AS target
    UNION
    MATCH path = (p:Product {sku: $sku})-[:IN_CATEGORY]->(:Category)-[:SUBCATEGORY_OF*0..6]->(c:Category)
          <-[:APPLIES_TO]-(pol:Policy)
    WHERE pol.type IN $types
    RETURN """ + _POLICY + """, 1 + length(path) AS rank, c.name AS target
    UNION
    MATCH (pol:Policy)
    WHERE pol.type IN $types AND pol.scope = 'store'
    RETURN """ + _POLICY + """, 100 AS rank, '' AS target
    """,
    description="Every policy of the given types that applies to a product, ranked by specificity "
                "(0 sku, 1 brand, 2.. category by distance up the hierarchy, 100 store-wide).",
)

FOR_BRAND = q(
    "policies.for_brand",
    """
    MATCH (b:Brand {name: $brand})<-[:APPLIES_TO]-(pol:Policy)
    WHERE pol.type IN $types
    RETURN """ + _POLICY + """, 1 AS rank, b.name AS target
    UNION
    MATCH (pol:Policy)
    WHERE pol.type IN $types AND pol.scope = 'store'
    RETURN """ + _POLICY + """, 100 AS rank, '' AS target
    """,
    description="Policies of the given types for a brand, then store-wide.",
)

FOR_CATEGORY = q(
    "policies.for_category",
    """
    MATCH path = (:Category {name: $category})-[:SUBCATEGORY_OF*0..6]->(c:Category)<-[:APPLIES_TO]-(pol:Policy)
    WHERE pol.type IN $types
    RETURN """ + _POLICY + """, 2 + length(path) AS rank, c.name AS target
    UNION
    MATCH (pol:Policy)
    WHERE pol.type IN $types AND pol.scope = 'store'
    RETURN """ + _POLICY + """, 100 AS rank, '' AS target
    """,
    description="Policies of the given types for a category (walking up the hierarchy), then store-wide.",
)

STORE_WIDE = q(
    "policies.store_wide",
    """
    MATCH (pol:Policy)
    WHERE pol.type IN $types AND pol.scope = 'store'
    RETURN """ + _POLICY + """, 100 AS rank, '' AS target
    ORDER BY policy_id
    """,
    description="Store-wide policies of the given types.",
)

SHIPPING_METHODS = q(
    "policies.shipping_methods",
    """
    MATCH (m:ShippingMethod)
    RETURN m.name AS name, m.min_days AS min_days, m.max_days AS max_days, m.cost AS cost,
           m.free_over AS free_over, m.regions AS regions
    ORDER BY m.min_days, m.cost, m.name
    """,
    description="Every shipping method with delivery days, cost, free-shipping threshold and regions.",
)

PAYMENT_METHODS = q(
    "policies.payment_methods",
    "MATCH (m:PaymentMethod) RETURN m.name AS name, m.description AS description ORDER BY m.name",
    description="Every accepted payment method.",
)

CARRIERS = q(
    "policies.carriers",
    """
    MATCH (o:Order)
    WHERE o.carrier IS NOT NULL AND o.carrier <> ''
    RETURN o.carrier AS carrier, collect(DISTINCT o.shipping_method) AS methods, count(o) AS orders
    ORDER BY orders DESC, carrier
    """,
    description="The carriers the shop's orders travel with, and the delivery methods each carried them for.",
)
