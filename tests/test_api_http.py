"""The HTTP boundary: every bad body is a 4xx with the JSON error shape (never a 500, never a stack
trace), sizes and depth are limited, media types are checked, CORS is configurable, rate limits
answer 429 with Retry-After, and the operations routes behave."""

from __future__ import annotations

import json

import pytest

import tests.api_support as support
from tests.api_support import build_api, drop_api, error_shape, owned_session

api = support.api

JSON_ROUTES = [
    ("post", "/api/v1/chat"), ("post", "/api/v1/chat/stream"), ("post", "/api/v1/chat/feedback"),
    ("put", "/api/v1/catalog/products/SKU-1"), ("patch", "/api/v1/catalog/products/SKU-1"),
    ("post", "/api/v1/graph/query"),
]


def _send(api, method, path, data, content_type="application/json", headers=None):
    return getattr(api.client, method)(path, data=data, content_type=content_type, headers=headers or api.h())


@pytest.mark.parametrize("method,path", JSON_ROUTES)
def test_malformed_json_is_400(api, method, path):
    for raw in ("{", "{'a': 1}", '{"message": "x",}', "nul", "\xff\xfe", "NaN", '{"a": Infinity}', "", "   ",
                '{"message": "\\ud800"}', "1" * 400):
        err = error_shape(_send(api, method, path, raw), 400)
        assert err["code"] in ("invalid_json", "bad_request")


@pytest.mark.parametrize("method,path", JSON_ROUTES)
def test_wrong_types_are_422_with_field_details(api, method, path):
    for body in ([], [1, 2], "text", 17, None, {"message": 5, "session_id": [], "cypher": {}, "turn": "x",
                                                 "rating": "good", "name": 3, "price": {"a": 1}}):
        err = error_shape(_send(api, method, path, json.dumps(body)), 422, "validation_error")
        fields = err["details"]["fields"]
        assert isinstance(fields, list) and fields
        assert all({"field", "message", "type"} <= set(d) for d in fields)


def test_unknown_fields_are_422(api):
    err = error_shape(api.client.post("/api/v1/chat", json={"message": "hi", "customer_id": "C00002"},
                                      headers=api.h()), 422)
    assert any(d["field"] == "customer_id" and d["type"] == "extra_forbidden" for d in err["details"]["fields"])


@pytest.mark.parametrize("method,path", JSON_ROUTES)
def test_deeply_nested_json_is_400(api, method, path):
    for depth in (40, 1000, 5000, 100_000):
        for open_, close in (("[", "]"), ('{"a":', "}")):
            raw = open_ * depth + "1" + close * depth
            if len(raw) > api.settings.api_max_json_bytes:
                error_shape(_send(api, method, path, raw), 413)
            else:
                error_shape(_send(api, method, path, raw), 400)


@pytest.mark.parametrize("method,path", JSON_ROUTES)
def test_oversized_bodies_and_huge_fields(api, method, path):
    big = json.dumps({"message": "x" * (api.settings.api_max_json_bytes + 10)})
    error_shape(_send(api, method, path, big), 413, "payload_too_large")
    # a field over its own limit but within the body limit: 413 (any string over 64 KiB) or 422
    r = _send(api, method, path, json.dumps({"message": "x" * 70_000, "cypher": "x" * 70_000, "name": "x" * 70_000}))
    assert r.status_code in (413, 422)
    error_shape(r, r.status_code)
    r = _send(api, method, path, json.dumps({"message": "x" * 5000, "cypher": "x" * 30_000, "name": "x" * 5000,
                                             "session_id": "x" * 5000}))
    error_shape(r, 422)
    many = json.dumps({"message": "hi", "params": {f"k{i}": [0] * 10 for i in range(6000)}})
    r = _send(api, method, path, many)
    assert r.status_code in (413, 422)


def test_whole_request_size_limit_is_413(falkordb_server):
    a = build_api(falkordb_server.data_dir, api_max_content_length=4096)
    try:
        data = {"files": [(__import__("io").BytesIO(b"sku,name\n" + b"A,b\n" * 5000), "products.csv")]}
        r = a.client.post("/api/v1/catalog/import", data=data, content_type="multipart/form-data", headers=a.h())
        error_shape(r, 413)
    finally:
        drop_api(a)


@pytest.mark.parametrize("method,path", JSON_ROUTES)
def test_wrong_content_type_is_415(api, method, path):
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                  "application/xml", "application/jsonx"):
        error_shape(_send(api, method, path, '{"message": "hi"}', content_type=ctype), 415, "unsupported_media_type")
    r = getattr(api.client, method)(path, data='{"message": "hi"}', headers=api.h())  # no content type at all
    error_shape(r, 415)


def test_import_needs_multipart(api):
    error_shape(api.client.post("/api/v1/catalog/import", json={"files": []}, headers=api.h()), 415)


