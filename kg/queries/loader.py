"""Named upsert queries for the importer (kg/loader.py), generated from one table of the graph.

`NODES` restates kg/schema.py's property contract in the order the loader sends values: rows
travel as positional lists (`r[0]` is the key), because FalkorDB receives parameters as text and
a list of lists is a fraction of the size of a list of maps. Every write here is safe to run twice
(MERGE, SET, or a CREATE guarded by the key's unique constraint), which is what lets the store
retry a batch after the server restarts without duplicating anything.

Write order within a batch, and why: a node is upserted with `_h` cleared when its relationships
must change, relationships are replaced, and only then does `seal` store `_h`. A crash between
those steps leaves a node without a hash, which the next import classifies as changed and writes
again; a hash is never stored for a node whose relationships are incomplete.
"""

from __future__ import annotations

from dataclasses import dataclass

from kg.queries import Query, q


@dataclass(frozen=True)
class Rel:
    """A relationship the loader manages for a node type."""

    column: str  # the import column that names the target
    type: str
    target: str  # label
    target_key: str
    incoming: bool = False  # (target)-[:TYPE]->(node), e.g. (Customer)-[:PLACED]->(Order)


@dataclass(frozen=True)
class NodeSpec:
    label: str
    key: str
    props: tuple[str, ...]  # without the key, `_h` and `updated_at`
    rels: tuple[Rel, ...] = ()
    stamped: bool = False  # carries `updated_at`


_APPLIES = tuple(
    Rel("applies_to", "APPLIES_TO", label, key) for label, key in
    (("Category", "name"), ("Brand", "name"), ("Product", "sku"))
)

NODES: dict[str, NodeSpec] = {n.label: n for n in (
    NodeSpec("Category", "name", ("description",),
             (Rel("parent", "SUBCATEGORY_OF", "Category", "name"),)),
    NodeSpec("Brand", "name", ("country",)),
    NodeSpec("Supplier", "supplier_id", ("name", "country", "phone")),
    NodeSpec("Product", "sku",
             ("name", "price", "currency", "stock", "description", "warranty_months", "rating", "status",
              "attributes", "attr_values"),
             (Rel("brand", "MADE_BY", "Brand", "name"), Rel("category", "IN_CATEGORY", "Category", "name"),
              Rel("supplier_id", "SUPPLIED_BY", "Supplier", "supplier_id")),
             stamped=True),
    NodeSpec("Customer", "customer_id", ("name", "email", "phone", "city", "country", "tier")),
    NodeSpec("ShippingMethod", "name", ("min_days", "max_days", "cost", "free_over", "regions")),
    NodeSpec("PaymentMethod", "name", ("description",)),
    NodeSpec("Order", "order_id",
             ("status", "placed_at", "shipped_at", "delivered_at", "eta", "carrier", "tracking_number",
              "shipping_method", "payment_method", "ship_to", "total", "currency"),
             (Rel("customer_id", "PLACED", "Customer", "customer_id", incoming=True),
              Rel("shipping_method", "SHIPPED_VIA", "ShippingMethod", "name"),
              Rel("payment_method", "PAID_WITH", "PaymentMethod", "name"))),
    NodeSpec("Policy", "policy_id", ("type", "title", "text", "days", "fee", "applies_to", "scope"), _APPLIES),
    NodeSpec("Promotion", "code", ("description", "discount_percent", "starts", "ends", "applies_to"), _APPLIES),
    NodeSpec("FAQ", "faq_id", ("question", "answer", "topic")),
)}

# (Order)-[:CONTAINS {quantity, unit_price, discount, _h}]->(Product): order_items are relationships.
CONTAINS_PROPS = ("quantity", "unit_price", "discount")

# Hash layout: 16 hex digits of the node's own properties, then 16 of its relationship targets, so
# the classifier can tell a price change (SET only) from a move to another category (re-link).
HASH_SPLIT = 16


