"""Order questions and the writes of confirmed actions.

Every order query matches the order THROUGH the signed-in customer,
`(c:Customer {customer_id: $customer_id})-[:PLACED]->(o:Order {order_id: $order_id})`, and never
looks an order up by id alone: an order that is not the caller's is then indistinguishable from
one that does not exist, in the rows and in the work the server does.

The writes re-check the rule that allowed the action inside the same statement (status, no
earlier request, not already written under this proposal's request id), so a double submit or a
race with a status change writes nothing; they are
`idempotent=False`, so the store never retries them once they may have reached the server.
"""

from kg.queries import q

_ORDER = """o.order_id AS order_id, o.status AS status, o.placed_at AS placed_at, o.shipped_at AS shipped_at,
           o.delivered_at AS delivered_at, o.eta AS eta, o.carrier AS carrier, o.tracking_number AS tracking_number,
           o.shipping_method AS shipping_method, o.payment_method AS payment_method, o.ship_to AS ship_to,
           o.total AS total, o.currency AS currency"""

BY_ID_FOR_CUSTOMER = q(
    "orders.by_id_for_customer",
    """
    MATCH (:Customer {customer_id: $customer_id})-[:PLACED]->(o:Order {order_id: $order_id})
    RETURN """ + _ORDER,
    description="One order of the signed-in customer (nothing for another customer's order).",
)

ITEMS_FOR_CUSTOMER = q(
    "orders.items_for_customer",
    """
    MATCH (:Customer {customer_id: $customer_id})-[:PLACED]->(o:Order {order_id: $order_id})-[ci:CONTAINS]->(p:Product)
    OPTIONAL MATCH (p)-[:IN_CATEGORY]->(c:Category)
    RETURN o.order_id AS order_id, p.sku AS sku, p.name AS name, c.name AS category, ci.quantity AS quantity,
           ci.unit_price AS unit_price, ci.discount AS discount, o.currency AS currency
    ORDER BY p.sku
    """,
    description="The items of one order of the signed-in customer.",
)

RECENT_FOR_CUSTOMER = q(
    "orders.recent_for_customer",
    """
    MATCH (:Customer {customer_id: $customer_id})-[:PLACED]->(o:Order)
    WHERE size($statuses) = 0 OR o.status IN $statuses
    WITH o ORDER BY o.placed_at DESC, o.order_id DESC LIMIT $limit
    OPTIONAL MATCH (o)-[:CONTAINS]->(p:Product)
    WITH o, count(p) AS item_count, collect(p.name)[0] AS first_item
    RETURN """ + _ORDER + """, item_count, first_item
    ORDER BY placed_at DESC, order_id DESC
    """,
    description="The signed-in customer's most recent orders, optionally only in some statuses.",
)

REQUESTS_FOR_CUSTOMER = q(
    "orders.requests_for_customer",
    """
    MATCH (:Customer {customer_id: $customer_id})-[:REQUESTED]->(r:Request)-[:CONCERNS]->(o:Order)
    WHERE ($order_id IS NULL OR o.order_id = $order_id) AND r.kind IN $kinds
    RETURN r.request_id AS request_id, r.kind AS kind, r.status AS status, r.reason AS reason,
           r.created_at AS created_at, o.order_id AS order_id, o.status AS order_status, o.total AS total,
           o.currency AS currency
    ORDER BY r.created_at DESC LIMIT $limit
    """,
    description="The signed-in customer's requests (returns, refunds...), optionally for one order.",
)

CANCEL = q(
    "orders.cancel",
    """
    MATCH (c:Customer {customer_id: $customer_id})-[:PLACED]->(o:Order {order_id: $order_id})
    WHERE o.status IN $statuses AND NOT (c)-[:REQUESTED]->(:Request {request_id: $request_id})
    SET o.status = 'cancelled'
    CREATE (r:Request {request_id: $request_id, kind: 'cancel', status: 'done', reason: $reason,
                       created_at: $now, created_by: $created_by})
    CREATE (c)-[:REQUESTED]->(r)
    CREATE (r)-[:CONCERNS]->(o)
    RETURN o.order_id AS order_id, o.status AS status, r.request_id AS request_id
    """,
    read_only=False,
    idempotent=False,
    description="Cancel an order of the signed-in customer in one of the given statuses (placed or paid; shipped "
                "too where the cancellation policy allows it for a fee), recording a request.",
)

CHANGE_ADDRESS = q(
    "orders.change_address",
    """
    MATCH (c:Customer {customer_id: $customer_id})-[:PLACED]->(o:Order {order_id: $order_id})
    WHERE o.status IN ['placed', 'paid'] AND NOT (c)-[:REQUESTED]->(:Request {request_id: $request_id})
    SET o.ship_to = $ship_to
    CREATE (r:Request {request_id: $request_id, kind: 'change_address', status: 'done', reason: $reason,
                       created_at: $now, created_by: $created_by})
    CREATE (c)-[:REQUESTED]->(r)
    CREATE (r)-[:CONCERNS]->(o)
    RETURN o.order_id AS order_id, o.ship_to AS ship_to, r.request_id AS request_id
    """,
    read_only=False,
    idempotent=False,
    description="Change the shipping address of an order that has not shipped, recording a request.",
)

REQUEST_RETURN = q(
    "orders.request_return",
    """
    MATCH (c:Customer {customer_id: $customer_id})-[:PLACED]->(o:Order {order_id: $order_id})
    WHERE o.status = 'delivered' AND NOT (o)<-[:CONCERNS]-(:Request {kind: 'return'})
    CREATE (r:Request {request_id: $request_id, kind: 'return', status: 'open', reason: $reason,
                       created_at: $now, created_by: $created_by})
    CREATE (c)-[:REQUESTED]->(r)
    CREATE (r)-[:CONCERNS]->(o)
    RETURN o.order_id AS order_id, r.request_id AS request_id, r.status AS status
    """,
    read_only=False,
    idempotent=False,
    description="Open a return (and refund) request for a delivered order, once per order.",
)

# -- picks for the evaluation set (qa/evaluate.py binds names to real nodes at run time) ------
EVAL_CUSTOMER_ORDER = q(
    "orders.eval_pick",
    """
    MATCH (c:Customer)-[:PLACED]->(o:Order)
    WHERE o.status = $status
    WITH c, o ORDER BY o.placed_at DESC, o.order_id LIMIT 1
    RETURN c.customer_id AS customer_id, """ + _ORDER,
    description="Evaluation: the most recent order in a status, with its customer.",
)

EVAL_OTHER_CUSTOMER = q(
    "orders.eval_other_customer",
    """
    MATCH (c:Customer)
    WHERE c.customer_id <> $customer_id
    RETURN c.customer_id AS customer_id ORDER BY customer_id LIMIT 1
    """,
    description="Evaluation: some customer other than the given one.",
)
