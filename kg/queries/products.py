"""Product questions: price, stock, details, comparison, variants, recommendations, promotions.

Every query is read-only and parameterised. Rows share one projection (`_PRODUCT`) so the
dialogue layer builds its facts from one shape. Dates are ISO strings (kg/schema.py): promotions
compare their first ten characters (the date) with `$today` ("YYYY-MM-DD"), which works whether
the loader stored a date or a full timestamp.
"""

from kg.queries import product_scan, q

# The projection every product query returns; `p` must be bound, brand and category are optional.
_PRODUCT = """
    OPTIONAL MATCH (p)-[:MADE_BY]->(pb:Brand)
    OPTIONAL MATCH (p)-[:IN_CATEGORY]->(pc:Category)
    RETURN p.sku AS sku, p.name AS name, pb.name AS brand, pc.name AS category, p.price AS price,
           p.currency AS currency, p.stock AS stock, p.status AS status, p.rating AS rating,
           p.warranty_months AS warranty_months, p.description AS description, p.attributes AS attributes,
           p.attr_values AS attr_values"""

# Promotions in force for one product: its sku, its brand, its category or any ancestor, or store-wide.
_PROMO_IN_FORCE = (
    "(promo.starts IS NULL OR promo.starts = '' OR substring(promo.starts, 0, 10) <= $today) AND "
    "(promo.ends IS NULL OR promo.ends = '' OR substring(promo.ends, 0, 10) >= $today)"
)

BY_SKUS = q(
    "products.by_skus",
    """
    UNWIND $skus AS wanted
    MATCH (p:Product {sku: wanted})
    """ + _PRODUCT,
    description="Products by sku (any order), with brand, category, price, stock, attributes.",
)

SEARCH_BY_NAME = q(
    "products.search_by_name",
    """
    MATCH (p:Product)
    WHERE all(t IN $tokens WHERE toLower(p.name) CONTAINS t OR toLower(p.sku) = t)
    WITH p ORDER BY size(p.name) LIMIT $limit
    """ + _PRODUCT,
    description="Fallback look-up of products whose name contains every token, for a mention the entity linker "
                "(full-text, aliases, typos, embeddings) did not settle: partial names the model cut short.",
)

LIST_FILTERED = q(
    "products.list_filtered",
    """
    MATCH (p:Product)
    WHERE ($brand IS NULL OR (p)-[:MADE_BY]->(:Brand {name: $brand}))
      AND ($category IS NULL OR
           (p)-[:IN_CATEGORY]->(:Category)-[:SUBCATEGORY_OF*0..6]->(:Category {name: $category}))
      AND ($attribute IS NULL OR $attribute IN p.attr_values)
      AND ($max_price IS NULL OR p.price <= $max_price)
      AND ($only_active = false OR p.status = 'active')
    WITH p ORDER BY coalesce(p.rating, 0) DESC, p.price ASC, p.sku LIMIT $limit
    """ + _PRODUCT,
    description="Products of a brand and/or category (including subcategories), optionally with an attribute "
                "value and a price ceiling; best rated first.",
)

SUMMARY_FILTERED = q(
    "products.summary_filtered",
    """
    MATCH (p:Product)
    WHERE ($brand IS NULL OR (p)-[:MADE_BY]->(:Brand {name: $brand}))
      AND ($category IS NULL OR
           (p)-[:IN_CATEGORY]->(:Category)-[:SUBCATEGORY_OF*0..6]->(:Category {name: $category}))
      AND ($attribute IS NULL OR $attribute IN p.attr_values)
      AND p.status = 'active'
    RETURN p.currency AS currency, count(p) AS count, min(p.price) AS min_price, max(p.price) AS max_price,
           sum(CASE WHEN p.stock > 0 THEN 1 ELSE 0 END) AS in_stock
    ORDER BY count DESC
    """,
    description="Count, price range and how many are in stock, per currency, for a brand/category filter.",
)

LINE_VARIANTS = q(
    "products.line_variants",
    """
    MATCH (p:Product)-[:MADE_BY]->(:Brand {name: $brand})
    WHERE $line IN p.attr_values
    WITH p ORDER BY p.sku LIMIT $limit
    """ + _PRODUCT,
    description="The variants of a model line (same brand, model_line value among the attribute values).",
)

SIMILAR = q(
    "products.similar",
    """
    MATCH (x:Product {sku: $sku})-[:IN_CATEGORY]->(:Category)<-[:IN_CATEGORY]-(p:Product)
    WHERE p.sku <> x.sku AND p.status = 'active' AND p.currency = x.currency
      AND p.price >= x.price * (1 - $band) AND p.price <= x.price * (1 + $band)
      AND NOT $line IN coalesce(p.attr_values, [])
    WITH p, size([v IN coalesce(p.attr_values, []) WHERE v IN coalesce(x.attr_values, [])]) AS shared,
         abs(p.price - x.price) AS distance
    ORDER BY shared DESC, distance ASC, p.sku LIMIT $limit
    """ + _PRODUCT + ", shared",
    description="Similar products: same category, same currency, within a price band, most shared attribute "
                "values first; other variants of the same line are left out.",
)

