"""Import options against a real embedded FalkorDB: clearing several optional columns on a re-import
(a FalkorDB 4.16 bug dropped the wrong properties), unknown brand and category references (warned,
refused under --strict unless create_missing), and file types given explicitly or read from the
header row."""

from __future__ import annotations

from pathlib import Path

from test_import_loader import BASE, counts, node, run

import tests.api_support as support
from kg.loader import import_path

api = support.api

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


# -- brands and categories no file defines ----------------------------------------------------------------
LOOSE = "sku,name,brand,category\nA1,One,Newco,Gadgets\nA2,Two,Newco,Gizmos\nA3,Three,Acme,Gadgets\n"


def test_undefined_brands_and_categories_are_counted_and_created_by_default(store, settings, tmp_path):
    report = run(store, settings, tmp_path, {"brands.csv": "name\nAcme\n", "products.csv": LOOSE})
    assert report.ok and report.written
    assert report.warnings == [
        "products.csv: 2 rows name 1 brand that does not exist: 'Newco'; created them",
        "products.csv: 3 rows name 2 categories that do not exist: 'Gadgets', 'Gizmos'; created them"]
    assert node(store, "Brand", "Newco") and node(store, "Category", "Gizmos")


def test_strict_refuses_undefined_references_unless_create_missing(store, settings, tmp_path):
    files = {"brands.csv": "name\nAcme\n", "categories.csv": "name\nGadgets\n", "products.csv": LOOSE}
    report = run(store, settings, tmp_path, files, strict=True)
    assert not report.ok and not report.written and counts(store) == ({}, {})
    assert [(e.file, e.line, e.column) for e in report.errors] == [
        ("products.csv", 2, "brand"), ("products.csv", 3, "brand"), ("products.csv", 3, "category")]
    assert report.errors[0].reason.startswith("unknown brand 'Newco': no brands row or graph node defines it")
    assert "2 rows name 1 brand that does not exist: 'Newco'; not created" in report.warnings[0]
    dry = run(store, settings, tmp_path, files, strict=True, dry_run=True)
    assert len(dry.errors) == 3 and not dry.written
    ok = run(store, settings, tmp_path, files, strict=True, create_missing=True)
    assert ok.ok and ok.written and ok.files[-1].created == 3
    assert ok.warnings[0] == "products.csv: 2 rows name 1 brand that does not exist: 'Newco'; created them"


def test_references_to_nodes_already_in_the_graph_are_known(store, settings, tmp_path):
    assert run(store, settings, tmp_path / "a", {"brands.csv": "name\nNewco\nAcme\n",
                                                 "categories.csv": "name\nGadgets\nGizmos\n"}).ok
    report = run(store, settings, tmp_path / "b", {"products.csv": LOOSE}, strict=True)
    assert report.ok and report.written and report.warnings == []


def test_the_sample_stores_import_cleanly_under_strict(store, settings, tmp_path):
    import datetime as dt

    from import_scripts.sample_store import generate

    sample = generate(tmp_path / "sample", today=dt.date(2026, 1, 15))
    report = import_path(store, sample if isinstance(sample, Path) else tmp_path / "sample", settings=settings,
                         strict=True, progress=False)
    assert report.ok and report.written and report.warnings == [], (report.errors[:3], report.warnings[:3])
    shop = Path(__file__).resolve().parents[1] / "eval" / "shops" / "bookshop" / "data"
    settings2 = settings.model_copy(update={"graph_name": settings.graph_name + "_b"})
    from kg.backends.falkordb import FalkorDBStore
    from kg.schema import ensure_schema

    other = FalkorDBStore.from_settings(settings2)
    try:
        ensure_schema(other)
        books = import_path(other, shop, settings=settings2, strict=True, progress=False)
        assert books.ok and books.written, (books.errors[:3], books.warnings[:3])
        assert not [w for w in books.warnings if "do not exist" in w or "does not exist" in w]
    finally:
        other.redis.execute_command("GRAPH.DELETE", settings2.graph_name)
        other.close()


