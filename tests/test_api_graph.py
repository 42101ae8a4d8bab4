"""Analyst routes on the sample store: read-only Cypher (every kind of write refused, nothing
changed), row and time limits with `truncated`, the schema, and the canned reports with personal
data masked."""

from __future__ import annotations

import pytest

import tests.api_support as support
from qa.engine import IntentOut, TurnResult
from qa.facts import make_fact
from tests.api_support import error_shape

sample_store_dir, shop_api = support.sample_store_dir, support.shop_api

WRITES = [
    "CREATE (n:Product {sku: 'EVIL'}) RETURN n",
    "MATCH (p:Product) SET p.price = 0 RETURN count(p)",
    "MATCH (p:Product) DETACH DELETE p",
    "MERGE (n:Brand {name: 'Evil'}) RETURN n",
    "MATCH (p:Product) REMOVE p.price RETURN count(p)",
    "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
    "CREATE INDEX FOR (n:Evil) ON (n.x)",
    "DROP INDEX ON :Product(sku)",
    "CALL db.idx.fulltext.drop('Product')",
    "CALL dbms.killQuery(1)",
    "MATCH (p:Product) FOREACH (x IN [1] | SET p.price = 0)",
    "MATCH (p) WITH p LIMIT 1 CALL { WITH p SET p.x = 1 } RETURN 1",
    "match (p:Product) set p.price = 0",
    "MATCH (p:Product) /* harmless */ SET p.price = 0",
]


def _count_products(api):
    r = api.client.post("/api/v1/graph/query", headers=api.h(),
                        json={"cypher": "MATCH (p:Product) WHERE p.price > 0 RETURN count(p) AS n"})
    return r.get_json()["rows"][0]["n"]


@pytest.mark.parametrize("cypher", WRITES)
def test_writes_are_refused_and_change_nothing(shop_api, cypher):
    before = _count_products(shop_api)
    r = shop_api.client.post("/api/v1/graph/query", headers=shop_api.h(shop_api.key("analyst")),
                             json={"cypher": cypher})
    err = error_shape(r, 403, "read_only_violation")
    assert "MATCH" not in err["message"] or len(err["message"]) < 200
    assert _count_products(shop_api) == before == 60


def test_read_query_with_params_and_limits(shop_api):
    h = shop_api.h(shop_api.key("analyst"))
    r = shop_api.client.post("/api/v1/graph/query", headers=h, json={
        "cypher": "MATCH (p:Product)-[:MADE_BY]->(b:Brand) WHERE p.price >= $min RETURN p.sku AS sku, b.name AS brand "
                  "ORDER BY sku", "params": {"min": 0}})
    body = r.get_json()
    assert r.status_code == 200 and body["columns"] == ["sku", "brand"] and body["row_count"] == 60
    assert body["truncated"] is False
    capped = shop_api.client.post("/api/v1/graph/query", headers=h,
                                  json={"cypher": "MATCH (p:Product) RETURN p.sku AS sku", "limit": 7}).get_json()
    assert capped["row_count"] == 7 and capped["truncated"] is True
    nodes = shop_api.client.post("/api/v1/graph/query", headers=h,
                                 json={"cypher": "MATCH (p:Product)-[r:IN_CATEGORY]->(c) RETURN p, r, c LIMIT 2"})
    assert nodes.status_code == 200 and nodes.get_json()["rows"][0]["p"]["_labels"] == ["Product"]
    schema_search = shop_api.client.post("/api/v1/graph/query", headers=h, json={
        "cypher": "CALL db.labels() YIELD label RETURN label ORDER BY label"})
    assert schema_search.status_code == 200 and {"label": "Product"} in schema_search.get_json()["rows"]


def test_row_limit_setting_caps_any_request(falkordb_server, sample_store_dir):
    from tests.api_support import build_api, drop_api, load_sample

    a = build_api(falkordb_server.data_dir, analyst_row_limit=5)
    try:
        load_sample(a, sample_store_dir)
        body = a.client.post("/api/v1/graph/query", headers=a.h(),
                             json={"cypher": "MATCH (p:Product) RETURN p.sku", "limit": 50}).get_json()
        assert body["row_count"] == 5 and body["truncated"] is True
    finally:
        drop_api(a)


def test_slow_query_hits_the_time_limit(falkordb_server, sample_store_dir):
    from tests.api_support import build_api, drop_api, load_sample

    a = build_api(falkordb_server.data_dir, analyst_timeout_ms=50)
    try:
        load_sample(a, sample_store_dir)
        r = a.client.post("/api/v1/graph/query", headers=a.h(), json={
            "cypher": "UNWIND range(1, 3000000) AS x WITH x WHERE x % 7 = 0 RETURN count(x) AS n"})
        error_shape(r, 422, "query_timeout")
    finally:
        drop_api(a)