CHEAPER = q(
    "products.cheaper",
    """
    MATCH (x:Product {sku: $sku})-[:IN_CATEGORY]->(:Category)<-[:IN_CATEGORY]-(p:Product)
    WHERE p.status = 'active' AND p.currency = x.currency AND p.price < x.price
    WITH p, size([v IN coalesce(p.attr_values, []) WHERE v IN coalesce(x.attr_values, [])]) AS shared,
         CASE WHEN p.stock > 0 THEN 1 ELSE 0 END AS available
    ORDER BY available DESC, shared DESC, coalesce(p.rating, 0) DESC, p.price ASC, p.sku LIMIT $limit
    """ + _PRODUCT + ", shared",
    description="Cheaper alternatives in the same category and currency, in stock and most alike first.",
)

COMPATIBLE = q(
    "products.compatible",
    """
    MATCH (p:Product)
    WHERE p.status = 'active' AND ($target IN p.attr_values OR p.attributes CONTAINS $target_raw)
    WITH p ORDER BY coalesce(p.rating, 0) DESC, p.sku LIMIT $limit
    """ + _PRODUCT,
    description="Accessories whose attributes name a device line (compatible_with = 'Brand Line'); the caller "
                "checks the parsed compatible_with value.",
)

ALSO_BOUGHT = q(
    "products.also_bought",
    """
    MATCH (x:Product {sku: $sku})<-[:CONTAINS]-(o:Order)-[:CONTAINS]->(p:Product)
    WHERE p.sku <> x.sku AND p.status = 'active' AND ($line IS NULL OR NOT $line IN p.attr_values)
    WITH p, count(DISTINCT o) AS together
    ORDER BY together DESC, coalesce(p.rating, 0) DESC, p.sku LIMIT $limit
    """ + _PRODUCT + ", together",
    description="Customers who bought this also bought: co-purchase counts through CONTAINS.",
)

PERSONAL = q(
    "products.personal",
    """
    MATCH (:Customer {customer_id: $customer_id})-[:PLACED]->(:Order)-[:CONTAINS]->(m:Product)
    WITH collect(DISTINCT m) AS mine
    UNWIND mine AS m
    MATCH (m)<-[:CONTAINS]-(:Order)-[:CONTAINS]->(p:Product)
    WHERE NOT p IN mine AND p.status = 'active'
    WITH p, count(*) AS together, collect(DISTINCT m.name)[0] AS because
    ORDER BY CASE WHEN p.stock > 0 THEN 1 ELSE 0 END DESC, together DESC, coalesce(p.rating, 0) DESC, p.sku
    LIMIT $limit
    """ + _PRODUCT + ", together, because",
    description="Personalised: what was bought together with the signed-in customer's own purchases.",
)

PERSONAL_CATEGORIES = q(
    "products.personal_top_rated",
    """
    MATCH (:Customer {customer_id: $customer_id})-[:PLACED]->(:Order)-[:CONTAINS]->(m:Product)
    WITH collect(DISTINCT m) AS mine
    UNWIND mine AS m
    MATCH (m)-[:IN_CATEGORY]->(:Category)<-[:IN_CATEGORY]-(p:Product)
    WHERE NOT p IN mine AND p.status = 'active' AND p.stock > 0
    WITH DISTINCT p, m.name AS because
    WITH p, collect(because)[0] AS because
    ORDER BY coalesce(p.rating, 0) DESC, p.sku LIMIT $limit
    """ + _PRODUCT + ", because",
    description="Personalised fallback: best-rated products in the categories the customer bought from.",
)

_PROMO = """promo.code AS code, promo.description AS description, promo.discount_percent AS discount_percent,
           promo.starts AS starts, promo.ends AS ends, promo.applies_to AS applies_to"""

