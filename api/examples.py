"""Examples for the OpenAPI document: request and reply bodies per model, error bodies per status.

Every example is a value the API really accepts or sends: tests validate each one against its
model (`EXAMPLES`) or against the error model (`ERROR_EXAMPLES`), so an example cannot drift from
the schema it illustrates. Names are the keys of an OpenAPI `examples` map (Swagger UI offers
them in a drop-down).
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel

from api import schemas as S
from api.handoffs import HandoffList, HandoffReleased

Example = dict[str, Any]  # an OpenAPI Example Object: {"summary": ..., "value": ...}

_AURORA = {"sku": "NA-HP-000001", "name": "Aurora X2", "brand": "Nordaudio", "category": "Headphones",
           "price": 149.0, "currency": "USD", "stock": 12, "in_stock": True}
_SESSION = "Hq3vN8rZbW1xYt0cLmKp2A"

_CHAT_REPLY = {
    "session_id": _SESSION,
    "turn": 1,
    "answer": "Yes, the Aurora X2 is in stock: 12 available at 149.00 USD.",
    "intent": {"name": "product_availability", "confidence": 0.98},
    "entities": [{"type": "PRODUCT", "text": "aurora x2", "start": 7, "end": 16, "node_id": "NA-HP-000001",
                  "score": 0.97, "candidates": [], "ambiguous": False, "source": "message"}],
    "facts": [{"kind": "product", "data": _AURORA}],
    "handoff": False,
    "verbalizer": "template",
    "suggestions": ["How much is it?", "Which accessories fit it?"],
    "query_name": "products.by_skus",
    "status": "ok",
    "customer_token": None,
}

_HANDOFF = {
    "event": "opened", "at": "2026-11-23T09:31:12Z", "session_id": _SESSION, "reason": "complaint",
    "intent": "complaint", "intents": ["track_order", "complaint"], "customer": "C0…4f2a9c1e", "signed_in": True,
    "turns": 3, "products": [], "orders": ["10452"],
    "entities": [{"type": "ORDER_ID", "text": "10452", "node_id": "10452"}],
    "messages": ["where is my order 10452?", "it was due on Monday, call me on [number]",
                 "I want to complain, this is the third time"],
    "summary": "Opened (complaint). Customer: C0…4f2a9c1e. Asked about: track_order, complaint. Orders: 10452. "
               "Last message: I want to complain, this is the third time",
    "by": None,
}

_JOB_QUEUED = {
    "job_id": "k7Yp2QwErT9sLm4n", "status": "queued", "key_id": "3f9a1c2e", "strict": False, "dry_run": False,
    "create_missing": False, "types": {},
    "files": ["brands.csv", "products.csv"], "created_at": "2026-11-23T09:30:00Z",
    "updated_at": "2026-11-23T09:30:00Z",
    "progress": {"percent": 0.0, "bytes_read": 0, "bytes_total": 18211, "files_done": 0, "files_total": 2, "rows": 0},
    "report": None, "error": None,
}
_JOB_DONE = {
    **_JOB_QUEUED, "status": "done", "updated_at": "2026-11-23T09:30:02Z",
    "progress": {"percent": 100.0, "bytes_read": 18211, "bytes_total": 18211, "files_done": 2, "files_total": 2,
                 "rows": 152},
    "report": {"files": [{"file": "brands.csv", "type": "brands", "format": "csv", "rows": 12, "created": 12,
                          "updated": 0, "unchanged": 0, "rejected": 0, "failed": False},
                         {"file": "products.csv", "type": "products", "format": "csv", "rows": 140, "created": 138,
                          "updated": 0, "unchanged": 0, "rejected": 2, "failed": False}],
               "errors": [{"file": "products.csv", "line": 17, "column": "price", "reason": "not a number"},
                          {"file": "products.csv", "line": 40, "column": "sku", "reason": "required"}],
               "errors_omitted": 0, "warnings": ["brands.csv: unknown columns ignored: founded"],
               "warnings_omitted": 0, "strict": False, "dry_run": False, "written": True, "version": 7},
}
_PRODUCT = {"sku": "NA-HP-000001", "name": "Aurora X2", "brand": "Nordaudio", "category": "Headphones",
            "supplier_id": "S001", "price": 149.0, "currency": "USD", "stock": 12,
            "description": "Over-ear wireless headphones with active noise cancelling.", "warranty_months": 24,
            "rating": 4.6, "status": "active", "attributes": {"colour": "black", "battery_hours": 30},
            "updated_at": "2026-11-23T09:30:02Z"}

EXAMPLES: Final[dict[type[BaseModel], dict[str, Example]]] = {
    # -- chat ------------------------------------------------------------------------------------------
    S.ChatRequest: {
        "new_session": {"summary": "A first message (a session is created)",
                        "value": {"message": "is the aurora x2 in stock?"}},
        "follow_up": {"summary": "A follow-up in the same session",
                      "value": {"session_id": _SESSION, "message": "and how long is its warranty?"}},
        "order": {"summary": "An order question (send X-Customer-Token)",
                  "value": {"session_id": _SESSION, "message": "where is my order 10452?"}},
    },
    S.ChatResponse: {
        "answer": {"summary": "A product answer from the graph", "value": _CHAT_REPLY},
        "sign_in": {"summary": "An order question without a valid customer token", "value": {
            **_CHAT_REPLY, "answer": "Please sign in so I can look up your orders.",
            "intent": {"name": "track_order", "confidence": 0.99},
            "entities": [{"type": "ORDER_ID", "text": "10452", "start": 18, "end": 23, "node_id": None,
                          "score": None, "candidates": [], "ambiguous": False, "source": "message"}],
            "facts": [], "suggestions": [], "query_name": None, "status": "need_sign_in",
            "customer_token": "expired"}},
    },
    S.SessionResponse: {
        "session": {"summary": "A session's turns", "value": {
            "session_id": _SESSION, "signed_in": False, "turns": [
                {"turn": 1, "role": "user", "text": "is the aurora x2 in stock?", "intent": "product_availability",
                 "status": None, "at": "2026-11-23T09:30:00Z"},
                {"turn": 1, "role": "assistant", "text": _CHAT_REPLY["answer"], "intent": None, "status": "ok",
                 "at": "2026-11-23T09:30:00Z"}]}},
    },
    S.FeedbackRequest: {
        "rating": {"summary": "Rate the first reply", "value": {"session_id": _SESSION, "turn": 1, "rating": 5,
                                                                "comment": "quick and right"}},
    },
    S.FeedbackResponse: {
        "recorded": {"summary": "Recorded", "value": {"session_id": _SESSION, "turn": 1, "rating": 5,
                                                      "recorded": True}},
    },
    # -- catalog ---------------------------------------------------------------------------------------
    S.ImportJob: {
        "queued": {"summary": "Just started (the reply to the upload)", "value": _JOB_QUEUED},
        "done": {"summary": "Finished, with two rejected rows", "value": _JOB_DONE},
    },
    S.ProductOut: {"product": {"summary": "A product", "value": _PRODUCT}},
    S.ProductPut: {
        "product": {"summary": "Every column (one left out becomes empty)", "value": {
            k: v for k, v in _PRODUCT.items() if k not in ("sku", "updated_at")}},
    },
    S.ProductFields: {
        "price": {"summary": "A new price and stock", "value": {"price": 139.0, "stock": 20}},
        "attributes": {"summary": "Merge attributes (null removes a key)",
                       "value": {"attributes": {"colour": "silver", "battery_hours": None}}},
    },
    S.ProductChange: {
        "changed": {"summary": "Written", "value": {"product": _PRODUCT, "created": False, "changed": True,
                                                    "catalog_version": 8, "warnings": []}},
    },
    # -- graph -----------------------------------------------------------------------------------------
    S.GraphQueryRequest: {
        "brands": {"summary": "A read-only query with a parameter", "value": {
            "cypher": "MATCH (b:Brand) WHERE b.country = $country RETURN b.name AS brand ORDER BY brand LIMIT 3",
            "params": {"country": "DE"}}},
    },
    S.GraphQueryResponse: {
        "rows": {"summary": "Rows", "value": {"columns": ["brand"], "rows": [{"brand": "Kochwerk"},
                                                                            {"brand": "Nordaudio"}],
                                              "row_count": 2, "truncated": False, "elapsed_ms": 1.84}},
    },
    S.GraphSchemaResponse: {
        "schema": {"summary": "Part of the schema", "value": {
            "backend": "falkordb",
            "labels": [{"label": "Product", "key": "sku", "count": 1000, "fulltext": ["name", "description"],
                        "indexed": ["sku", "status"]}],
            "relationships": [{"type": "MADE_BY", "source": "Product", "target": "Brand", "count": 1000}]}},
    },
    S.AnalyticsResponse: {
        "top_products": {"summary": "top_products", "value": {
            "report": "top_products", "generated_at": "2026-11-23T09:30:00Z", "params": {"limit": 2},
            "rows": [{"sku": "NA-HP-000001", "name": "Aurora X2", "units": 41, "orders": 37},
                     {"sku": "KW-PN-000004", "name": "Kochwerk Pro Pan 28", "units": 30, "orders": 22}]}},
    },
    # -- hand-offs (admin) -----------------------------------------------------------------------------
    HandoffList: {
        "handoffs": {"summary": "A hand-off, then an agent handing the session back", "value": {"handoffs": [
            {**_HANDOFF, "event": "released", "at": "2026-11-23T09:48:40Z", "reason": None, "intent": None,
             "intents": [], "customer": None, "signed_in": False, "turns": None, "orders": [], "entities": [],
             "messages": [], "summary": "Released.", "by": "4f2a9c1e"},
            _HANDOFF]}},
    },
    HandoffReleased: {
        "released": {"summary": "Back with the bot", "value": {"session_id": _SESSION, "released": True}},
        "not_handed_off": {"summary": "It was not handed off", "value": {"session_id": _SESSION, "released": False}},
    },
    # -- operations and development --------------------------------------------------------------------
    S.HealthResponse: {"ok": {"summary": "Alive", "value": {"status": "ok"}}},
    S.ReadyResponse: {
        "ready": {"summary": "Ready", "value": {"status": "ready", "checks": {
            "graph": {"ok": True, "backend": "falkordb"}, "state": {"ok": True},
            "models": {"ok": True, "error": False}, "elapsed_ms": 1.2}}},
        "not_ready": {"summary": "Models still loading", "value": {"status": "not_ready", "checks": {
            "graph": {"ok": True, "backend": "falkordb"}, "state": {"ok": True},
            "models": {"ok": False, "error": False}, "elapsed_ms": 0.9}}},
    },
    S.AuditPage: {"page": {"summary": "A price change through the API and an order moved by an import", "value": {
        "entries": [
            {"id": "1795418200123-0.0", "at": "2026-11-23T09:30:00.123Z", "key_id": "3f9a1c2e",
             "route": "PATCH /api/v1/catalog/products/NA-HP-000001", "job_id": None, "file": None, "line": None,
             "label": "Product", "node": "NA-HP-000001", "action": "updated",
             "old": {"price": 149.0}, "new": {"price": 0.01}},
            {"id": "1795418100456-0.15", "at": "2026-11-23T09:28:20.456Z", "key_id": "7b2e4d10", "route": None,
             "job_id": "k7Yp2QwErT9sLm4n", "file": "orders.csv", "line": 17, "label": "Order", "node": "10452",
             "action": "updated", "old": {"customer_id": "C00001"}, "new": {"customer_id": "C00007"}}],
        "next_cursor": "1795418100456-0.15"}}},
    S.DevTokenRequest: {"token": {"summary": "A token for a sample customer",
                                  "value": {"customer_id": "C00001", "ttl_s": 3600}}},
    S.DevTokenResponse: {"token": {"summary": "A token", "value": {
        "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJDMDAwMDEiLCJleHAiOjE3OTU0MTgyMDB9.c2lnbmF0dXJl",
        "customer_id": "C00001", "expires_in": 3600}}},
    S.DevConfigResponse: {"config": {"summary": "Development configuration", "value": {
        "api_key": "dev-3q9Yc1T0bq0m7QhXz0c2sV4KfJ", "customers": ["C00001", "C00002"], "sign_in": True}}},
    S.ShopExamplesAdd: {"examples": {"summary": "Two labelled customer messages", "value": {
        "examples": [{"text": "the magic phrase to open my profile escapes me", "intent": "recover_password"},
                     {"text": "scrap what i bought yesterday", "intent": "cancel_order"}], "strict": False}}},
    S.ShopExampleList: {"list": {"summary": "The shop's examples", "value": {"version": 3, "count": 1, "examples": [
        {"id": "4f1c0a9e2b7d", "text": "the magic phrase to open my profile escapes me",
         "intent": "recover_password", "added_at": "2026-12-07T09:30:00Z", "added_by": "k_4f2a9c"}]}}},
    S.ShopExamplesReport: {"report": {"summary": "One added, one refused", "value": {
        "strict": False, "written": True, "rows": 2, "version": 4,
        "added": [{"id": "4f1c0a9e2b7d", "text": "the magic phrase to open my profile escapes me",
                   "intent": "recover_password", "field": "examples[0]", "file": None, "line": None, "index": 0}],
        "unchanged": [],
        "errors": [{"field": "examples[1]", "message": "unknown intent 'cancel_purchase' (did you mean cancel_order?)",
                    "kind": "invalid", "file": None, "line": None, "index": 1, "text": "scrap what i bought",
                    "intent": "cancel_purchase", "other_intent": None, "other_line": None, "other_id": None}],
        "contradictions": []}}},
    S.ShopExampleRemoved: {"removed": {"summary": "Removed", "value": {"id": "4f1c0a9e2b7d", "removed": True,
                                                                       "version": 5}}},
}

STREAM_EXAMPLE: Final[str] = (
    'event: token\ndata: {"text":"Yes, the Aurora X2 "}\n\n'
    'event: token\ndata: {"text":"is in stock."}\n\n'
    'event: final\ndata: {"session_id":"' + _SESSION + '","turn":1,"answer":"Yes, the Aurora X2 is in stock.",'
    '"intent":{"name":"product_availability","confidence":0.98},"entities":[],"facts":[],"handoff":false,'
    '"verbalizer":"llm","suggestions":[],"query_name":"products.by_skus","status":"ok","customer_token":null}\n\n'
)


def _error(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}, "request_id": "5f0c2a9e1b7d3c44"}}


# One or more per status; the first is the one a reply of that status is most likely to carry.
ERROR_EXAMPLES: Final[dict[int, dict[str, Example]]] = {
    400: {
        "invalid_json": {"summary": "Malformed JSON", "value": _error(
            "invalid_json", "the body is not valid JSON", {"position": 17})},
        "bad_request": {"summary": "A bad query parameter", "value": _error(
            "bad_request", "query parameter `limit` must be between 1 and 500")},
    },
    401: {"unauthorized": {"summary": "No key, or an unknown or revoked one", "value": _error(
        "unauthorized", "an API key is required (Authorization: Bearer <api key>)")}},
    403: {"forbidden": {"summary": "The key lacks the route's role", "value": _error(
        "forbidden", "this API key lacks the `catalog` role")},
          "import_files": {"summary": "Import files the key may not write", "value": _error(
              "forbidden", "this API key may not import orders.csv, customers.csv (they need the `orders` role); "
                           "nothing was imported", {"files": ["orders.csv", "customers.csv"], "roles": ["orders"]})}},
    404: {"not_found": {"summary": "No such thing (or not yours)", "value": _error(
        "not_found", "no such product")}},
    409: {"conflict": {"summary": "A conflicting change", "value": _error(
        "conflict", "another import is running for this graph", {"job_id": "k7Yp2QwErT9sLm4n"})}},
    413: {"payload_too_large": {"summary": "Too large", "value": _error(
        "payload_too_large", "the JSON body is larger than 262144 bytes")}},
    415: {"unsupported_media_type": {"summary": "Not JSON", "value": _error(
        "unsupported_media_type", "the body must be application/json", {"got": "text/plain"})}},
    422: {"validation_error": {"summary": "Field-level problems", "value": _error(
        "validation_error", "the request is not valid",
        {"fields": [{"field": "message", "message": "Field required", "type": "missing"},
                    {"field": "customer_id", "message": "Extra inputs are not permitted",
                     "type": "extra_forbidden"}]})}},
    429: {"rate_limited": {"summary": "Over the key's limit", "value": _error(
        "rate_limited", "too many requests for this API key", {"limit_per_minute": 60, "bucket": "default"})},
          "shopper": {"summary": "Over one shopper's limit (others on the key are not affected)", "value": _error(
              "rate_limited", "too many requests for this shopper", {"limit_per_minute": 60, "bucket": "shopper"})},
          "too_many_queries": {"summary": "As many analyst queries as allowed are running", "value": _error(
              "too_many_queries", "2 analyst queries are running already; retry shortly",
              {"max_concurrent": 2, "bucket": "analyst"})}},
    503: {"unavailable": {"summary": "Graph, state store or models not available yet", "value": _error(
        "model_not_ready", "the language models are not ready yet")}},
}
