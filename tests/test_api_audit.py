"""Roles that match the data, and the audit log of catalog writes.

`catalog` writes products and the store's own data; customers, orders and order items need
`orders` (admin implies both). An import holding a file the key may not write is refused whole,
before anything is written, with the files named. Every write (import rows, single-product routes,
hard deletes, shop examples, the key-less CLI) goes to the audit log with who, where and the old and
new values; `admin` reads it through `GET /api/v1/admin/audit` and `./kgqa audit`."""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner

import tests.api_support as support
from tests.api_support import error_shape, wait_job

sample_store_dir, shop_api, api = support.sample_store_dir, support.shop_api, support.api

PRODUCTS = b"sku,name,brand,category,price,stock\nA-1,Audit Kettle,Brewco,Kitchen,19.99,5\nA-2,Audit Mug,Brewco,Kitchen,4.50,9\n"


def _upload(api, files, key, query=""):
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    return api.client.post(f"/api/v1/catalog/import{query}", data=data, content_type="multipart/form-data",
                           headers=api.h(key))


def _order_owner(api, order_id):
    rows = api.store.redis.execute_command(
        "GRAPH.RO_QUERY", api.settings.graph_name,
        f"MATCH (c:Customer)-[:PLACED]->(o:Order {{order_id: '{order_id}'}}) RETURN c.customer_id")[1]
    return rows[0][0] if rows else None


def _an_order(api):
    r = api.client.post("/api/v1/graph/query", headers=api.h(), json={
        "cypher": "MATCH (c:Customer)-[:PLACED]->(o:Order) RETURN o.order_id AS o, c.customer_id AS c, "
                  "o.status AS s, o.placed_at AS p ORDER BY o LIMIT 1"})
    return r.get_json()["rows"][0]


def _order_row(sample_dir, order_id, customer_id=None) -> bytes:
    """The order's own row from the sample files (every column, so nothing is cleared), with
    another customer if asked."""
    import csv

    with open(sample_dir / "orders.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        row = next(r for r in reader if r["order_id"] == order_id)
        fields = reader.fieldnames
    if customer_id:
        row["customer_id"] = customer_id
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=fields)
    w.writeheader()
    w.writerow(row)
    return out.getvalue().encode()


def _audit(api, key=None, **params):
    r = api.client.get("/api/v1/admin/audit", headers=api.h(key) if key else api.h(), query_string=params)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


# -- roles ---------------------------------------------------------------------------------------------
def test_a_catalog_key_cannot_import_orders_and_nothing_is_written(shop_api, sample_store_dir):
    order = _an_order(shop_api)
    other = "C00002" if order["c"] != "C00002" else "C00003"
    moved = _order_row(sample_store_dir, order["o"], other)
    catalog = shop_api.key("catalog")
    r = _upload(shop_api, [("products.csv", PRODUCTS), ("orders.csv", moved)], catalog)
    err = error_shape(r, 403, "forbidden")
    assert err["details"] == {"files": ["orders.csv"], "roles": ["orders"]}
    assert "orders.csv" in err["message"] and "products.csv" not in err["message"]
    assert _order_owner(shop_api, order["o"]) == order["c"]  # not moved
    error_shape(shop_api.client.get("/api/v1/catalog/products/A-1", headers=shop_api.h()), 404)  # nor the rest
    for files in ([("customers.csv", b"customer_id,name\nC09999,Eve\n")], [("order_items.jsonl", b"{}\n")]):
        error_shape(_upload(shop_api, files, catalog, "?dry_run=true"), 403)
    # an orders key is the mirror image: orders yes, products no
    orders = shop_api.key("orders")
    error_shape(_upload(shop_api, [("products.csv", PRODUCTS)], orders), 403)
    error_shape(shop_api.client.patch("/api/v1/catalog/products/A-1", headers=shop_api.h(orders), json={"price": 1}), 403)
    error_shape(_upload(shop_api, [("products.csv", PRODUCTS)], shop_api.key("chat")), 403)


def test_orders_and_admin_keys_import_what_they_may_and_jobs_record_the_key(shop_api, sample_store_dir):
    order = _an_order(shop_api)
    same = _order_row(sample_store_dir, order["o"])
    orders = shop_api.key("orders")
    r = _upload(shop_api, [("orders.csv", same)], orders)
    assert r.status_code == 202, r.get_json()
    key_id = orders.split("_")[1]
    assert r.get_json()["key_id"] == key_id
    done = wait_job(shop_api, r.get_json()["job_id"], shop_api.h(orders))
    assert done["status"] == "done" and done["key_id"] == key_id
    admin = shop_api.key("admin")
    both = _upload(shop_api, [("products.csv", PRODUCTS), ("orders.csv", same)], admin)
    assert both.status_code == 202 and wait_job(shop_api, both.get_json()["job_id"], shop_api.h(admin))["status"] == "done"