PROMOTIONS_FOR_PRODUCT = q(
    "products.promotions_for_product",
    """
    MATCH (:Product {sku: $sku})<-[:APPLIES_TO]-(promo:Promotion)
    WHERE """ + _PROMO_IN_FORCE + """
    RETURN """ + _PROMO + """
    UNION
    MATCH (:Product {sku: $sku})-[:MADE_BY]->(:Brand)<-[:APPLIES_TO]-(promo:Promotion)
    WHERE """ + _PROMO_IN_FORCE + """
    RETURN """ + _PROMO + """
    UNION
    MATCH (:Product {sku: $sku})-[:IN_CATEGORY]->(:Category)-[:SUBCATEGORY_OF*0..6]->(:Category)
          <-[:APPLIES_TO]-(promo:Promotion)
    WHERE """ + _PROMO_IN_FORCE + """
    RETURN """ + _PROMO + """
    UNION
    MATCH (promo:Promotion)
    WHERE NOT (promo)-[:APPLIES_TO]->() AND """ + _PROMO_IN_FORCE + """
    RETURN """ + _PROMO + """
    """,
    description="Promotions in force today for a product: its own, its brand's, its categories' (walking up) "
                "and store-wide ones (unordered; the caller sorts).",
)

PROMOTIONS_IN_FORCE = q(
    "products.promotions_in_force",
    """
    MATCH (promo:Promotion)
    WHERE """ + _PROMO_IN_FORCE + """
    RETURN """ + _PROMO + """
    ORDER BY discount_percent DESC, code LIMIT $limit
    """,
    description="Every promotion in force today.",
)

SUPPLIERS = q(
    "products.suppliers",
    """
    UNWIND $skus AS wanted
    MATCH (p:Product {sku: wanted})-[:SUPPLIED_BY]->(s:Supplier)
    RETURN p.sku AS sku, s.supplier_id AS supplier_id, s.name AS name, s.country AS country, s.phone AS phone
    """,
    description="The supplier of each product (by sku): name, country and phone (public business data).",
)

# -- the shop's own fields: attribute keys and values, read for field questions (qa/fields.py) ------
ATTRIBUTE_PAGE = product_scan(
    "products.attribute_page",
    """
    RETURN p.sku AS sku, p.attributes AS attributes, {cursor} AS cursor
    """,
    description="One page of products' attribute objects (a scan: kg/scan.py): the shop's own field names and "
                "values, which field questions are matched against.",
)

FIELD_SUMMARY = q(
    "products.field_summary",
    """
    OPTIONAL MATCH (s:FieldSummary {key: 'fields'})
    RETURN s.stamp AS stamp, s.keys AS keys, s.values AS values
    """,
    description="The shop's attribute keys and values as the last scan found them (qa/fields.py), and the catalog "
                "stamp they belong to: one process scans per catalog change, every other worker reads this.",
)

SAVE_FIELD_SUMMARY = q(
    "products.save_field_summary",
    """
    MERGE (s:FieldSummary {key: 'fields'})
    SET s.stamp = $stamp, s.keys = $keys, s.values = $values
    RETURN s.stamp AS stamp
    """,
    read_only=False,
    description="Keep what a scan of every product's attributes found (JSON texts), for the catalog stamp it scanned.",
)

CURRENCIES = q(
    "products.currencies",
    """
    MATCH (p:Product)
    WHERE p.currency IS NOT NULL
    RETURN p.currency AS currency, count(p) AS products
    """,
    description="How many products are priced in each currency: the shop's own currency, for amounts "
                "(fees, shipping costs) whose rows carry none.",
)

CATALOG_STAMP = q(
    "products.catalog_stamp",
    """
    OPTIONAL MATCH (m:Meta {key: 'catalog'})
    WITH m.version AS version
    MATCH (p:Product)
    RETURN version, count(p) AS products
    """,
    description="The catalog version and the number of products: caches of the shop's field names compare it.",
)

# -- picks for the evaluation set (qa/evaluate.py binds names to real nodes at run time) ------
EVAL_PRODUCTS = q(
    "products.eval_sample",
    """
    MATCH (p:Product)
    WHERE p.status = 'active'
    WITH p ORDER BY p.sku LIMIT $limit
    """ + _PRODUCT,
    description="Evaluation: the first active products by sku.",
)

EVAL_CO_PURCHASED = q(
    "products.eval_co_purchased",
    """
    MATCH (p:Product)<-[:CONTAINS]-(o:Order)-[:CONTAINS]->(x:Product)
    WHERE p.status = 'active' AND x.sku <> p.sku
    WITH p, count(DISTINCT o) AS together ORDER BY together DESC, p.sku LIMIT 1
    """ + _PRODUCT + ", together",
    description="Evaluation: the product with the most co-purchases.",
)

SEARCH_BY_VALUE = q(
    "products.search_by_value",
    """
    MATCH (p:Product)
    WHERE any(v IN coalesce(p.attr_values, []) WHERE all(t IN $tokens WHERE v CONTAINS t))
    WITH p ORDER BY size(p.name), p.sku LIMIT $limit
    """ + _PRODUCT,
    description="Fallback look-up of products one of whose attribute values contains every token (\"that "
                "agatha christie one\": an author, a maker, a series), when no product name matches.",
)