def test_control_characters_in_a_message_are_422(api):
    err = error_shape(api.client.post("/api/v1/chat", json={"message": "hi\x00there"}, headers=api.h()), 422)
    assert err["details"]["fields"][0]["field"] == "message"


def test_unknown_route_and_method_are_json(api):
    error_shape(api.client.get("/api/v1/nope", headers=api.h()), 404, "not_found")
    error_shape(api.client.get("/nope"), 404)
    r = api.client.get("/api/v1/chat", headers=api.h())
    error_shape(r, 405, "method_not_allowed")
    assert "POST" in r.headers["Allow"]
    error_shape(api.client.delete("/api/v1/graph/query", headers=api.h()), 405)


def test_malformed_path_values_are_404_not_500(api):
    for path in ("/api/v1/chat/sessions/%00abc", "/api/v1/chat/sessions/" + "a" * 300,
                 "/api/v1/catalog/products/%00", "/api/v1/catalog/products/%20x", "/api/v1/catalog/import/%0a",
                 "/api/v1/analytics/%00", "/api/v1/analytics/nope"):
        error_shape(api.client.get(path, headers=api.h()), 404)


def test_bad_query_parameters_are_400(api):
    error_shape(api.client.get("/api/v1/analytics/intents?limit=abc", headers=api.h()), 400)
    error_shape(api.client.get("/api/v1/analytics/intents?limit=0", headers=api.h()), 400)
    error_shape(api.client.get("/api/v1/analytics/intents?days=99999", headers=api.h()), 400)
    error_shape(api.client.delete("/api/v1/catalog/products/X?hard=maybe", headers=api.h()), 400)


def test_health_ready_metrics(api):
    assert api.client.get("/healthz").get_json() == {"status": "ok"}
    assert api.client.get("/api/v1/healthz").status_code == 200
    r = api.client.get("/readyz")
    body = r.get_json()
    assert body["checks"]["graph"]["ok"] is True and body["checks"]["state"]["ok"] is True
    assert body["checks"]["indexes"] == {"ok": True}  # the graph's indexes are built (none listed as building)
    # no models are loaded in this app (preload off, no chat yet): not ready, and it says why
    assert r.status_code == 503 and body["status"] == "not_ready" and body["checks"]["models"]["ok"] is False
    error_shape(api.client.get("/metrics"), 401)
    error_shape(api.client.get("/metrics", headers=api.h(api.key("chat"))), 403)
    m = api.client.get("/metrics", headers=api.h())
    assert m.status_code == 200 and m.mimetype == "text/plain"
    text = m.get_data(as_text=True)
    assert "kgqa_http_request_seconds_bucket" in text and 'route="/readyz"' in text


def test_metrics_can_be_public(falkordb_server):
    a = build_api(falkordb_server.data_dir, api_metrics_public=True)
    try:
        assert a.client.get("/metrics").status_code == 200
    finally:
        drop_api(a)


