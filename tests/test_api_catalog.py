"""Catalog routes on a real graph: imports run as jobs (any worker can read them from Redis), with
progress and the importer's per-row report, strict and dry-run modes; products are read, created,
replaced, patched and discontinued through the importer's own validation, and every change bumps
the catalog version."""

from __future__ import annotations

import io

import tests.api_support as support
from tests.api_support import error_shape, wait_job

api = support.api

PRODUCTS = (b"sku,name,brand,category,price,stock,attributes\n"
            b"T-1,Test Kettle,Brewco,Kitchen,19.99,5,colour=red\n"
            b"T-2,Test Mug,Brewco,Kitchen,4.50,100,\n")
BAD_ROW = b"T-3,Broken,Brewco,Kitchen,not-a-price,1,\n"


def _upload(api, files, query="", headers=None):
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    return api.client.post(f"/api/v1/catalog/import{query}", data=data, content_type="multipart/form-data",
                           headers=headers or api.h())


def _version(api):
    rows = api.store.redis.execute_command("GRAPH.RO_QUERY", api.settings.graph_name,
                                           "MATCH (m:Meta {key: 'catalog'}) RETURN m.version")
    return rows[1][0][0] if rows[1] else None


def test_import_job_runs_and_reports_per_row(api):
    r = _upload(api, [("products.csv", PRODUCTS + BAD_ROW), ("brands.csv", b"name,country\nBrewco,NL\n")])
    assert r.status_code == 202
    job = r.get_json()
    assert job["status"] in ("queued", "running", "done") and sorted(job["files"]) == ["brands.csv", "products.csv"]
    done = wait_job(api, job["job_id"], api.h())
    assert done["status"] == "done" and done["progress"]["percent"] == 100.0
    report = done["report"]
    products = next(f for f in report["files"] if f["file"] == "products.csv")
    assert (products["created"], products["rejected"]) == (2, 1)
    assert report["errors"] == [{"file": "products.csv", "line": 4, "column": "price",
                                 "reason": report["errors"][0]["reason"]}]
    got = api.client.get("/api/v1/catalog/products/T-1", headers=api.h()).get_json()
    assert got["price"] == 19.99 and got["brand"] == "Brewco" and got["attributes"] == {"colour": "red"}
    # re-importing the same files changes nothing
    again = wait_job(api, _upload(api, [("products.csv", PRODUCTS)]).get_json()["job_id"], api.h())
    f = again["report"]["files"][0]
    assert (f["created"], f["updated"], f["unchanged"]) == (0, 0, 2) and again["report"]["written"] is False


def test_strict_import_writes_nothing_on_a_bad_row(api):
    done = wait_job(api, _upload(api, [("products.csv", PRODUCTS + BAD_ROW)], "?strict=true").get_json()["job_id"],
                    api.h())
    assert done["status"] == "done" and done["strict"] is True and done["report"]["errors"]
    error_shape(api.client.get("/api/v1/catalog/products/T-1", headers=api.h()), 404)


def test_dry_run_writes_nothing(api):
    done = wait_job(api, _upload(api, [("products.csv", PRODUCTS)], "?dry_run=true").get_json()["job_id"], api.h())
    assert done["status"] == "done" and done["dry_run"] is True
    assert done["report"]["files"][0]["created"] == 2 and done["report"]["written"] is False
    error_shape(api.client.get("/api/v1/catalog/products/T-1", headers=api.h()), 404)


def test_bad_uploads(api):
    err = error_shape(api.client.post("/api/v1/catalog/import", data={}, content_type="multipart/form-data",
                                      headers=api.h()), 422)
    assert err["details"]["fields"] == [{"field": "files", "message": "required", "type": "missing"}]
    err = error_shape(_upload(api, [("../../etc/passwd", b"x")]), 422)
    assert err["details"]["fields"][0]["field"] == "files"
    error_shape(_upload(api, [("products.exe", b"x")]), 422)
    error_shape(_upload(api, [("products.csv", PRODUCTS), ("Products.CSV", PRODUCTS)]), 422)
    error_shape(_upload(api, [("products.csv", PRODUCTS)], "?strict=perhaps"), 400)
    # a file the importer cannot read at all: the job says so, per file
    done = wait_job(api, _upload(api, [("products.csv", "\ufeffsku,name\n".encode("utf-16"))]).get_json()["job_id"],
                    api.h())
    assert done["status"] in ("done", "failed")
    if done["status"] == "done":
        assert done["report"]["files"][0]["failed"] is True and done["report"]["errors"]
    else:
        assert done["error"]["code"] and "Traceback" not in str(done["error"])
        assert isinstance(done["error"]["details"], dict)