def _classify(n: NodeSpec) -> Query:
    # Per batch: how many rows exist, and a code for each existing row whose hash differs:
    # 4*i + 1 properties changed, 4*i + 2 relationships changed (or no hash: an interrupted write,
    # or a node created implicitly). A first import and an unchanged re-import both get a short
    # answer; only a batch that mixes new and unchanged rows needs `absent` as well. FalkorDB's
    # client parses every list element in Python, so long lists are what costs.
    return q(
        f"loader.{n.label}.classify",
        f"""
        UNWIND $rows AS r
        MATCH (n:{n.label} {{{n.key}: r[0]}})
        RETURN count(n) AS matched,
               collect(CASE WHEN n._h = r[1] THEN null
                            WHEN n._h IS NOT NULL AND substring(n._h, {HASH_SPLIT}) = substring(r[1], {HASH_SPLIT})
                            THEN r[2] * 4 + 1
                            ELSE r[2] * 4 + 2 END) AS changed
        """,
        description=f"How many rows of a batch of {n.label} exist, and which of those differ.",
    )


def _absent(n: NodeSpec) -> Query:
    return q(
        f"loader.{n.label}.absent",
        f"""
        UNWIND $rows AS r
        OPTIONAL MATCH (n:{n.label} {{{n.key}: r[0]}})
        WITH r, n WHERE n IS NULL
        RETURN collect(r[1]) AS absent
        """,
        description=f"Which rows of a batch of {n.label} do not exist yet.",
    )


def one_set_each(var: str, sets: list[str]) -> str:
    """`SET a WITH ... SET b ...`: FalkorDB 4.16 drops the wrong properties when one statement
    clears several of them (one SET clause, several, or REMOVE alike) and one of them is the
    entity's last property; a `WITH` between the assignments avoids it."""
    return f" WITH {var}, r ".join(f"SET {s}" for s in sets)


def _upsert(n: NodeSpec) -> Query:
    sets = [f"n.{p} = r[{i + 1}]" for i, p in enumerate(n.props)]
    sets.append(f"n._h = r[{len(n.props) + 1}]")
    if n.stamped:
        sets.append("n.updated_at = $now")
    return q(
        f"loader.{n.label}.upsert",
        f"UNWIND $rows AS r MERGE (n:{n.label} {{{n.key}: r[0]}}) {one_set_each('n', sets)}",
        read_only=False,
        description=f"Create or update {n.label} nodes by key; a null `_h` marks relationships still to write.",
    )


def _missing(label: str, key: str) -> Query:
    # Reference checks ask for what is *missing*: usually nothing, so the reply stays tiny even
    # when a batch names thousands of existing keys.
    return q(
        f"loader.{label}.missing",
        f"UNWIND $keys AS k OPTIONAL MATCH (n:{label} {{{key}: k}}) WITH k, n WHERE n IS NULL "
        "RETURN collect(k) AS missing",
        description=f"Which of the given {label} keys do not exist.",
    )


def _ids(label: str, key: str) -> Query:
    return q(
        f"loader.{label}.ids",
        f"UNWIND $keys AS k MATCH (n:{label} {{{key}: k}}) RETURN collect([k, id(n)]) AS found",
        description=f"Node ids of the given {label} keys (the few brands, categories, suppliers products name).",
    )


def _unlink(n: NodeSpec) -> list[Query]:
    out = []
    outgoing = sorted({r.type for r in n.rels if not r.incoming})
    incoming = sorted({r.type for r in n.rels if r.incoming})
    if outgoing:
        out.append(q(
            f"loader.{n.label}.unlink",
            f"UNWIND $keys AS k MATCH (n:{n.label} {{{n.key}: k}})-[x:{'|'.join(outgoing)}]->() DELETE x",
            read_only=False,
            description=f"Drop the loader-managed outgoing relationships of re-linked {n.label} nodes.",
        ))
    if incoming:
        out.append(q(
            f"loader.{n.label}.unlink_in",
            f"UNWIND $keys AS k MATCH (n:{n.label} {{{n.key}: k}})<-[x:{'|'.join(incoming)}]-() DELETE x",
            read_only=False,
            description=f"Drop the loader-managed incoming relationships of re-linked {n.label} nodes.",
        ))
    return out