def test_openapi_document_and_docs_page(api):
    r = api.client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.get_json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path, method in [("/api/v1/chat", "post"), ("/api/v1/chat/stream", "post"),
                         ("/api/v1/chat/sessions/{session_id}", "get"), ("/api/v1/chat/feedback", "post"),
                         ("/api/v1/catalog/import", "post"), ("/api/v1/catalog/import/{job_id}", "get"),
                         ("/api/v1/catalog/products/{sku}", "get"), ("/api/v1/catalog/products/{sku}", "put"),
                         ("/api/v1/catalog/products/{sku}", "patch"), ("/api/v1/catalog/products/{sku}", "delete"),
                         ("/api/v1/graph/query", "post"), ("/api/v1/graph/schema", "get"),
                         ("/api/v1/analytics/{name}", "get"), ("/api/v1/healthz", "get"),
                         ("/api/v1/readyz", "get"), ("/api/v1/metrics", "get")]:
        assert method in paths[path], (path, method)
    chat = paths["/api/v1/chat"]["post"]
    ref = chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(doc["components"]["schemas"][ref]["properties"]) == {"session_id", "message"}
    assert "Requires the `chat` role" in chat["description"]
    assert paths["/api/v1/healthz"]["get"]["security"] == []
    # every route of the app is documented
    documented = {p for p in paths}
    for rule in api.app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and "static" not in rule.endpoint:
            assert rule.rule.replace("<", "{").replace(">", "}") in documented, rule.rule
    page = api.client.get("/api/v1/docs")
    assert page.status_code == 200 and b"/api/v1/docs/assets/swagger-ui-bundle.js" in page.data
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_cors_is_off_by_default_and_configurable(api, falkordb_server):
    r = api.client.get("/healthz", headers={"Origin": "https://shop.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
    a = build_api(falkordb_server.data_dir, api_cors_origins="https://shop.example")
    try:
        r = a.client.get("/healthz", headers={"Origin": "https://shop.example"})
        assert r.headers["Access-Control-Allow-Origin"] == "https://shop.example"
        assert a.client.get("/healthz", headers={"Origin": "https://evil.example"}).headers.get(
            "Access-Control-Allow-Origin") is None
        pre = a.client.options("/api/v1/chat", headers={"Origin": "https://shop.example",
                                                        "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 204 and "X-Customer-Token" in pre.headers["Access-Control-Allow-Headers"]
    finally:
        drop_api(a)


def test_rate_limit_is_429_with_retry_after(falkordb_server):
    a = build_api(falkordb_server.data_dir, api_rate_limit_per_minute=5)
    try:
        key = a.key("analyst")
        codes = [a.client.get("/api/v1/graph/schema", headers=a.h(key)).status_code for _ in range(7)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
        r = a.client.get("/api/v1/graph/schema", headers=a.h(key))
        error_shape(r, 429, "rate_limited")
        assert 1 <= int(r.headers["Retry-After"]) <= 61
        # per key: another key is not limited by the first one's use
        assert a.client.get("/api/v1/graph/schema", headers=a.h(a.key("admin"))).status_code == 200
        # a key's own limit wins over the default
        key2, _ = a.services.keys.create("tiny", ["analyst"], rate_limit_per_minute=1)
        assert [a.client.get("/api/v1/graph/schema", headers=a.h(key2)).status_code for _ in range(2)] == [200, 429]
    finally:
        drop_api(a)


def test_every_response_has_security_headers_and_a_request_id(api):
    r = api.client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert r.headers["X-Request-Id"] == "abc-123" and r.headers["X-Content-Type-Options"] == "nosniff"
    r = api.client.get("/healthz", headers={"X-Request-Id": "<script>"})
    assert r.headers["X-Request-Id"] != "<script>"
    page = api.client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"


def test_dev_routes_exist_only_in_dev_mode(api, falkordb_server):
    assert api.client.get("/api/v1/dev/config").status_code == 200
    t = api.client.post("/api/v1/dev/customer-token", json={"customer_id": "C00001"}, headers=api.h())
    assert t.status_code == 200
    sid = owned_session(api, "C00001")
    assert api.client.get(f"/api/v1/chat/sessions/{sid}", headers=api.h(tok=t.get_json()["token"])).status_code == 200
    error_shape(api.client.post("/api/v1/dev/customer-token", json={"customer_id": "C00001"}), 401)
    # the page gets the chat-only key, never the every-role one
    page_key = api.client.get("/api/v1/dev/config").get_json()["api_key"]
    assert page_key == support.DEV_CHAT_KEY
    assert api.client.post("/api/v1/chat", json={"message": "hi"}, headers={"Authorization": f"Bearer {page_key}"}
                           ).status_code != 403
    error_shape(api.client.post("/api/v1/graph/query", json={"cypher": "RETURN 1"},
                                headers={"Authorization": f"Bearer {page_key}"}), 403)
    # not from another machine, even in dev mode
    r = api.client.get("/api/v1/dev/config", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    error_shape(r, 404)
    # nor for a page that reached this machine under another name (DNS rebinding), on any route
    for path in ("/api/v1/dev/config", "/api/v1/openapi.json", "/healthz", "/"):
        error_shape(api.client.get(path, headers={"Host": "evil.example"}), 403)
        error_shape(api.client.get(path, headers={"Host": "localhost.evil.example:8000"}), 403)
    for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000"):
        assert api.client.get("/healthz", headers={"Host": host}).status_code == 200, host
    a = build_api(falkordb_server.data_dir, api_dev_mode=False)
    try:
        assert a.client.get("/healthz", headers={"Host": "shop.example"}).status_code == 200  # production
        error_shape(a.client.get("/api/v1/dev/config"), 404)
        error_shape(a.client.post("/api/v1/dev/customer-token", json={"customer_id": "C00001"}, headers=a.h()), 404)
    finally:
        drop_api(a)


def test_a_busy_graph_is_503_with_retry_after_and_keeps_the_connection(api):
    """A named query the graph server stopped at its time limit (`GraphBusy`, raised by the stores:
    tests/test_graph_store.py) is the server's state, not the caller's input: the one error handler
    answers 503 `graph_busy` with Retry-After, and does not drop the graph connection."""
    from api.errors import handle_error
    from common.errors import GraphBusy

    services = api.app.extensions["kgqa"]
    from kg.queries import get

    services.store.run(get("system.ping"))
    connected = services.store._graph  # the store's client, forgotten when a connection is dropped
    assert connected is not None
    with api.app.test_request_context("/api/v1/catalog/products/X", method="PUT"):
        resp = handle_error(GraphBusy("query catalog.upsert ran past its time limit",
                                      details={"query": "catalog.upsert"}))
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"
    body = resp.get_json()
    assert body["error"]["code"] == "graph_busy" and "catalog.upsert" not in json.dumps(body)
    assert services.store._graph is connected