# -- file types: explicit, by name, by header ---------------------------------------------------------------
PRODUCTS = "sku,name,brand,category\nA1,One,Acme,Gadgets\n"


def test_the_header_says_the_type_when_the_name_does_not(store, settings, tmp_path):
    files = {"export-2026.csv": PRODUCTS, "b2.csv": "name,country\nAcme,US\n", "c.jsonl": '{"name": "Gadgets", "parent": ""}\n'}
    report = run(store, settings, tmp_path, files)
    assert report.ok, report.errors
    assert [(f.file, f.type, f.format) for f in report.files] == [
        ("c.jsonl", "categories", "jsonl"), ("b2.csv", "brands", "csv"), ("export-2026.csv", "products", "csv")]
    assert report.warnings == []  # brands and categories came first, so nothing is undefined


def test_a_name_beats_the_header_and_an_explicit_type_beats_both(store, settings, tmp_path):
    named = run(store, settings, tmp_path / "a", {"brands.csv": "name,parent\nAcme,\n"})
    assert named.files[0].type == "brands" and named.warnings == ["brands.csv: unknown columns ignored: parent"]
    data = tmp_path / "b"
    data.mkdir()
    (data / "brands.csv").write_text("name,parent\nTop,\n")
    report = import_path(store, data / "brands.csv", settings=settings, file_type="categories", progress=False)
    assert report.ok and report.files[0].type == "categories" and node(store, "Category", "Top")


def test_a_file_of_no_type_fails_clearly_and_changes_nothing(store, settings, tmp_path):
    report = run(store, settings, tmp_path, {"names.csv": "name\nAcme\n", "x.csv": "a,b\n1,2\n",
                                             "utf16.csv": "sku,name\n".encode("utf-16")})
    assert not report.written and counts(store) == ({}, {}) and report.failed_files == ["names.csv", "utf16.csv", "x.csv"]
    reasons = {e.file: e.reason for e in report.errors}
    assert reasons["names.csv"].startswith("unknown file type: its name names no file type and its header (name) "
                                           "fits several file types: categories, brands, shipping_methods, payment_methods")
    assert "holds the required columns of no file type" in reasons["x.csv"] and "--type" in reasons["x.csv"]
    assert "UTF-16" in reasons["utf16.csv"]


def test_explicit_type_rules(store, settings, tmp_path):
    from common.errors import ImportError_

    data = tmp_path / "d"
    data.mkdir()
    (data / "products.csv").write_text(PRODUCTS)
    (data / "brands.csv").write_text("name\nAcme\n")
    for paths, kind, words in (([data / "products.csv"], "gadgets", "unknown file type 'gadgets'"),
                               ([data], "products", "not to a directory"),
                               ([data / "products.csv", data / "brands.csv"], "products", "separate runs")):
        try:
            import_path(store, paths, settings=settings, file_type=kind, progress=False)
        except ImportError_ as exc:
            assert words in exc.message
        else:
            raise AssertionError(words)
    assert counts(store) == ({}, {})


def test_cli_type_and_create_missing(settings, store, tmp_path):
    from click.testing import CliRunner

    from import_scripts.cli import import_command

    env = {"GRAPH_URL": settings.graph_url, "DATA_DIR": str(settings.data_dir), "GRAPH_NAME": settings.graph_name,
           "FALKORDB_APPENDFSYNC": "always"}
    data = tmp_path / "d"
    data.mkdir()
    (data / "list.txt.csv").write_text("sku,name,brand\nA1,One,Newco\n")

    def invoke(*args: str):
        return CliRunner().invoke(import_command, [*args, "--no-progress"], env=env, catch_exceptions=False)

    refused = invoke(str(data / "list.txt.csv"), "--type", "products", "--strict")
    assert refused.exit_code == 1 and "unknown brand 'Newco'" in refused.output and counts(store) == ({}, {})
    done = invoke(str(data / "list.txt.csv"), "--type", "Products", "--strict", "--create-missing")
    assert done.exit_code == 0, done.output
    assert "1 row names 1 brand that does not exist: 'Newco'; created" in " ".join(done.output.split())
    bad = invoke(str(data / "list.txt.csv"), "--type", "gizmos")
    assert bad.exit_code == 1 and "unknown file type 'gizmos'" in bad.output