def test_bad_queries_are_400_without_server_text(shop_api):
    for cypher, params in [("MATCH (n RETURN n", {}), ("RETURN $missing + 1", {}), ("RETURN foo(1)", {}),
                           ("RETURN $p", {"p": "a\x00b"}), ("MATCH (n) RETURN m", {})]:
        r = shop_api.client.post("/api/v1/graph/query", headers=shop_api.h(), json={"cypher": cypher, "params": params})
        err = error_shape(r, 400, "query_error")
        assert err["message"] == "the graph database rejected the query"
    error_shape(shop_api.client.post("/api/v1/graph/query", headers=shop_api.h(), json={"cypher": ""}), 422)
    error_shape(shop_api.client.post("/api/v1/graph/query", headers=shop_api.h(),
                                     json={"cypher": "RETURN 1", "params": {"bad key": 1}}), 422)


def test_schema(shop_api):
    body = shop_api.client.get("/api/v1/graph/schema", headers=shop_api.h()).get_json()
    labels = {x["label"]: x for x in body["labels"]}
    assert labels["Product"]["key"] == "sku" and labels["Product"]["count"] == 60
    assert {r["type"] for r in body["relationships"]} >= {"MADE_BY", "PLACED", "CONTAINS"}
    assert body["backend"] == "falkordb"


def test_graph_reports(shop_api):
    h = shop_api.h()
    top = shop_api.client.get("/api/v1/analytics/top_products?limit=5", headers=h).get_json()
    assert top["report"] == "top_products" and 0 < len(top["rows"]) <= 5
    units = [r["units"] for r in top["rows"]]
    assert units == sorted(units, reverse=True)
    pairs = shop_api.client.get("/api/v1/analytics/co_purchases?limit=5", headers=h).get_json()["rows"]
    assert pairs and all(p["sku_a"] < p["sku_b"] and p["orders"] >= 1 for p in pairs)
    one = shop_api.client.get(f"/api/v1/analytics/co_purchases?sku={pairs[0]['sku_a']}", headers=h).get_json()
    assert any(r["sku_b"] == pairs[0]["sku_b"] for r in one["rows"])


def _turn(session: str, intent: str, status: str = "ok", confidence: float = 0.9, handoff: bool = False,
          facts=None) -> TurnResult:
    return TurnResult(session_id=session, answer="...", intent=IntentOut(name=intent, confidence=confidence),
                      status=status, handoff=handoff, facts=facts or [])


def test_conversation_reports_mask_personal_data(shop_api):
    from api import analytics

    s = shop_api.services
    analytics.record_turn(s, _turn("sess-a", "product_price"), customer_id=None, message="price of the aurora?",
                          threshold=0.5)
    analytics.record_turn(s, _turn("sess-a", "product_price"), customer_id=None, message="and the mug?",
                          threshold=0.5)
    analytics.record_turn(s, _turn("sess-b", "out_of_scope", "no_answer", 0.2), customer_id="C00003",
                          message="email me at jane.doe@example.com or call +44 7700 900123", threshold=0.5)
    analytics.record_turn(s, _turn("sess-c", "complaint", "handoff", 0.95, True,
                                   [make_fact(kind="handoff", data={"reason": "complaint"})]),
                          customer_id="C00004", message="this is terrible, my card 4111111111111111", threshold=0.5)
    h = shop_api.h()
    intents = shop_api.client.get("/api/v1/analytics/intents", headers=h).get_json()["rows"]
    assert intents[0] == {"intent": "product_price", "turns": 2, "share": 0.5, "mean_confidence": 0.9,
                          "low_confidence": 0}
    unanswered = shop_api.client.get("/api/v1/analytics/unanswered", headers=h)
    text = unanswered.get_data(as_text=True)
    assert "jane.doe" not in text and "7700" not in text and "[email]" in text
    assert unanswered.get_json()["rows"][0]["status"] == "no_answer"
    handoffs = shop_api.client.get("/api/v1/analytics/handoffs", headers=h)
    htext = handoffs.get_data(as_text=True)
    row = handoffs.get_json()["rows"][0]
    assert row["reason"] == "complaint" and "C00004" not in htext and "4111111111111111" not in htext
    # the stored entries themselves hold no raw personal data either
    raw = str(shop_api.services.redis().xrange(f"kgqa:{shop_api.settings.graph_name}:turns"))
    assert "jane.doe" not in raw and "C00003" not in raw and "sess-b" not in raw