def test_unknown_job_is_404(api):
    error_shape(api.client.get("/api/v1/catalog/import/abcdefghijkl", headers=api.h()), 404)


def test_job_records_are_shared_through_redis(api):
    """Another app (another worker) on the same graph answers for a job this one started."""
    from api.app import create_app
    from api.services import Services

    job = _upload(api, [("products.csv", PRODUCTS)]).get_json()
    other = create_app(api.settings, services=Services.from_settings(api.settings)).test_client()
    wait_job(api, job["job_id"], api.h())
    r = other.get(f"/api/v1/catalog/import/{job['job_id']}", headers=api.h())
    assert r.status_code == 200 and r.get_json()["status"] == "done"


def test_a_stale_running_job_is_reported_failed(api):
    import json
    import time

    key = f"kgqa:{api.settings.graph_name}:import:abandonedjob1"
    api.services.redis().set(key, json.dumps({"job_id": "abandonedjob1", "status": "running", "files": ["products.csv"],
                                         "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                                         "heartbeat": time.time() - 3600, "progress": {}, "report": None,
                                         "error": None, "strict": False, "dry_run": False}))
    r = api.client.get("/api/v1/catalog/import/abandonedjob1", headers=api.h()).get_json()
    assert r["status"] == "failed" and r["error"]["code"] == "worker_lost" and r["error"]["details"] == {}


def test_product_crud_through_the_importer(api):
    h = api.h()
    error_shape(api.client.get("/api/v1/catalog/products/P-1", headers=h), 404)
    v0 = _version(api)
    r = api.client.put("/api/v1/catalog/products/P-1", headers=h,
                       json={"name": "Aurora Lamp", "brand": "Lumo", "category": "Lighting", "price": 49.5,
                             "stock": 3, "attributes": {"colour": "white", "watts": 9}})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["created"] is True and body["product"]["price"] == 49.5 and body["catalog_version"] != v0
    v1 = body["catalog_version"]
    # the same PUT again changes nothing
    same = api.client.put("/api/v1/catalog/products/P-1", headers=h,
                          json={"name": "Aurora Lamp", "brand": "Lumo", "category": "Lighting", "price": 49.5,
                                "stock": 3, "attributes": {"colour": "white", "watts": 9}})
    assert same.status_code == 200 and same.get_json()["changed"] is False
    # PATCH changes only what it names; attributes merge, null removes a key
    p = api.client.patch("/api/v1/catalog/products/P-1", headers=h,
                         json={"price": "39.99", "attributes": {"watts": None, "finish": "matte"}}).get_json()
    assert p["product"]["price"] == 39.99 and p["product"]["stock"] == 3 and p["product"]["brand"] == "Lumo"
    assert p["product"]["attributes"] == {"colour": "white", "finish": "matte"}
    assert p["catalog_version"] > v1
    # PUT replaces: a column left out becomes empty
    put = api.client.put("/api/v1/catalog/products/P-1", headers=h, json={"name": "Aurora Lamp 2"}).get_json()
    assert put["product"]["price"] is None and put["product"]["brand"] is None and put["product"]["name"] == "Aurora Lamp 2"
    # validation is the importer's: the same reasons as a file row
    for bad, field in [({"name": "x", "price": -1}, "price"), ({"name": "x", "stock": "many"}, "stock"),
                       ({"name": "x", "rating": 9}, "rating"), ({"name": "x", "currency": "dollars"}, "currency"),
                       ({"name": "x", "supplier_id": "NO-SUCH-SUPPLIER"}, "supplier_id")]:
        err = error_shape(api.client.put("/api/v1/catalog/products/P-1", headers=h, json=bad), 422)
        assert any(d["field"] == field for d in err["details"]["fields"]), (bad, err)
    error_shape(api.client.put("/api/v1/catalog/products/P-1", headers=h, json={"price": 3}), 422)  # name required
    error_shape(api.client.put("/api/v1/catalog/products/P-1", headers=h, json={"name": "x", "status": "gone"}), 422)
    error_shape(api.client.patch("/api/v1/catalog/products/NOPE", headers=h, json={"price": 3}), 404)
    # nothing was written by the rejected requests
    assert api.client.get("/api/v1/catalog/products/P-1", headers=h).get_json()["name"] == "Aurora Lamp 2"


