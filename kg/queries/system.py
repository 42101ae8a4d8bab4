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
