"""Queries about the graph itself: health, counts, schema; sample customers for the development sign-in."""

from kg.queries import q

PING = q("system.ping", "RETURN 1 AS ok")
COUNT_BY_LABEL = q(
    "system.count_by_label",
    "MATCH (n) RETURN labels(n)[0] AS label, count(n) AS count ORDER BY label",
)
COUNT_RELATIONSHIPS = q(
    "system.count_relationships",
    "MATCH ()-[r]->() RETURN type(r) AS type, count(r) AS count ORDER BY type",
)
SAMPLE_CUSTOMERS = q(
    "system.sample_customers",
    "MATCH (c:Customer)-[:PLACED]->(:Order) RETURN DISTINCT c.customer_id AS customer_id "
    "ORDER BY customer_id LIMIT $limit",
    description="A few customers with orders, for the development sign-in on the chat page.",
)

INDEXES_BUILDING = q(
    "system.indexes_building",
    """
    CALL db.indexes() YIELD label, status
    WITH label, status WHERE status <> 'OPERATIONAL'
    RETURN label, status
    """,
    variants={"neo4j": """
    SHOW INDEXES YIELD labelsOrTypes, state, populationPercent
    WITH labelsOrTypes, state, populationPercent WHERE state <> 'ONLINE'
    RETURN coalesce(labelsOrTypes[0], '') AS label, state + ' ' + toString(populationPercent) + '%' AS status
    """},
    description="The graph's indexes not yet answering look-ups, by label, with the server's own word on their "
                "progress: a server builds the indexes of the data it loads, and of an index just created, in the "
                "background, and a look-up meanwhile scans every node of the label.",
)