# -- over HTTP ----------------------------------------------------------------------------------------------
def _upload(api, files, query="", form=None, key=None):
    import io

    data = {"files": [(io.BytesIO(content), name) for name, content in files], **(form or {})}
    return api.client.post(f"/api/v1/catalog/import{query}", data=data, content_type="multipart/form-data",
                           headers=api.h(key) if key else api.h())


def test_api_types_and_create_missing(api):
    from tests.api_support import error_shape, wait_job

    rows = b"sku,name,brand\nH-1,Kettle,Brewco\n"
    # the header says products; strict refuses the undefined brand without create_missing
    done = wait_job(api, _upload(api, [("export 2026.csv", rows)], "?strict=true").get_json()["job_id"], api.h())
    report = done["report"]
    assert report["files"][0]["type"] == "products" and not report["written"]
    assert report["errors"][0]["column"] == "brand" and "unknown brand 'Brewco'" in report["errors"][0]["reason"]
    job = _upload(api, [("export 2026.csv", rows)], "?strict=true&create_missing=true").get_json()
    done = wait_job(api, job["job_id"], api.h())
    assert done["create_missing"] is True and done["report"]["written"] is True
    assert "1 row names 1 brand that does not exist: 'Brewco'; created them" in done["report"]["warnings"][0]
    # explicit types: `type` for every file, `type.<name>` for one
    done = wait_job(api, _upload(api, [("list.csv", b"name\nTools\n")], form={"type": "categories"})
                    .get_json()["job_id"], api.h())
    assert done["types"] == {"list.csv": "categories"} and done["report"]["files"][0]["created"] == 1
    job = _upload(api, [("a.csv", b"name\nZed\n"), ("b.csv", b"name\nCard\n")],
                  form={"type.a.csv": "brands", "type.B.csv": "payment_methods"}).get_json()
    assert {f["file"]: f["type"] for f in wait_job(api, job["job_id"], api.h())["report"]["files"]} == {
        "a.csv": "brands", "b.csv": "payment_methods"}
    # what cannot be: an unknown type, a per-file type for no file, one type over differently named files
    assert "unknown file type" in error_shape(_upload(api, [("a.csv", rows)], form={"type": "x"}), 422)["message"]
    error_shape(_upload(api, [("a.csv", rows)], form={"type.z.csv": "brands"}), 422)
    error_shape(_upload(api, [("products.csv", rows), ("brands.csv", b"name\nA\n")], form={"type": "brands"}), 422)
    # a file of no type fails in the report, with the reason; never a 500
    done = wait_job(api, _upload(api, [("notes.csv", b"a,b\n1,2\n")]).get_json()["job_id"], api.h())
    assert done["report"]["files"][0]["failed"] and "no file type" in done["report"]["errors"][0]["reason"]


def test_api_roles_follow_the_detected_type(api):
    from tests.api_support import error_shape

    catalog_only = api.key("catalog")
    err = error_shape(_upload(api, [("export.csv", b"order_id,customer_id,status,placed_at\n1,C1,placed,2026-01-01\n")],
                              key=catalog_only), 403)
    assert err["details"]["files"] == ["export.csv"] and err["details"]["roles"] == ["orders"]
    err = error_shape(_upload(api, [("x.csv", b"name\nA\n")], form={"type": "customers"}, key=catalog_only), 403)
    assert err["details"]["roles"] == ["orders"]