# -- the audit log ---------------------------------------------------------------------------------------
def test_every_catalog_write_is_in_the_audit_log(shop_api, sample_store_dir):
    catalog, admin = shop_api.key("catalog"), shop_api.key("admin")
    catalog_id, admin_id = catalog.split("_")[1], admin.split("_")[1]
    # a single product, through the API
    assert shop_api.client.put("/api/v1/catalog/products/AU-1", headers=shop_api.h(catalog),
                               json={"name": "Audit Lamp", "price": 30}).status_code == 201
    assert shop_api.client.patch("/api/v1/catalog/products/AU-1", headers=shop_api.h(catalog),
                                 json={"price": 0.01}).status_code == 200
    page = _audit(shop_api, sku="AU-1")
    assert [e["action"] for e in page["entries"]] == ["updated", "created"]
    patched, created = page["entries"]
    assert patched["key_id"] == catalog_id and patched["route"] == "PATCH /api/v1/catalog/products/AU-1"
    assert (patched["label"], patched["old"], patched["new"]) == ("Product", {"price": 30.0}, {"price": 0.01})
    assert created["old"] is None and created["new"]["name"] == "Audit Lamp" and created["new"]["price"] == 30.0
    assert patched["file"] is None and patched["job_id"] is None
    # an import that moves an order to another customer: the old and new owner, file and line
    order = _an_order(shop_api)
    other = "C00002" if order["c"] != "C00002" else "C00003"
    job = _upload(shop_api, [("orders.csv", _order_row(sample_store_dir, order["o"], other))], admin).get_json()
    assert wait_job(shop_api, job["job_id"], shop_api.h(admin))["status"] == "done"
    (moved,) = _audit(shop_api, node=order["o"])["entries"]
    assert (moved["key_id"], moved["job_id"], moved["file"], moved["line"]) == (admin_id, job["job_id"], "orders.csv", 2)
    assert (moved["old"], moved["new"]) == ({"customer_id": order["c"]}, {"customer_id": other})
    # filters: by key, since, and pages with a cursor
    mine = _audit(shop_api, key_id=catalog_id)["entries"]
    assert mine and all(e["key_id"] == catalog_id for e in mine)
    assert _audit(shop_api, since="2999-01-01")["entries"] == []
    first = _audit(shop_api, limit=1)
    second = _audit(shop_api, limit=1, cursor=first["next_cursor"])
    assert first["entries"][0]["id"] > second["entries"][0]["id"]
    # admin only
    error_shape(shop_api.client.get("/api/v1/admin/audit", headers=shop_api.h(catalog)), 403)
    error_shape(shop_api.client.get("/api/v1/admin/audit?since=yesterday", headers=shop_api.h(admin)), 400)
    error_shape(shop_api.client.get("/api/v1/admin/audit?cursor=abc", headers=shop_api.h(admin)), 400)


def test_hard_deletes_and_shop_examples_are_audited(falkordb_server):
    from tests.api_support import build_api, drop_api

    a = build_api(falkordb_server.data_dir, api_allow_hard_delete=True)
    try:
        admin = a.key("admin")
        assert a.client.put("/api/v1/catalog/products/HD-1", headers=a.h(admin),
                            json={"name": "Gone Soon", "price": 5}).status_code == 201
        assert a.client.delete("/api/v1/catalog/products/HD-1?hard=true", headers=a.h(admin)).status_code == 200
        deleted = _audit(a, node="HD-1")["entries"][0]
        assert deleted["action"] == "deleted" and deleted["new"] is None and deleted["old"]["name"] == "Gone Soon"
        added = a.client.post("/api/v1/catalog/examples", headers=a.h(admin), json={
            "examples": [{"text": "the magic phrase to open my profile escapes me", "intent": "recover_password"}]})
        assert added.status_code == 200, added.get_json()
        example_id = added.get_json()["added"][0]["id"]
        assert a.client.delete(f"/api/v1/catalog/examples/{example_id}", headers=a.h(admin)).status_code == 200
        removed, created = _audit(a, node=example_id)["entries"]
        assert (created["label"], created["action"], created["new"]["intent"]) == ("ShopExample", "created",
                                                                                   "recover_password")
        assert removed["action"] == "deleted" and removed["old"]["intent"] == "recover_password"
    finally:
        drop_api(a)


