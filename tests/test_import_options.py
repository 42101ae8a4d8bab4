"""Import options against a real embedded FalkorDB: clearing several optional columns on a re-import
(a FalkorDB 4.16 bug dropped the wrong properties), unknown brand and category references (warned,
refused under --strict unless create_missing), and file types given explicitly or read from the
header row."""

from __future__ import annotations

from test_import_loader import BASE, node, run

FULL = ("sku,name,brand,category,supplier_id,price,currency,stock,description,warranty_months,rating,status\n"
        "A1,Aurora,Acme,Headphones,S1,249.99,USD,12,Great sound,24,4.5,active\n")
CLEARED = ("sku,name,brand,category,supplier_id,price,currency,stock,description,warranty_months,rating,status\n"
           "A1,Aurora,Acme,Headphones,S1,,USD,12,,,,active\n")
REFS = {k: BASE[k] for k in ("categories.csv", "brands.csv", "suppliers.csv")}


# -- clearing several properties at once ---------------------------------------------------------------
def test_emptied_columns_clear_exactly_those_properties(store, settings, tmp_path):
    # Filled, emptied, filled, emptied: a property set again moves to the end of the node's list,
    # which is where the bug bit (clearing the last property and another in one statement).
    assert run(store, settings, tmp_path / "a", REFS | {"products.csv": FULL}).ok
    gone = {"price", "description", "warranty_months", "rating"}
    kept = {"sku", "name", "currency", "stock", "status", "attributes", "attr_values", "_h", "updated_at"}
    for i in range(2):
        report = run(store, settings, tmp_path / f"b{i}", {"products.csv": CLEARED})
        assert report.ok and report.files[0].updated == 1
        after = node(store, "Product", "A1")
        assert not gone & after.keys() and kept <= after.keys()
        assert {k: after[k] for k in ("name", "currency", "stock", "status")} == {
            "name": "Aurora", "currency": "USD", "stock": 12, "status": "active"}
        assert run(store, settings, tmp_path / f"c{i}", {"products.csv": FULL}).ok
        refilled = node(store, "Product", "A1")
        assert gone | kept <= refilled.keys() and refilled["rating"] == 4.5


def test_emptied_order_item_columns_clear_exactly_those(store, settings, tmp_path):
    from test_import_loader import RELS_Q

    files = {k: BASE[k] for k in ("categories.csv", "brands.csv", "suppliers.csv", "products.csv",
                                  "customers.csv", "orders.csv")}
    items = "order_id,sku,quantity,unit_price,discount\n1001,A1,2,249.99,0.1\n"
    assert run(store, settings, tmp_path / "a", files | {"order_items.csv": items}).ok
    cleared = "order_id,sku,quantity,unit_price,discount\n1001,A1,2,,\n"
    for i in range(2):
        assert run(store, settings, tmp_path / f"b{i}", {"order_items.csv": cleared}).ok
        props = [r["props"] for r in store.run(RELS_Q) if r["type"] == "CONTAINS"]
        assert len(props) == 1 and props[0]["quantity"] == 2 and "_h" in props[0]
        assert "unit_price" not in props[0] and "discount" not in props[0]
        assert run(store, settings, tmp_path / f"c{i}", {"order_items.csv": items}).ok


def test_emptied_columns_of_a_relinked_order_clear_exactly_those(store, settings, tmp_path):
    # A move to another customer writes `_h = null` (sealed after the links) with the emptied
    # columns: `_h` is the node's last property, so this cleared two including the last one.
    files = {k: BASE[k] for k in ("customers.csv", "shipping_methods.csv", "payment_methods.csv")}
    head = BASE["orders.csv"].splitlines()[0]
    full = head + "\n1001,C1,shipped,2026-01-02,2026-01-03,,2026-01-06,DHL,TRK1,Standard,Card,Berlin,10,EUR\n"
    moved = head + "\n1001,C2,shipped,2026-01-02,,,,DHL,TRK1,Standard,Card,Berlin,10,EUR\n"
    assert run(store, settings, tmp_path / "a", files | {"orders.csv": full}).ok
    report = run(store, settings, tmp_path / "b", {"orders.csv": moved})
    assert report.ok and report.files[0].updated == 1
    after = node(store, "Order", "1001")
    assert not {"shipped_at", "eta"} & after.keys()
    assert {k: after.get(k) for k in ("carrier", "tracking_number", "ship_to", "total", "currency")} == {
        "carrier": "DHL", "tracking_number": "TRK1", "ship_to": "Berlin", "total": 10.0, "currency": "EUR"}
    assert len(after["_h"]) == 32