def link_name(n: NodeSpec, rel: Rel) -> str:
    return f"loader.{n.label}.link.{rel.type}.{rel.target}"


def _link(n: NodeSpec, rel: Rel) -> Query:
    pattern = "(t)-[:{0}]->(n)" if rel.incoming else "(n)-[:{0}]->(t)"
    return q(
        link_name(n, rel),
        f"UNWIND $rows AS r MATCH (n:{n.label} {{{n.key}: r[0]}}) "
        f"MATCH (t:{rel.target} {{{rel.target_key}: r[1]}}) MERGE {pattern.format(rel.type)}",
        read_only=False,
        description=f"Link {n.label} nodes to their {rel.target} ({rel.type}); a missing target links nothing.",
    )


def _seal(n: NodeSpec) -> Query:
    return q(
        f"loader.{n.label}.seal",
        f"UNWIND $rows AS r MATCH (n:{n.label} {{{n.key}: r[0]}}) SET n._h = r[1]",
        read_only=False,
        description=f"Store the content hash of {n.label} nodes once their relationships are written.",
    )


def product_create_name(mask: str) -> str:
    return f"loader.Product.create.{mask}"


def _product_create(mask: str) -> Query:
    # The fast path for new products: node and relationships in one statement, targets found by
    # node id (resolved and cached per import) rather than an index look-up per row. CREATE is safe
    # to retry because the unique constraint on sku rejects a second copy; the loader then falls
    # back to the MERGE path for that batch.
    spec = NODES["Product"]
    n_props = len(spec.props)
    props = ", ".join(["sku: r[0]"] + [f"{p}: r[{i + 1}]" for i, p in enumerate(spec.props)]
                      + [f"_h: r[{n_props + 1}]", "updated_at: $now"])
    with_ids, matches, creates = [], [], []
    for j, (flag, rel) in enumerate(zip(mask, spec.rels, strict=True)):
        if flag == "1":
            var = f"t{j}"
            with_ids.append(f"r[{n_props + 2 + j}] AS {var}_id")
            matches.append(f"MATCH ({var}:{rel.target}) WHERE id({var}) = {var}_id")
            creates.append(f"(p)-[:{rel.type}]->({var})")
    head = "UNWIND $rows AS r"
    if with_ids:
        head += " WITH r, " + ", ".join(with_ids) + " " + " ".join(matches)
    body = f"CREATE (p:Product {{{props}}})"
    if creates:
        body += ", " + ", ".join(creates)
    return q(product_create_name(mask), f"{head} {body}", read_only=False,
             description="Create new products with their brand, category and supplier links in one statement.")


def _contains_classify() -> Query:
    return q(
        "loader.CONTAINS.classify",
        """
        UNWIND $rows AS r
        MATCH (:Order {order_id: r[0]})-[c:CONTAINS]->(p:Product)
        WHERE p.sku = r[1]
        RETURN count(c) AS matched, collect(CASE WHEN c._h = r[2] THEN null ELSE r[3] * 4 + 1 END) AS changed
        """,
        description="How many order items of a batch exist, and which of those differ.",
    )


def _contains_absent() -> Query:
    return q(
        "loader.CONTAINS.absent",
        """
        UNWIND $rows AS r
        OPTIONAL MATCH (:Order {order_id: r[0]})-[c:CONTAINS]->(p:Product {sku: r[1]})
        WITH r, c WHERE c IS NULL
        RETURN collect(r[2]) AS absent
        """,
        description="Which order items of a batch do not exist yet.",
    )