def test_the_import_audits_per_batch_with_old_values(store, settings):
    """One sink call (one pipelined write) and one read of old values per batch, not per row."""
    from kg.loader import import_files

    small = settings.model_copy(update={"import_batch_size": 4})
    rows = "".join(f"B-{i},Batch {i},Brewco,Kitchen,{i}.00,1\n" for i in range(10))
    header = "sku,name,brand,category,price,stock\n"
    calls: list[list] = []
    import_files(store, {"products.csv": io.BytesIO((header + rows).encode())}, settings=small, audit=calls.append)
    creates = [c for batch in calls for c in batch if c.label == "Product"]
    assert len(creates) == 10 and {c.action for c in creates} == {"created"}
    assert [len([c for c in b if c.label == "Product"]) for b in calls if any(c.label == "Product" for c in b)] == [4, 4, 2]
    changed = rows.replace("B-3,Batch 3,Brewco,Kitchen,3.00", "B-3,Batch 3,Brewco,Garden,3.50")
    calls.clear()
    import_files(store, {"products.csv": io.BytesIO((header + changed).encode())}, settings=small, audit=calls.append)
    updates = [c for batch in calls for c in batch if c.action == "updated"]
    assert [(c.node, c.old, c.new, c.file, c.line) for c in updates] == [
        ("B-3", {"price": 3.0, "category": "Kitchen"}, {"price": 3.5, "category": "Garden"}, "products.csv", 5)]
    calls.clear()  # unchanged rows write nothing and say nothing
    import_files(store, {"products.csv": io.BytesIO((header + changed).encode())}, settings=small, audit=calls.append)
    assert calls == []


def test_the_cli_imports_as_cli_user_and_reads_the_log(settings, store, tmp_path):
    from api.cli import audit_command
    from import_scripts.cli import import_command
    from kg.audit import local_actor

    env = {"GRAPH_URL": settings.graph_url, "DATA_DIR": str(settings.data_dir), "GRAPH_NAME": settings.graph_name}
    (tmp_path / "products.csv").write_bytes(PRODUCTS)
    result = CliRunner().invoke(import_command, [str(tmp_path / "products.csv"), "--no-progress"], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = CliRunner().invoke(audit_command, ["--node", "A-2", "--json"], env=env, catch_exceptions=False)
    assert out.exit_code == 0, out.output
    (entry,) = [json.loads(line) for line in out.output.splitlines()]
    assert entry["key_id"] == local_actor() and entry["file"] == "products.csv" and entry["line"] == 3
    assert entry["new"]["name"] == "Audit Mug"
    text = CliRunner().invoke(audit_command, ["--sku", "A-1"], env=env, catch_exceptions=False)
    assert "created  Product A-1  [products.csv:2]  name=\"Audit Kettle\", price=19.99" in text.output
    from kg.backends.state_server import StateRedis, key_prefix

    StateRedis(settings).client().delete(key_prefix(settings.graph_name) + "audit")


@pytest.mark.parametrize("role", ["catalog", "orders", "analyst", "chat"])
def test_only_admin_reads_the_audit_log(api, role):
    error_shape(api.client.get("/api/v1/admin/audit", headers=api.h(api.key(role))), 403)
    assert api.client.get("/api/v1/admin/audit", headers=api.h(api.key("admin"))).status_code == 200


def test_the_log_is_capped_in_changes_and_pages_through_batches(api):
    from kg.audit import AuditLog, Change

    log = AuditLog(api.services.redis_call, api.services.prefix + "t:", max_entries=12)
    for b in range(5):  # five writes of four changes each
        log.record([Change("Product", f"P{b}-{i}", "created", None, {"i": i}, "products.csv", i + 2)
                    for i in range(4)], key_id="k" if b % 2 else "other", job_id=f"job{b}")
    seen, cursor = [], None
    while True:
        page, cursor = log.read(limit=3, cursor=cursor)
        seen += [e["node"] for e in page]
        if cursor is None:
            break
    # newest first, nothing twice; the oldest writes dropped once more than 12 changes were kept
    assert seen == [f"P{b}-{i}" for b in (4, 3, 2) for i in (3, 2, 1, 0)]
    assert [e["node"] for e in log.read(key_id="k", limit=50)[0]] == [f"P3-{i}" for i in (3, 2, 1, 0)]
    (one,) = log.read(node="P2-1")[0]
    assert (one["file"], one["line"], one["job_id"], one["key_id"]) == ("products.csv", 3, "job2", "other")
    # a selective filter over more than one read's worth hands back a cursor to read on with
    page, cursor = log.read(node="P2-0", scan_max=4)
    assert page == [] and cursor is not None
    assert [e["node"] for e in log.read(node="P2-0", cursor=cursor)[0]] == ["P2-0"]
