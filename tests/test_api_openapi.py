"""The OpenAPI document (apispec over the pydantic models) and its Swagger UI page: a valid
OpenAPI 3.1 document; per operation only the errors the route can return, with one error shape;
the customer-token header on chat routes only; the chat status enum; examples that validate
against their schemas; the guides the description links to; Swagger UI served from the package,
nothing from elsewhere.

The document needs no graph: these tests build the app on settings alone (create_app does no I/O)."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate

from api import schemas as S
from api.app import create_app
from api.examples import ERROR_EXAMPLES, EXAMPLES
from api.openapi import DOCS_DIR, ERRORS
from common.settings import Settings
from tests.api_support import DEV_KEY, SECRET

KEYED = {401, 403, 429, 503}
JSON_BODY = {400, 413, 415, 422}


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    app = create_app(Settings(_env_file=None, dev_api_key=DEV_KEY, customer_token_secret=SECRET, api_dev_mode=True,
                              llm_backend="none", api_preload_engine=False))
    yield app.test_client()


@pytest.fixture(scope="module")
def doc(client) -> dict[str, Any]:
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    return r.get_json()


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


def _resolve(doc: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in obj:
        section, name = obj["$ref"].split("/")[-2:]
        obj = doc["components"][section][name]
    return obj


def test_the_document_is_valid_openapi_3_1(doc):
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # raises on any violation of the OpenAPI 3.1 schema, dangling $refs included
    assert len({op["operationId"] for _, _, op in _operations(doc)}) == len(list(_operations(doc)))


def test_each_operation_lists_only_the_errors_its_route_can_return(doc):
    def statuses(path: str, method: str) -> set[int]:
        return {int(s) for s in doc["paths"][path][method]["responses"]}

    ok = {200}
    assert statuses("/api/v1/chat", "post") == ok | KEYED | JSON_BODY | {404, 409}
    assert statuses("/api/v1/chat/stream", "post") == ok | KEYED | JSON_BODY | {404, 409}
    assert statuses("/api/v1/chat/sessions/{session_id}", "get") == ok | KEYED | {404}
    assert statuses("/api/v1/chat/feedback", "post") == ok | KEYED | JSON_BODY | {404}
    assert statuses("/api/v1/catalog/import", "post") == {202} | KEYED | {400, 409, 413, 415, 422}
    assert statuses("/api/v1/catalog/import/{job_id}", "get") == ok | KEYED | {404}
    assert statuses("/api/v1/catalog/products/{sku}", "get") == ok | KEYED | {404}
    assert statuses("/api/v1/catalog/products/{sku}", "put") == ok | {201} | KEYED | JSON_BODY | {404}
    assert statuses("/api/v1/catalog/products/{sku}", "patch") == ok | KEYED | JSON_BODY | {404}
    assert statuses("/api/v1/catalog/products/{sku}", "delete") == ok | KEYED | {400, 404, 409}
    assert statuses("/api/v1/graph/query", "post") == ok | KEYED | JSON_BODY
    assert statuses("/api/v1/graph/schema", "get") == ok | KEYED
    assert statuses("/api/v1/analytics/{name}", "get") == ok | KEYED | {400, 404}
    assert statuses("/api/v1/healthz", "get") == ok
    assert statuses("/api/v1/readyz", "get") == ok | {503}
    assert statuses("/api/v1/metrics", "get") == ok | {401, 403, 503}
    assert statuses("/api/v1/openapi.json", "get") == ok
    assert statuses("/api/v1/docs", "get") == ok
    # every error response is the one error shape, and says when to retry where it should
    for path, method, op in _operations(doc):
        for status, response in op["responses"].items():
            if int(status) < 400 or path.endswith("/readyz"):
                continue
            response = _resolve(doc, response)
            content = response["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}, (path, method, status)
            assert content["examples"], (path, method, status)
            if status in ("429", "503"):
                assert "Retry-After" in response["headers"], (path, method, status)


def test_role_routes_say_so_and_public_ones_need_no_key(doc):
    for path, method, op in _operations(doc):
        if {"401", "403"} <= set(op["responses"]) and path != "/api/v1/metrics":
            assert op["security"] == [{"apiKey": []}] and "Requires the `" in op["description"], (path, method)
    for path in ("/api/v1/healthz", "/api/v1/readyz", "/api/v1/openapi.json", "/api/v1/docs"):
        assert doc["paths"][path]["get"]["security"] == []
    assert doc["paths"]["/api/v1/metrics"]["get"]["security"] == [{}, {"apiKey": []}]


def test_the_customer_token_header_is_on_chat_routes_only(doc):
    token_param = doc["components"]["parameters"]["CustomerToken"]
    assert token_param["name"] == "X-Customer-Token" and token_param["in"] == "header"
    seen = []
    for path, method, op in _operations(doc):
        params = [_resolve(doc, p) for p in op.get("parameters", [])]
        has_token = any(p["name"].lower() == "x-customer-token" for p in params)
        assert has_token == path.startswith("/api/v1/chat"), (path, method)
        seen.append(has_token)
    assert sum(seen) == 4


def test_chat_status_is_an_enum_of_the_engines_statuses(doc):
    from qa.types import Status

    schemas = doc["components"]["schemas"]
    status = schemas["ChatResponse"]["properties"]["status"]
    assert status["enum"] == list(typing.get_args(S.ChatStatus))
    # the API's list is the dialogue engine's: a status the engine adds must be added here too
    assert set(typing.get_args(S.ChatStatus)) == set(typing.get_args(Status))
    assert "status" in schemas["ChatResponse"]["required"]
    turn_status = schemas["TurnOut"]["properties"]["status"]  # a session's turns: the same values, or null
    assert [s.get("enum", s.get("type")) for s in turn_status["anyOf"]] == [status["enum"], "null"]


def test_one_error_shape_details_always_an_object(doc):
    schemas = doc["components"]["schemas"]
    body = schemas["ErrorBody"]
    assert set(body["required"]) == {"code", "message", "details"}
    assert body["properties"]["details"] == {"$ref": "#/components/schemas/ErrorDetails"}
    details = schemas["ErrorDetails"]
    assert details["type"] == "object" and details["additionalProperties"] is True
    fields = details["properties"]["fields"]["anyOf"][0]
    assert fields["type"] == "array" and fields["items"] == {"$ref": "#/components/schemas/FieldError"}


def test_examples_are_valid_and_on_every_json_body(doc):
    for model, examples in EXAMPLES.items():
        for name, example in examples.items():
            assert example["summary"], (model.__name__, name)
            model.model_validate(example["value"])  # a request example the route accepts, a reply it sends
            if issubclass(model, S.Reply):  # replies are sent in full: the example names every field
                assert set(example["value"]) == set(model.model_fields), (model.__name__, name)
    assert set(ERROR_EXAMPLES) == set(ERRORS)
    for status, examples in ERROR_EXAMPLES.items():
        for example in examples.values():
            err = S.ErrorResponse.model_validate(example["value"]).error
            assert isinstance(example["value"]["error"]["details"], dict) and err.message, status
    # in the document: every JSON request body and every JSON reply carries examples
    for path, method, op in _operations(doc):
        bodies = [op["requestBody"]] if "requestBody" in op else []
        bodies += [_resolve(doc, r) for r in op["responses"].values()]
        for body in bodies:
            content = body.get("content", {}).get("application/json")
            if content is not None and "$ref" in content["schema"]:
                assert content.get("examples"), (path, method)
    stream = doc["paths"]["/api/v1/chat/stream"]["post"]["responses"]["200"]["content"]["text/event-stream"]
    assert "event: final" in stream["example"]


def test_the_description_links_the_guides_and_they_are_served(doc, client):
    description = doc["info"]["description"]
    for name in ("api.md", "import-format.md"):
        assert f"[docs/{name}](/api/v1/docs/{name})" in description
        r = client.get(f"/api/v1/docs/{name}")
        assert r.status_code == 200 and r.content_type == "text/plain; charset=utf-8"
        assert r.get_data() == (DOCS_DIR / name).read_bytes()
    assert b"X-Customer-Token" in client.get("/api/v1/docs/api.md").data
    error = client.get("/api/v1/docs/other.md")
    assert error.status_code == 404 and error.get_json()["error"]["code"] == "not_found"


def test_swagger_ui_is_served_from_the_package_and_nothing_from_elsewhere(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "<script>" not in html  # no inline script: the CSP allows none
    for url in urls:
        r = client.get(url)
        assert r.status_code == 200, url
    bundle = client.get("/api/v1/docs/assets/swagger-ui-bundle.js")
    assert bundle.mimetype == "text/javascript" and b"SwaggerUIBundle" in bundle.data
    init = client.get("/static/chat/docs-init.js").get_data(as_text=True)
    assert "validatorUrl: null" in init and "/api/v1/openapi.json" not in init  # the URL comes from the page
    assert 'data-spec-url="/api/v1/openapi.json"' in html