CONTAINS_UPSERT = q(
    "loader.CONTAINS.upsert",
    """
    UNWIND $rows AS r
    MATCH (o:Order {order_id: r[0]})
    MATCH (p:Product {sku: r[1]})
    MERGE (o)-[c:CONTAINS]->(p)
    """ + one_set_each("c", ["c.quantity = r[2]", "c.unit_price = r[3]", "c.discount = r[4]", "c._h = r[5]"]),
    read_only=False,
    description="Create or update order items (CONTAINS relationships).",
)

ENSURE = {
    label: q(
        f"loader.{label}.ensure",
        f"UNWIND $keys AS k MERGE (n:{label} {{name: k}}) RETURN collect([k, id(n)]) AS found",
        read_only=False,
        description=f"Create {label} nodes that products name but no import file defines.",
    )
    for label in ("Brand", "Category")
}

BUMP_VERSION = q(
    "loader.meta.bump",
    """
    MERGE (m:Meta {key: 'catalog'})
    SET m.version = coalesce(m.version, 0) + 1, m.updated_at = $now
    RETURN m.version AS version
    """,
    read_only=False,
    description="Bump the catalog version once per import that changed something (caches compare it).",
)
CATALOG_VERSION = q(
    "loader.meta.version",
    "MATCH (m:Meta {key: 'catalog'}) RETURN m.version AS version",
    description="The catalog version.",
)

CLASSIFY = {label: _classify(n) for label, n in NODES.items()}
UPSERT = {label: _upsert(n) for label, n in NODES.items()}
SEAL = {label: _seal(n) for label, n in NODES.items() if n.rels}
UNLINK = {label: _unlink(n) for label, n in NODES.items() if n.rels}
LINK = {(label, rel.type, rel.target): _link(n, rel) for label, n in NODES.items() for rel in n.rels}
MISSING = {label: _missing(label, n.key) for label, n in NODES.items()}
IDS = {label: _ids(label, NODES[label].key) for label in ("Brand", "Category", "Supplier")}
PRODUCT_CREATE = {m: _product_create(m) for m in ("000", "001", "010", "011", "100", "101", "110", "111")}
ABSENT = {label: _absent(n) for label, n in NODES.items()}
CONTAINS_CLASSIFY = _contains_classify()
CONTAINS_ABSENT = _contains_absent()


# -- the audit log's old values (kg/audit.py): one read per batch of changed rows ---------------------------
def _snapshot(n: NodeSpec) -> Query:
    # Properties as one list in NODES order (a list parses faster than a map), and each link's
    # target through OPTIONAL MATCH (pattern comprehensions cost seven times as much here). Columns
    # that are properties too (an order's shipping method) are read from the properties.
    links = [r for r in n.rels if r.column != "applies_to" and r.column not in n.props]
    matches = "".join(
        f" OPTIONAL MATCH (n){'<' if rel.incoming else ''}-[:{rel.type}]-{'' if rel.incoming else '>'}"
        f"(t{j}:{rel.target})" for j, rel in enumerate(links))
    values = ", ".join(f"n.{p}" for p in n.props)
    columns = "".join(f", t{j}.{rel.target_key} AS `{rel.column}`" for j, rel in enumerate(links))
    return q(
        f"loader.{n.label}.snapshot",
        f"UNWIND $keys AS k MATCH (n:{n.label} {{{n.key}: k}}){matches} RETURN k AS key, [{values}] AS props{columns}",
        description=f"The current values of some {n.label} nodes, before an import changes them (audit log).",
    )


SNAPSHOT = {label: _snapshot(n) for label, n in NODES.items()}
CONTAINS_SNAPSHOT = q(
    "loader.CONTAINS.snapshot",
    """
    UNWIND $rows AS r
    MATCH (:Order {order_id: r[0]})-[c:CONTAINS]->(p:Product {sku: r[1]})
    RETURN r[0] AS order_id, r[1] AS sku, c.quantity AS quantity, c.unit_price AS unit_price, c.discount AS discount
    """,
    description="The current values of some order items, before an import changes them (audit log).",
)
