"""The importer against a real embedded FalkorDB: every file type, the per-row report, idempotence,
updates that re-point relationships, strict and dry runs, literal values, oversized fields, and the
whole sample store."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from common.errors import ImportError_
from kg.loader import FileReport, ImportReport, Source, import_files, import_path
from kg.queries import Query, get
from kg.queries.loader import NODES

# -- a small store that uses every file type and column ---------------------------------------------
BASE: dict[str, str] = {
    "categories.csv": """name,parent,description
Electronics,,Devices
Headphones,Electronics,Over-ear and in-ear
Shoes,,Footwear
""",
    "brands.csv": """name,country
Acme,US
Zed,SE
""",
    "suppliers.csv": """supplier_id,name,country,phone
S1,Supply One,US,+1 555 0100
S2,Supply Two,DE,
""",
    "products.csv": """sku,name,brand,category,supplier_id,price,currency,stock,description,warranty_months,rating,status,attributes
A1,Aurora X2,Acme,Headphones,S1,249.99,,12,"Great sound, long battery",24,4.5,active,"{""colour"": ""Black"", ""weight_g"": 245}"
A2,Aurora X2 Silver,Acme,Headphones,S1,249.5,USD,0,,,,,colour=Silver;size=M
B1,Trail Runner,Zed,Shoes,S2,89,EUR,30,Light shoe,,3.9,discontinued,
""",
    "customers.csv": """customer_id,name,email,phone,city,country,tier
C1,Ann Example,ann@example.com,,Berlin,DE,gold
C2,Bob Example,,,,,
""",
    "shipping_methods.csv": """name,min_days,max_days,cost,free_over,regions
Standard,3,5,4.99,50,EU;US
Express,1,2,14.99,,US
""",
    "payment_methods.csv": """name,description
Card,Visa and Mastercard
PayPal,
""",
    "orders.csv": """order_id,customer_id,status,placed_at,shipped_at,delivered_at,eta,carrier,tracking_number,shipping_method,payment_method,ship_to,total,currency
1001,C1,delivered,2026-01-02,2026-01-03T10:00:00+02:00,2026-01-05T12:30:00Z,,DHL,TRK1,Standard,Card,"1 Main St, Berlin",499.48,
1002,C2,placed,2026-02-01T09:15:00,,,2026-02-05,,,Express,Crypto,,89.00,EUR
""",
    "order_items.csv": """order_id,sku,quantity,unit_price,discount
1001,A1,1,249.99,0
1001,A2,1,249.49,0.1
1002,B1,1,89,
""",
    "policies.csv": """policy_id,type,title,text,days,fee,applies_to
P1,return,Returns,30 days to return anything,30,,
P2,warranty,Headphone warranty,Two years on headphones,730,,category:Headphones
P3,Return,Acme returns,Acme products: 60 days,60,5,brand:Acme;sku:A1
""",
    "promotions.csv": """code,description,discount_percent,starts,ends,applies_to
SPRING,Spring sale,15,2026-03-01,2026-03-31T23:59:59Z,category:Shoes
ALL5,Five off,5,,,
""",
    "faqs.csv": """question,answer,topic