def test_feedback_report(shop_api):
    from tests.api_support import owned_session

    sid = owned_session(shop_api, "C00001", turns=2)
    h = shop_api.h(customer="C00001")
    for turn, rating, comment in [(1, 5, "great"), (2, 1, "wrong, mail me at bob@example.org")]:
        r = shop_api.client.post("/api/v1/chat/feedback", headers=h,
                                 json={"session_id": sid, "turn": turn, "rating": rating, "comment": comment})
        assert r.status_code == 200, r.get_json()
    rows = shop_api.client.get("/api/v1/analytics/feedback", headers=shop_api.h()).get_json()["rows"]
    assert rows[0]["summary"] is True and rows[0]["count"] >= 2
    assert {r["rating"] for r in rows[1:]} >= {1, 5}
    assert "bob@example.org" not in str(rows)


def test_unknown_report_is_404(shop_api):
    error_shape(shop_api.client.get("/api/v1/analytics/customers_emails", headers=shop_api.h()), 404)


# -- analyst queries bounded inside the server, and how many run at once ----------------------------------
def test_a_query_that_cannot_be_row_limited_is_a_400_with_the_reason(shop_api):
    h = shop_api.h(shop_api.key("analyst"))
    for cypher, reason in [("CALL db.idx.fulltext.queryNodes('Product', 'aurora')", "must_end_with_return"),
                           ("MATCH (p:Product) RETURN p } RETURN p UNION ALL CALL { RETURN 1 AS p", "syntax_error")]:
        err = error_shape(shop_api.client.post("/api/v1/graph/query", headers=h, json={"cypher": cypher}), 400,
                          "query_error")
        assert err["details"] == {"reason": reason}
    ok = shop_api.client.post("/api/v1/graph/query", headers=h, json={"cypher": "WITH 2 AS n RETURN n"})
    assert ok.status_code == 200 and ok.get_json()["rows"] == [{"n": 2}]


def test_a_huge_result_is_capped_in_the_server(shop_api):
    h = shop_api.h(shop_api.key("analyst"))
    r = shop_api.client.post("/api/v1/graph/query", headers=h, json={
        "cypher": "MATCH (a:Product),(b:Product),(c:Product) RETURN a.sku AS a, b.sku AS b, c.sku AS c"})
    body = r.get_json()
    assert r.status_code == 200 and body["row_count"] == 1000 and body["truncated"] is True
    assert body["columns"] == ["a", "b", "c"]  # the query's own order


def test_a_query_over_the_memory_cap_is_a_422(make_server, sample_store_dir):
    from tests.api_support import build_api, drop_api

    server = make_server(query_mem_capacity=16 * 1024 * 1024)
    a = build_api(server.data_dir)
    try:
        r = a.client.post("/api/v1/graph/query", headers=a.h(),
                          json={"cypher": "WITH range(1, 3000000) AS l RETURN size(l) AS n"})
        err = error_shape(r, 422, "query_memory_limit")
        assert "memory" in err["message"]
        assert a.client.post("/api/v1/graph/query", headers=a.h(), json={"cypher": "RETURN 1 AS one"}).status_code == 200
    finally:
        drop_api(a)


def test_analyst_queries_beyond_the_concurrency_cap_get_429(falkordb_server):
    from api.ratelimit import analyst_slot
    from tests.api_support import build_api, drop_api

    a = build_api(falkordb_server.data_dir, analyst_max_concurrent=2)
    try:
        h = a.h(a.key("analyst"))
        q = {"cypher": "RETURN 1 AS one"}
        with a.app.app_context():
            with analyst_slot(a.services):  # two queries running (on any worker)
                with analyst_slot(a.services):
                    err = error_shape(a.client.post("/api/v1/graph/query", headers=h, json=q), 429, "too_many_queries")
                    assert err["details"] == {"max_concurrent": 2, "bucket": "analyst"}
                assert a.client.post("/api/v1/graph/query", headers=h, json=q).status_code == 200  # one free
                assert a.client.post("/api/v1/graph/query", headers=h, json=q).status_code == 200  # released after
        slots = f"kgqa:{a.settings.graph_name}:analyst:running"
        r = a.services.redis()
        # A worker that died mid-query leaves its slot behind; once past its expiry it counts for nothing.
        r.zadd(slots, {"dead-worker-1": 1, "dead-worker-2": 2})
        assert a.client.post("/api/v1/graph/query", headers=h, json=q).status_code == 200
        # Two live slots (expiring in a minute, server time) do block.
        now_ms = int(r.time()[0]) * 1000
        r.zadd(slots, {"live-1": now_ms + 60_000, "live-2": now_ms + 60_000})
        blocked = a.client.post("/api/v1/graph/query", headers=h, json=q)
        error_shape(blocked, 429, "too_many_queries")
        assert blocked.headers["Retry-After"] == "1"
    finally:
        drop_api(a)