def test_cypher_and_html_looking_values_are_stored_as_text(api):
    name = "<script>alert(1)</script> ') MATCH (n) DETACH DELETE n //"
    r = api.client.put("/api/v1/catalog/products/P-X", headers=api.h(), json={"name": name})
    assert r.status_code == 201
    assert api.client.get("/api/v1/catalog/products/P-X", headers=api.h()).get_json()["name"] == name


def test_delete_discontinues_and_hard_delete_is_guarded(api, falkordb_server):
    from tests.api_support import build_api, drop_api

    h = api.h()
    api.client.put("/api/v1/catalog/products/D-1", headers=h, json={"name": "Old Radio", "price": 10})
    r = api.client.delete("/api/v1/catalog/products/D-1", headers=h)
    assert r.status_code == 200 and r.get_json()["product"]["status"] == "discontinued"
    assert api.client.get("/api/v1/catalog/products/D-1", headers=h).get_json()["status"] == "discontinued"
    error_shape(api.client.delete("/api/v1/catalog/products/D-1?hard=true", headers=h), 403)  # not allowed here
    error_shape(api.client.delete("/api/v1/catalog/products/NOPE", headers=h), 404)

    a = build_api(falkordb_server.data_dir, api_allow_hard_delete=True)
    try:
        a.client.put("/api/v1/catalog/products/D-2", headers=a.h(), json={"name": "Gone Soon"})
        error_shape(a.client.delete("/api/v1/catalog/products/D-2?hard=true", headers=a.h(a.key("catalog"))), 403)
        v = _version(a)
        r = a.client.delete("/api/v1/catalog/products/D-2?hard=true", headers=a.h(a.key("admin")))
        assert r.status_code == 200 and r.get_json()["catalog_version"] > v
        error_shape(a.client.get("/api/v1/catalog/products/D-2", headers=a.h()), 404)
        # a product that orders contain is never removed
        wait_job(a, _upload(a, [
            ("products.csv", b"sku,name\nD-3,Ordered Thing\n"),
            ("customers.csv", b"customer_id,name\nC9,Someone\n"),
            ("orders.csv", b"order_id,customer_id,status,placed_at\nO9,C9,placed,2026-01-02\n"),
            ("order_items.csv", b"order_id,sku,quantity\nO9,D-3,1\n")]).get_json()["job_id"], a.h())
        error_shape(a.client.delete("/api/v1/catalog/products/D-3?hard=true", headers=a.h()), 409)
        assert a.client.get("/api/v1/catalog/products/D-3", headers=a.h()).status_code == 200
    finally:
        drop_api(a)


def test_one_import_at_a_time_per_graph(api):
    api.services.redis().set(f"kgqa:{api.settings.graph_name}:import-lock", "otherjob123:tok", ex=30)
    err = error_shape(_upload(api, [("products.csv", PRODUCTS)]), 409)
    assert err["details"]["job_id"] == "otherjob123"
    # a dry run does not need the lock
    dry = _upload(api, [("products.csv", PRODUCTS)], "?dry_run=true")
    assert dry.status_code == 202
    assert wait_job(api, dry.get_json()["job_id"], api.h())["status"] == "done"
    api.services.redis().delete(f"kgqa:{api.settings.graph_name}:import-lock")
    assert _upload(api, [("products.csv", PRODUCTS)]).status_code == 202