How do I reset my password?,Use the link on the sign-in page.,account
Do you ship abroad?,Yes.,shipping
""",
}

NODE_COUNTS = {"Category": 3, "Brand": 2, "Supplier": 2, "Product": 3, "Customer": 2, "ShippingMethod": 2,
               "PaymentMethod": 2, "Order": 2, "Policy": 3, "Promotion": 2, "FAQ": 2, "Meta": 1}
REL_COUNTS = {"SUBCATEGORY_OF": 1, "MADE_BY": 3, "IN_CATEGORY": 3, "SUPPLIED_BY": 3, "PLACED": 2, "SHIPPED_VIA": 2,
              "PAID_WITH": 1, "CONTAINS": 3, "APPLIES_TO": 4}

NODES_Q = Query("test.import.nodes", "MATCH (n) RETURN labels(n)[0] AS label, properties(n) AS props")
_KEY = "coalesce({0}.sku, {0}.order_id, {0}.customer_id, {0}.supplier_id, {0}.policy_id, {0}.code, {0}.faq_id, {0}.name)"
RELS_Q = Query("test.import.rels", f"MATCH (a)-[r]->(b) RETURN type(r) AS type, labels(a)[0] AS la, {_KEY.format('a')} AS a, "
               f"labels(b)[0] AS lb, {_KEY.format('b')} AS b, properties(r) AS props")
KEYS = {label: spec.key for label, spec in NODES.items()} | {"Meta": "key"}
NUMERIC = {"price", "stock", "warranty_months", "rating", "min_days", "max_days", "cost", "free_over", "quantity",
           "unit_price", "discount", "days", "fee", "discount_percent", "total"}


def write(tmp: Path, files: dict[str, str | bytes]) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (tmp / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return tmp


def to_jsonl(csv_text: str) -> str:
    """The same rows as JSON Lines, with numbers as JSON numbers and attributes as objects."""
    out = []
    for row in csv.DictReader(io.StringIO(csv_text)):
        obj: dict = {}
        for k, v in row.items():
            if v == "":
                continue
            if k in NUMERIC:
                obj[k] = float(v) if "." in v else int(v)
            elif k == "attributes" and v.startswith("{"):
                obj[k] = json.loads(v)
            else:
                obj[k] = v
        out.append(json.dumps(obj))
    return "\n".join(out) + "\n"


def run(store, settings, tmp: Path, files: dict[str, str | bytes], **kw) -> ImportReport:
    kw.setdefault("progress", False)
    return import_path(store, write(tmp, files), settings=settings, **kw)


def counts(store) -> tuple[dict[str, int], dict[str, int]]:
    nodes = {r["label"]: r["count"] for r in store.run(get("system.count_by_label"))}
    rels = {r["type"]: r["count"] for r in store.run(get("system.count_relationships"))}
    return nodes, rels


def snapshot(store, *, volatile=("updated_at",)) -> tuple[Counter, Counter]:
    """Every node and relationship with its properties (minus `volatile` ones), as multisets.

    Built client-side: this FalkorDB build sometimes returns empty strings from string-building
    expressions (toJSON, string.join over comprehensions) evaluated over many nodes.
    """
    def freeze(props: dict) -> tuple:
        return tuple(sorted((k, json.dumps(v)) for k, v in props.items() if k not in volatile))

    nodes = Counter((r["label"], freeze(r["props"])) for r in store.run(NODES_Q) if r["label"] != "Meta")
    rels = Counter((r["type"], r["la"], r["a"], r["lb"], r["b"], freeze(r["props"])) for r in store.run(RELS_Q))
    return nodes, rels


def node(store, label: str, key) -> dict:
    rows = [r["props"] for r in store.run(NODES_Q) if r["label"] == label and r["props"].get(KEYS[label]) == key]
    assert len(rows) == 1, (label, key, rows)
    return rows[0]


def targets(store, label: str, key, rel: str) -> set:
    return {(r["lb"], r["b"]) for r in store.run(RELS_Q) if r["type"] == rel and r["la"] == label and r["a"] == key}


def errors(report: ImportReport) -> list[tuple]:
    return [(e.file, e.line, e.column, e.reason) for e in report.errors]


def by_file(report: ImportReport) -> dict[str, dict]:
    return {f.file: f.model_dump() for f in report.files}


def tally(report: ImportReport, file: str) -> tuple[int, int, int, int]:
    f = by_file(report)[file]
    return f["created"], f["updated"], f["unchanged"], f["rejected"]


# -- every file type -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_every_file_type_loads(store, settings, tmp_path, fmt):
    files = BASE if fmt == "csv" else {k.replace(".csv", ".jsonl"): to_jsonl(v) for k, v in BASE.items()}
    report = run(store, settings, tmp_path, files)
    assert errors(report) == [] and report.written and report.version == 1
    assert [f.type for f in report.files] == ["categories", "brands", "suppliers", "products", "customers",
                                              "shipping_methods", "payment_methods", "orders", "order_items",
                                              "policies", "promotions", "faqs"]
    assert all(f.created == f.rows and f.rejected == 0 and not f.failed for f in report.files)
    assert counts(store) == (NODE_COUNTS, REL_COUNTS)

    a1 = node(store, "Product", "A1")
    assert a1["price"] == 249.99 and a1["currency"] == "USD" and a1["stock"] == 12 and a1["rating"] == 4.5
    assert a1["warranty_months"] == 24 and a1["status"] == "active"
    assert json.loads(a1["attributes"]) == {"colour": "Black", "weight_g": 245}
    assert sorted(a1["attr_values"]) == ["245", "black"]
    assert len(a1["_h"]) == 32 and a1["updated_at"].endswith("Z")
    a2 = node(store, "Product", "A2")
    assert json.loads(a2["attributes"]) == {"colour": "Silver", "size": "M"} and a2["stock"] == 0
    assert "warranty_months" not in a2 and "rating" not in a2  # absent, not invented
    assert node(store, "Product", "B1")["status"] == "discontinued"
    assert targets(store, "Product", "A1", "MADE_BY") == {("Brand", "Acme")}
    assert targets(store, "Product", "A1", "IN_CATEGORY") == {("Category", "Headphones")}
    assert targets(store, "Product", "B1", "SUPPLIED_BY") == {("Supplier", "S2")}
    assert targets(store, "Category", "Headphones", "SUBCATEGORY_OF") == {("Category", "Electronics")}

    o1 = node(store, "Order", "1001")
    assert o1["placed_at"] == "2026-01-02T00:00:00Z" and o1["shipped_at"] == "2026-01-03T08:00:00Z"
    assert o1["delivered_at"] == "2026-01-05T12:30:00Z" and o1["total"] == 499.48 and o1["currency"] == "USD"
    o2 = node(store, "Order", "1002")
    assert o2["placed_at"] == "2026-02-01T09:15:00Z" and o2["eta"] == "2026-02-05T00:00:00Z"
    assert o2["payment_method"] == "Crypto" and targets(store, "Order", "1002", "PAID_WITH") == set()
    assert targets(store, "Order", "1002", "SHIPPED_VIA") == {("ShippingMethod", "Express")}
    assert targets(store, "Customer", "C1", "PLACED") == {("Order", "1001")}
    items = {(r["b"], r["props"]["quantity"], r["props"].get("unit_price"), r["props"].get("discount"))
             for r in store.run(RELS_Q) if r["type"] == "CONTAINS"}
    assert items == {("A1", 1, 249.99, 0.0), ("A2", 1, 249.49, 0.1), ("B1", 1, 89.0, None)}

    assert node(store, "ShippingMethod", "Standard")["regions"] == ["EU", "US"]
    p3 = node(store, "Policy", "P3")
    assert p3["type"] == "return" and p3["scope"] == "sku" and p3["applies_to"] == "brand:Acme;sku:A1" and p3["fee"] == 5.0
    assert node(store, "Policy", "P1")["scope"] == "store" and node(store, "Policy", "P2")["scope"] == "category"
    assert targets(store, "Policy", "P3", "APPLIES_TO") == {("Brand", "Acme"), ("Product", "A1")}
    assert node(store, "Promotion", "SPRING")["ends"] == "2026-03-31T23:59:59Z"
    faqs = [r["props"] for r in store.run(NODES_Q) if r["label"] == "FAQ"]
    assert {len(f["faq_id"]) for f in faqs} == {16}


def test_csv_and_jsonl_give_the_same_graph(store, settings, tmp_path):
    run(store, settings, tmp_path / "csv", BASE)
    first = snapshot(store)
    other = settings.model_copy(update={"graph_name": settings.graph_name + "_j"})
    from kg.backends.falkordb import FalkorDBStore
    from kg.schema import ensure_schema

    s2 = FalkorDBStore.from_settings(other)
    ensure_schema(s2)
    try:
        run(s2, other, tmp_path / "jsonl", {k.replace(".csv", ".jsonl"): to_jsonl(v) for k, v in BASE.items()})
        assert snapshot(s2) == first
    finally:
        s2.redis.execute_command("GRAPH.DELETE", other.graph_name)
        s2.close()


# -- idempotence and updates --------------------------------------------------------------------------------
def test_second_import_changes_nothing(store, settings, tmp_path):
    run(store, settings, tmp_path, BASE)
    before = snapshot(store, volatile=())
    report = run(store, settings, tmp_path, BASE)
    assert not report.written and report.version == 1 and errors(report) == []
    assert all(f.unchanged == f.rows and f.created == f.updated == 0 for f in report.files)
    assert snapshot(store, volatile=()) == before  # updated_at and the catalog version included


def test_updates_repoint_relationships(store, settings, tmp_path):
    run(store, settings, tmp_path / "v1", BASE)
    changed = dict(BASE)
    changed["products.csv"] = (BASE["products.csv"]
                               .replace("A1,Aurora X2,Acme,Headphones,S1,249.99", "A1,Aurora X2,Zed,Shoes,S2,199.00")
                               .replace("A2,Aurora X2 Silver,Acme,Headphones,S1,249.5", "A2,Aurora X2 Silver,Acme,Headphones,S1,239.5")
                               .replace("B1,Trail Runner,Zed,Shoes,S2,89,EUR,30,Light shoe,,3.9,discontinued,",
                                        "B1,Trail Runner,Zed,Shoes,,89,EUR,30,Light shoe,,3.9,discontinued,"))
    changed["orders.csv"] = BASE["orders.csv"].replace("1002,C2,placed", "1002,C1,paid")
    changed["policies.csv"] = BASE["policies.csv"].replace("brand:Acme;sku:A1", "category:Shoes")
    changed["categories.csv"] = BASE["categories.csv"].replace("Headphones,Electronics", "Headphones,")
    report = run(store, settings, tmp_path / "v2", changed)
    assert tally(report, "products.csv") == (0, 3, 0, 0)
    assert tally(report, "orders.csv") == (0, 1, 1, 0)
    assert tally(report, "policies.csv") == (0, 1, 2, 0)
    assert report.version == 2
    # A moved product loses its old links and gains the new ones; nothing is duplicated.
    assert targets(store, "Product", "A1", "MADE_BY") == {("Brand", "Zed")}
    assert targets(store, "Product", "A1", "IN_CATEGORY") == {("Category", "Shoes")}
    assert targets(store, "Product", "A1", "SUPPLIED_BY") == {("Supplier", "S2")}
    assert node(store, "Product", "A1")["price"] == 199.0
    assert node(store, "Product", "A2")["price"] == 239.5  # a price change only: links untouched
    assert targets(store, "Product", "A2", "IN_CATEGORY") == {("Category", "Headphones")}
    assert targets(store, "Product", "B1", "SUPPLIED_BY") == set()  # a cleared supplier is unlinked
    assert targets(store, "Customer", "C2", "PLACED") == set()
    assert targets(store, "Customer", "C1", "PLACED") == {("Order", "1001"), ("Order", "1002")}
    assert targets(store, "Policy", "P3", "APPLIES_TO") == {("Category", "Shoes")}
    assert node(store, "Policy", "P3")["scope"] == "category"
    assert targets(store, "Category", "Headphones", "SUBCATEGORY_OF") == set()
    nodes, rels = counts(store)
    assert nodes == NODE_COUNTS
    expected = REL_COUNTS | {"SUPPLIED_BY": 2, "APPLIES_TO": 3}
    del expected["SUBCATEGORY_OF"]
    assert rels == expected
    # And the new state is itself stable.
    again = run(store, settings, tmp_path / "v2", changed)
    assert not again.written and all(f.unchanged == f.rows for f in again.files)


def test_discontinuing_is_an_update_not_a_delete(store, settings, tmp_path):
    run(store, settings, tmp_path / "v1", BASE)
    only = {"products.csv": BASE["products.csv"].replace("12,\"Great sound, long battery\",24,4.5,active",
                                                         "12,\"Great sound, long battery\",24,4.5,discontinued")}
    report = run(store, settings, tmp_path / "v2", only)
    assert tally(report, "products.csv") == (0, 1, 2, 0)
    assert node(store, "Product", "A1")["status"] == "discontinued"
    assert counts(store) == (NODE_COUNTS, REL_COUNTS)
    # A file that no longer lists a product deletes nothing either.
    run(store, settings, tmp_path / "v3", {"products.csv": "sku,name\n"})
    assert counts(store)[0]["Product"] == 3


def test_catalog_version_bumps_once_per_changing_import(store, settings, tmp_path):
    assert run(store, settings, tmp_path / "a", BASE).version == 1
    assert run(store, settings, tmp_path / "a", BASE).version == 1
    report = run(store, settings, tmp_path / "b", {"brands.csv": "name,country\nAcme,CA\nNew,NO\n"})
    assert report.version == 2 and report.written
    assert tally(report, "brands.csv") == (1, 1, 0, 0)


# -- the per-row report -----------------------------------------------------------------------------------
def _append(file: str, row: str) -> tuple[dict[str, str], int]:
    files = dict(BASE)
    files[file] = BASE[file] + row + "\n"
    return files, BASE[file].count("\n") + 1


BAD_ROWS = [
    ("products.csv", "X1,,Acme,Headphones,S1,1,,1,,,,,", "name", "missing required value"),
    ("products.csv", "X1,Thing,Acme,Headphones,S1,abc,,1,,,,,", "price", "not a number: 'abc'"),
    ("products.csv", "X1,Thing,Acme,Headphones,S1,-1,,1,,,,,", "price", "must not be negative"),
    ("products.csv", "X1,Thing,Acme,Headphones,S1,1,,3.5,,,,,", "stock", "must be a whole number: '3.5'"),
    ("products.csv", "X1,Thing,Acme,Headphones,S1,1,,-2,,,,,", "stock", "must not be negative"),
    ("products.csv", "X1,Thing,Acme,Headphones,S1,1,,1,,,7,,", "rating", "must be between 0 and 5"),
    ("products.csv", "X1,Thing,Acme,Headphones,S1,1,,1,,,,gone,", "status", "unknown status 'gone'"),
    ("products.csv", "X1,Thing,Acme,Headphones,S1,1,dollars,1,,,,,", "currency", "not a 3-letter currency code"),
    ("products.csv", "X1,Thing,Acme,Headphones,S9,1,,1,,,,,", "supplier_id", "unknown supplier_id 'S9'"),
    ("products.csv", "X1,Thing,Acme,Headphones,S1,1,,1,,,,,{bad", "attributes", "bad attributes: invalid JSON"),
    ("products.csv", 'X1,Thing,Acme,Headphones,S1,1,,1,,,,,"{""a`b"": 1}"', "attributes", "contains a backtick"),
    ("products.csv", "X1,Thing,Acme,Headphones,S1,1,,1,,,,,=x", "attributes", "a key is empty"),
    ("products.csv", "X1,Thing,Acme,Headphones,S1,1,,1,,,,,colour", "attributes", "is not key=value"),
    ("products.csv", "A1,Again,Acme,Headphones,S1,1,,1,,,,,", "sku", "duplicate sku 'A1' (first on line 2)"),
    ("products.csv", "X1,Thing,Acme,Headphones,S1,1,,1,,,,,,extra", None, "the row has 14 fields, the header has 13"),
    ("products.csv", 'X1,"Thing"x,Acme,Headphones,S1,1,,1,,,,,', None, "malformed quoting"),
    ("products.csv", "X1,Th\x00ing,Acme,Headphones,S1,1,,1,,,,,", "name", "contains a NUL character"),
    ("order_items.csv", "1001,NOPE,1,,", "sku", "unknown sku 'NOPE'"),
    ("order_items.csv", "9999,A1,1,,", "order_id", "unknown order_id '9999'"),
    ("order_items.csv", "1002,A1,1,,1.5", "discount", "must be between 0 and 1"),
    ("order_items.csv", "1002,A1,0,,", "quantity", "must be at least 1"),
    ("order_items.csv", "1001,A1,2,,", "sku", "duplicate order item (order '1001', sku 'A1') (first on line 2)"),
    ("orders.csv", "1003,C9,placed,2026-01-01,,,,,,,,,,", "customer_id", "unknown customer_id 'C9'"),
    ("orders.csv", "1003,C1,lost,2026-01-01,,,,,,,,,,", "status", "unknown status 'lost'"),
    ("orders.csv", "1003,C1,placed,2026-13-01,,,,,,,,,,", "placed_at", "not an ISO 8601 date: '2026-13-01'"),
    ("orders.csv", "1003,C1,placed,,,,,,,,,,,", "placed_at", "missing required value"),
    ("orders.csv", "1003,C1,placed,2026-01-01,,,,,,,,,-5,", "total", "must not be negative"),
    ("policies.csv", "P9,magic,T,X,,,", "type", "unknown policy type 'magic'"),
    ("policies.csv", "P9,return,T,X,,,category:Nope", "applies_to", "unknown category 'Nope'"),
    ("policies.csv", "P9,return,T,X,,,brand:Nope", "applies_to", "unknown brand 'Nope'"),
    ("policies.csv", "P9,return,T,X,,,sku:Nope", "applies_to", "unknown sku 'Nope'"),
    ("policies.csv", "P9,return,T,X,,,colour:red", "applies_to", "bad applies_to entry"),
    ("policies.csv", "P9,return,T,X,-3,,", "days", "must not be negative"),
    ("promotions.csv", "BIG,Too much,120,,,", "discount_percent", "must be between 0 and 100"),
    ("promotions.csv", "BACK,Backwards,5,2026-05-01,2026-04-01,", "ends", "is before starts"),
    ("promotions.csv", "NOPE,Unknown target,5,,,brand:Nope", "applies_to", "unknown brand 'Nope'"),
    ("categories.csv", "Cables,Nowhere,", "parent", "unknown parent category 'Nowhere'"),
    ("categories.csv", "Loop,Loop,", "parent", "cannot be its own parent"),
    ("shipping_methods.csv", "Slow,9,2,1,,", "max_days", "less than min_days"),
    ("customers.csv", "C1,Someone Else,,,,,", "customer_id", "duplicate customer_id 'C1'"),
    ("faqs.csv", "  do you SHIP abroad? ,Again.,", "question", "duplicate question"),
    ("suppliers.csv", "S3,,,", "name", "missing required value"),
]


@pytest.mark.parametrize("file, row, column, reason", BAD_ROWS,
                         ids=[f"{f.split('.')[0]}-{c or 'row'}-{i}" for i, (f, _, c, _) in enumerate(BAD_ROWS)])
def test_bad_row_is_reported_and_good_rows_load(store, settings, tmp_path, file, row, column, reason):
    files, line = _append(file, row)
    report = run(store, settings, tmp_path, files)
    assert len(report.errors) == 1, errors(report)
    e = report.errors[0]
    assert (e.file, e.line, e.column) == (file, line, column)
    assert reason in e.reason
    fr = by_file(report)[file]
    assert fr["rejected"] == 1 and fr["rows"] == line - 1 and fr["created"] == line - 2
    assert report.written
    nodes, rels = counts(store)
    assert nodes == NODE_COUNTS and rels == REL_COUNTS  # every good row of every file still loaded


def test_several_problems_in_one_row_are_all_reported(store, settings, tmp_path):
    files, line = _append("products.csv", "X1,,Acme,Headphones,S9,abc,,-1,,x,9,gone,")
    report = run(store, settings, tmp_path, files)
    assert sorted(e.column for e in report.errors) == ["name", "price", "rating", "status", "stock", "warranty_months"]
    assert {e.line for e in report.errors} == {line}
    assert by_file(report)["products.csv"]["rejected"] == 1


def test_reference_to_a_rejected_row_is_rejected_too(store, settings, tmp_path):
    files = dict(BASE)
    files["products.csv"] += "X1,Broken,Acme,Headphones,S1,oops,,1,,,,,\n"
    files["order_items.csv"] += "1002,X1,1,,\n"
    report = run(store, settings, tmp_path, files)
    assert [(e.file, e.line, e.column) for e in report.errors] == [("products.csv", 5, "price"),
                                                                   ("order_items.csv", 5, "sku")]


def test_physical_line_numbers_with_multiline_fields(store, settings, tmp_path):
    products = ('sku,name,brand,category,supplier_id,price,currency,stock,description,warranty_months,rating,status,attributes\n'
                'A1,One,Acme,Headphones,S1,1,,1,"first\nsecond\nthird line",,,,\n'   # lines 2-4
                'A2,Two,Acme,Headphones,S1,bad,,1,,,,,\n'                            # line 5
                'A3,Three,Acme,Headphones,S1,2,,1,"x\r\ny",,,,\n'                     # lines 6-7
                'A4,"Four\n(multi-line)",Acme,Headphones,S1,-2,,1,,,,,\n')           # lines 8-9
    files = {k: v for k, v in BASE.items() if k in ("categories.csv", "brands.csv", "suppliers.csv")}
    report = run(store, settings, tmp_path, files | {"products.csv": products})
    assert [(e.line, e.column) for e in report.errors] == [(5, "price"), (8, "price")]
    assert node(store, "Product", "A1")["description"] == "first\nsecond\nthird line"
    assert node(store, "Product", "A3")["description"] == "x\r\ny"


def test_bom_crlf_header_case_and_delimiter(store, settings, tmp_path):
    text = ("\ufeff Supplier_ID ; NAME ;Country;phone\r\nS1;Supply One;US;\r\nS2;\"Two; Ltd\";DE;+49\r\n")
    report = run(store, settings, tmp_path, {"suppliers.csv": text.encode()}, delimiter=";")
    assert errors(report) == [] and by_file(report)["suppliers.csv"]["created"] == 2
    assert (node(store, "Supplier", "S2")["name"], node(store, "Supplier", "S2")["phone"]) == ("Two; Ltd", "+49")
    assert node(store, "Supplier", "S1")["country"] == "US"  # no stray \r
    tabbed = run(store, settings, tmp_path / "t", {"brands.csv": "name\tcountry\nTabby\tFI\n"}, delimiter="\\t")
    assert errors(tabbed) == [] and node(store, "Brand", "Tabby")["country"] == "FI"
    with pytest.raises(ImportError_):
        run(store, settings, tmp_path / "x", {"brands.csv": "name\n"}, delimiter=";;")


def test_other_encodings_are_reported(store, settings, tmp_path):
    latin1 = "name,country\nPlain,US\nCaf\u00e9 Brand,FR\n".encode("latin-1")
    utf16 = "name,country\nWide,US\n".encode("utf-16")
    report = run(store, settings, tmp_path, {"brands.csv": latin1, "suppliers.csv": utf16})
    assert [(e.file, e.line) for e in report.errors] == [("brands.csv", 3), ("suppliers.csv", 1)]
    assert "not valid UTF-8" in report.errors[0].reason and "UTF-16" in report.errors[1].reason
    files = by_file(report)
    assert files["brands.csv"]["created"] == 1 and files["brands.csv"]["rejected"] == 1
    assert files["suppliers.csv"]["failed"] and files["suppliers.csv"]["rows"] == 0


def test_unknown_columns_become_product_attributes_and_warn_elsewhere(store, settings, tmp_path):
    files = {k: v for k, v in BASE.items() if k in ("categories.csv", "suppliers.csv")}
    files["brands.csv"] = "name,country,founded,ceo\nAcme,US,1950,Wile\nZed,SE,,\n"
    files["products.csv"] = ("sku,name,brand,category,Colour, Screen Size ,attributes\n"
                             "A1,One,Acme,Headphones,Black,,size=M\n"
                             "A2,Two,Acme,Headphones,White,6.1 in,\"{\"\"colour\"\": \"\"Red\"\"}\"\n")
    report = run(store, settings, tmp_path, files)
    assert errors(report) == []
    assert report.warnings == ["brands.csv: unknown columns ignored: founded, ceo"]
    assert "founded" not in node(store, "Brand", "Acme")
    assert json.loads(node(store, "Product", "A1")["attributes"]) == {"colour": "Black", "size": "M"}
    # The attributes column wins over an extra column of the same name.
    assert json.loads(node(store, "Product", "A2")["attributes"]) == {"colour": "Red", "screen size": "6.1 in"}
    assert sorted(node(store, "Product", "A2")["attr_values"]) == ["6.1 in", "red"]


def test_unknown_json_keys(store, settings, tmp_path):
    files = {"brands.jsonl": '{"name": "Acme", "founded": 1950}\n{"name": "Zed", "founded": 1990, "x": 1}\n',
             "products.jsonl": '{"sku": "A1", "name": "One", "colour": "Black", "attributes": {"size": 42}}\n'}
    report = run(store, settings, tmp_path, files)
    assert report.warnings[0] == "brands.jsonl: unknown columns ignored: founded"
    assert json.loads(node(store, "Product", "A1")["attributes"]) == {"colour": "Black", "size": 42}


def test_implicit_brand_and_category_are_created_with_a_warning(store, settings, tmp_path):
    files = {"products.csv": "sku,name,brand,category\nA1,One,Newco,Gadgets\nA2,Two,Newco,Gadgets\n"}
    report = run(store, settings, tmp_path, files)
    assert errors(report) == []
    assert report.warnings == ["products.csv: 2 rows name 1 brand that does not exist: 'Newco'; created them",
                               "products.csv: 2 rows name 1 category that does not exist: 'Gadgets'; created them"]
    assert targets(store, "Product", "A2", "MADE_BY") == {("Brand", "Newco")}
    again = run(store, settings, tmp_path, files)
    assert again.warnings == [] and not again.written
    # A brands file defining it later fills it in (an update of the implicit node).
    later = run(store, settings, tmp_path / "b", {"brands.csv": "name,country\nNewco,NL\n"})
    assert by_file(later)["brands.csv"]["updated"] == 1 and node(store, "Brand", "Newco")["country"] == "NL"


def test_category_parent_must_come_first(store, settings, tmp_path):
    files = {"categories.csv": "name,parent\nTop,\nMid,Top\nLeaf,Mid\nEarly,Late\nLate,Top\n"}
    report = run(store, settings, tmp_path, files)
    assert errors(report) == [("categories.csv", 5, "parent", "unknown parent category 'Late'")]
    later = run(store, settings, tmp_path / "2", {"categories.csv": "name,parent\nEarly,Late\n"})
    assert errors(later) == [] and targets(store, "Category", "Early", "SUBCATEGORY_OF") == {("Category", "Late")}


def test_small_batches_keep_references_and_duplicates_across_batches(store, settings, tmp_path):
    small = settings.model_copy(update={"import_batch_size": 2})
    cats = "name,parent\n" + "".join(f"C{i},{'' if i == 0 else f'C{i - 1}'}\n" for i in range(7))
    cats += "C3,\n"  # a duplicate three batches later
    report = run(store, small, tmp_path, {"categories.csv": cats})
    assert errors(report) == [("categories.csv", 9, "name", "duplicate name 'C3' (first on line 5)")]
    assert counts(store)[1]["SUBCATEGORY_OF"] == 6
    assert not run(store, small, tmp_path, {"categories.csv": cats}).written


def test_json_lines_rows(store, settings, tmp_path):
    files = {"brands.jsonl": '{"name": "Acme"}\n\n[1]\n{"name": "Zed", "country": ["SE"]}\n{broken\n{"name": 7}\n'}
    report = run(store, settings, tmp_path, files)
    assert [(e.line, e.column) for e in report.errors] == [(3, None), (4, "country"), (5, None)]
    assert "not a JSON object" in report.errors[0].reason
    assert "must be a single value" in report.errors[1].reason
    assert report.errors[2].reason.startswith("invalid JSON")
    assert node(store, "Brand", "7")["name"] == "7"  # a number where text is expected is its text


# -- files ------------------------------------------------------------------------------------------------
def test_unknown_file_names_and_missing_columns_fail_that_file_only(store, settings, tmp_path):
    files = {"brands.csv": BASE["brands.csv"], "stuff.csv": "a\n1\n", "products.csv": "sku,price\nA1,1\n",
             "notes.txt": "ignored"}
    report = run(store, settings, tmp_path, files)
    assert report.failed_files == ["products.csv", "stuff.csv"]
    assert ("products.csv", 1, "name", "missing required column") in errors(report)
    assert any(e.file == "stuff.csv" and "unknown file type" in e.reason for e in report.errors)
    assert report.warnings == ["notes.txt: not a .csv or .jsonl file; ignored"]
    assert counts(store)[0]["Brand"] == 2
    with pytest.raises(ImportError_, match="no such file"):
        import_path(store, tmp_path / "missing", settings=settings, progress=False)
    with pytest.raises(ImportError_, match="no import files"):
        import_path(store, write(tmp_path / "empty", {}), settings=settings, progress=False)


def test_import_files_from_streams(store, settings):
    class OneWay(io.RawIOBase):  # an upload that cannot seek
        def __init__(self, data: bytes) -> None:
            self._b = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            data = self._b.read(len(b))
            b[: len(data)] = data
            return len(data)

    streams = {name: io.BytesIO(text.encode()) for name, text in BASE.items()}
    streams["brands.csv"] = io.BufferedReader(OneWay(BASE["brands.csv"].encode()))
    report = import_files(store, streams, settings=settings, strict=True)
    assert errors(report) == [] and report.written and counts(store) == (NODE_COUNTS, REL_COUNTS)
    assert not streams["products.csv"].closed  # the caller's streams stay open


# -- strict, dry run -------------------------------------------------------------------------------------
def test_strict_writes_nothing_when_any_row_is_bad(store, settings, tmp_path):
    files, line = _append("faqs.csv", "Is this bad?,,x")  # the very last file
    report = run(store, settings, tmp_path, files, strict=True)
    assert report.strict and not report.written and not report.ok
    assert errors(report) == [("faqs.csv", line, "answer", "missing required value")]
    assert counts(store) == ({}, {})
    assert by_file(report)["products.csv"]["created"] == 0
    ok = run(store, settings, tmp_path / "ok", BASE, strict=True)
    assert ok.written and ok.ok and counts(store) == (NODE_COUNTS, REL_COUNTS)


def test_strict_checks_references_across_files_without_writing(store, settings, tmp_path):
    files, _ = _append("order_items.csv", "1001,B1,1,,")
    report = run(store, settings, tmp_path, files, strict=True)
    assert report.ok and report.written  # B1 exists only in products.csv of the same import


def test_dry_run_writes_nothing_and_says_what_would_change(store, settings, tmp_path):
    report = run(store, settings, tmp_path, BASE, dry_run=True)
    assert report.dry_run and not report.written and errors(report) == []
    assert all(f.created == f.rows for f in report.files)
    assert counts(store) == ({}, {})
    run(store, settings, tmp_path, BASE)
    before = snapshot(store, volatile=())
    changed = {"products.csv": BASE["products.csv"].replace("249.99", "1.00"),
               "order_items.csv": BASE["order_items.csv"] + "1002,NOPE,1,,\n"}
    report = run(store, settings, tmp_path / "2", changed, dry_run=True)
    assert tally(report, "products.csv") == (0, 1, 2, 0)
    assert errors(report) == [("order_items.csv", 5, "sku", "unknown sku 'NOPE'")]
    assert report.warnings == [] and snapshot(store, volatile=()) == before


# -- values are data ------------------------------------------------------------------------------------
LITERALS = ["'}) MATCH (n) DETACH DELETE n //", '"}) MATCH (n) DETACH DELETE n //', "<script>alert(1)</script>",
            "$sku {name: 1}", "back\\slash \\\" quote", "tab\there", "x\u0001y", "ünïcødé ✓ 😀", "\\u0041"]


def test_cypher_and_html_looking_values_are_stored_literally(store, settings, tmp_path):
    rows = [{"sku": f"L{i}", "name": v, "description": v, "attributes": {"note": v}} for i, v in enumerate(LITERALS)]
    rows.append({"sku": "MATCH (n) DETACH DELETE n", "name": "key as code"})
    files = {"products.jsonl": "\n".join(json.dumps(r) for r in rows) + "\n"}
    report = run(store, settings, tmp_path, files)
    assert errors(report) == []
    for i, v in enumerate(LITERALS):
        p = node(store, "Product", f"L{i}")
        assert p["name"] == v.strip() and p["description"] == v.strip()
        assert json.loads(p["attributes"]) == {"note": v}
    assert node(store, "Product", "MATCH (n) DETACH DELETE n")["name"] == "key as code"
    assert not run(store, settings, tmp_path, files).written


def test_ten_megabyte_field_is_rejected_as_oversized(store, settings, tmp_path):
    huge = "x" * (10 * 1024 * 1024)
    products = ("sku,name,description\n"
                f"A1,One,{huge}\n"
                f'A2,Two,"{huge[:10]}\n{huge}"\n'
                "A3,Three,fine\n")
    jsonl = json.dumps({"sku": "J1", "name": "x", "description": huge}) + "\n" + json.dumps({"sku": "J2", "name": "y"})
    report = run(store, settings, tmp_path, {"products.csv": products, "products.jsonl": jsonl})
    assert [(e.file, e.line) for e in report.errors] == [("products.csv", 2), ("products.csv", 3), ("products.jsonl", 1)]
    assert all(e.reason.startswith("oversized field") for e in report.errors)
    assert sorted(r["props"]["sku"] for r in store.run(NODES_Q) if r["label"] == "Product") == ["A3", "J2"]


def test_a_create_that_meets_an_existing_product_merges_instead(store, settings, tmp_path):
    """What a CREATE retried after a crash (or racing another import) meets: the unique constraint.
    The batch falls back to MERGE and replaces the links, so nothing is duplicated or left behind."""
    from kg.catalog.validation import TYPES, Validator
    from kg.loader import _Pass, _Writer

    run(store, settings, tmp_path, BASE)
    row = Validator(TYPES["products"], store_currency="USD").validate(
        {"sku": "A1", "name": "Renamed", "brand": "Zed", "category": "Shoes", "supplier_id": "S2", "price": "1"})
    p = _Pass(store, settings, ImportReport(), mode="write", delimiter=",", progress=False)
    p._check_refs(Source("products.csv", "products", "csv", lambda: io.BytesIO()), TYPES["products"],
                  FileReport(file="products.csv"), [row])
    ops = p._product_creates([row])  # as if the classifier had found A1 absent
    assert ops[0][0].name.startswith("loader.Product.create")
    writer = _Writer(store)
    writer.submit(ops)
    writer.drain()
    writer.close()
    a1 = node(store, "Product", "A1")
    assert a1["name"] == "Renamed" and a1["_h"] == row.h
    assert targets(store, "Product", "A1", "MADE_BY") == {("Brand", "Zed")}
    assert targets(store, "Product", "A1", "IN_CATEGORY") == {("Category", "Shoes")}
    assert counts(store)[0]["Product"] == 3


# -- the sample store ----------------------------------------------------------------------------------
def test_the_default_sample_store_imports_cleanly(store, settings, tmp_path):
    from import_scripts.sample_store import generate

    written = generate(tmp_path / "sample", today=dt.date(2026, 1, 15))
    report = import_path(store, tmp_path / "sample", settings=settings, progress=False)
    assert errors(report) == [] and report.warnings == []
    assert {f.file: f.created for f in report.files} == written
    nodes, rels = counts(store)
    label_of = {f.file: NODES_BY_FILE[f.type] for f in report.files if f.type in NODES_BY_FILE}
    for file, label in label_of.items():
        assert nodes[label] == written[file], label
    assert rels["CONTAINS"] == written[next(f for f in written if f.startswith("order_items"))]
    n_products = nodes["Product"]
    assert rels["MADE_BY"] == rels["IN_CATEGORY"] == n_products
    assert rels["PLACED"] == nodes["Order"]
    orphans = Query("test.import.orphans", "MATCH (p:Product) WHERE NOT (p)-[:IN_CATEGORY]->(:Category) RETURN count(p) AS n")
    assert store.run(orphans) == [{"n": 0}]
    again = import_path(store, tmp_path / "sample", settings=settings, progress=False)
    assert not again.written and sum(f.unchanged for f in again.files) == sum(written.values())


NODES_BY_FILE = {"categories": "Category", "brands": "Brand", "suppliers": "Supplier", "products": "Product",
                 "customers": "Customer", "shipping_methods": "ShippingMethod", "payment_methods": "PaymentMethod",
                 "orders": "Order", "policies": "Policy", "promotions": "Promotion", "faqs": "FAQ"}
