"""The OpenAPI 3.1 document, generated from the registered routes and the pydantic models.

Each view carries its description through `@doc(...)` (summary, request model, reply models,
query parameters); `@require(role)` adds the role. The generator walks the app's URL map, so a
route that exists is documented and a documented route exists. Served at
`/api/v1/openapi.json` (no key), with an interactive page at `/api/v1/docs` that sends requests
from the browser (self-contained: no CDN).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, render_template
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api import schemas as S

API_VERSION = "1.0.0"
PREFIX = "/api/v1"

bp = Blueprint("openapi", __name__, url_prefix=PREFIX)

ERROR_STATUSES = {
    400: "Bad request (malformed JSON, too deep, bad query parameter)",
    401: "Missing or invalid API key",
    403: "The key lacks the role, or the operation is not allowed",
    404: "Not found (or not yours)",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Validation error (field-level details)",
    429: "Rate limited (see Retry-After)",
    503: "Temporarily unavailable (graph or models); retry after Retry-After",
}


def doc(*, summary: str, tag: str, body: type[BaseModel] | None = None, body_type: str = "application/json",
        multipart: dict[str, Any] | None = None, reply: type[BaseModel] | None = None, status: int = 200,
        extra_replies: dict[int, type[BaseModel] | None] | None = None, params: list[dict[str, Any]] | None = None,
        path_params: dict[str, dict[str, Any]] | None = None, stream: str | None = None,
        content: str | None = None, description: str = "", errors: tuple[int, ...] | None = None,
        public: bool = False) -> Callable:
    """Attach the OpenAPI description to a view."""
    meta = dict(summary=summary, tag=tag, body=body, body_type=body_type, multipart=multipart, reply=reply,
                status=status, extra_replies=extra_replies or {}, params=params or [], path_params=path_params or {},
                stream=stream, content=content, description=description, errors=errors, public=public)

    def deco(view: Callable) -> Callable:
        view.__openapi__ = meta  # type: ignore[attr-defined]
        return view

    return deco


def qparam(name: str, schema: dict[str, Any], description: str = "", required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def _models(app: Flask) -> list[tuple[type[BaseModel], str]]:
    found: list[tuple[type[BaseModel], str]] = [(S.ErrorResponse, "serialization"), (S.TokenEvent, "serialization"),
                                                (S.ChatResponse, "serialization")]
    for rule in app.url_map.iter_rules():
        meta = getattr(app.view_functions.get(rule.endpoint), "__openapi__", None)
        if not meta:
            continue
        if meta["body"] is not None:
            found.append((meta["body"], "validation"))
        for m in [meta["reply"], *meta["extra_replies"].values()]:
            if m is not None:
                found.append((m, "serialization"))
    seen: set[tuple[type[BaseModel], str]] = set()
    return [m for m in found if not (m in seen or seen.add(m))]


def build(app: Flask) -> dict[str, Any]:
    models = _models(app)
    keys, top = models_json_schema(models, ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = dict(top.get("$defs", {}))

    def ref(model: type[BaseModel] | None, mode: str) -> dict[str, Any]:
        if model is None:
            return {}
        return keys[(model, mode)]

    err = {"application/json": {"schema": ref(S.ErrorResponse, "serialization")}}
    paths: dict[str, Any] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        meta = getattr(view, "__openapi__", None)
        if not meta or not rule.rule.startswith(PREFIX):
            continue
        path = _CONVERTER.sub(lambda m: "{" + m.group(2) + "}", rule.rule)
        role = getattr(view, "required_role", None)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op: dict[str, Any] = {
                "operationId": f"{rule.endpoint.replace('.', '_')}_{method.lower()}",
                "summary": meta["summary"],
                "tags": [meta["tag"]],
            }
            desc = meta["description"]
            if role:
                desc = (desc + "\n\n" if desc else "") + f"Requires the `{role}` role (`admin` implies every role)."
            if desc:
                op["description"] = desc
            parameters = []
            for arg in rule.arguments:
                schema = meta["path_params"].get(arg, {"type": "string", "minLength": 1})
                parameters.append({"name": arg, "in": "path", "required": True, "schema": schema})
            parameters.extend(meta["params"])
            if role:
                parameters.append({"name": "X-Customer-Token", "in": "header", "required": False,
                                   "schema": {"type": "string"},
                                   "description": "The shopper's JWT (HS256, `sub` = customer id, `exp`)."})
            if parameters:
                op["parameters"] = parameters
            if meta["body"] is not None and method in ("POST", "PUT", "PATCH"):
                op["requestBody"] = {"required": True,
                                     "content": {meta["body_type"]: {"schema": ref(meta["body"], "validation")}}}
            elif meta["multipart"] is not None and method == "POST":
                op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": meta["multipart"]}}}
            responses: dict[str, Any] = {}
            ok: dict[str, Any] = {"description": "OK"}
            if meta["stream"]:
                # Open API 3.1: `schema` describes one event; its `data` is one JSON document, a
                # token, the final reply or an error.
                data = {"type": "string", "contentMediaType": "application/json",
                        "contentSchema": {"anyOf": [ref(S.TokenEvent, "serialization"),
                                                    ref(S.ChatResponse, "serialization"),
                                                    ref(S.ErrorResponse, "serialization")]}}
                ok["content"] = {"text/event-stream": {"schema": {
                    "type": "object", "required": ["event", "data"],
                    "properties": {"event": {"type": "string", "enum": ["token", "final", "error"]}, "data": data}}}}
                ok["description"] = meta["stream"]
            elif meta["content"]:
                kind = "object" if meta["content"].endswith("json") else "string"
                ok["content"] = {meta["content"]: {"schema": {"type": kind}}}
            elif meta["reply"] is not None:
                ok["content"] = {"application/json": {"schema": ref(meta["reply"], "serialization")}}
            responses[str(meta["status"])] = ok
            for code, model in meta["extra_replies"].items():
                entry: dict[str, Any] = {"description": "OK"}
                if model is not None:
                    entry["content"] = {"application/json": {"schema": ref(model, "serialization")}}
                responses[str(code)] = entry
            statuses = meta["errors"] if meta["errors"] is not None else tuple(ERROR_STATUSES)
            for code in statuses:
                if role is None and code in (401, 403) and meta["public"]:
                    continue
                entry = {"description": ERROR_STATUSES[code], "content": err}
                if code in (429, 503):
                    entry["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                        "description": "Seconds to wait"}}
                responses[str(code)] = entry
            op["responses"] = responses
            if role:
                op["security"] = [{"apiKey": []}]
            else:
                op["security"] = []
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kgqa: knowledge-graph question answering for e-commerce",
            "version": API_VERSION,
            "description": (
                "Chat (shoppers), catalog (catalog managers) and graph (analysts) APIs. Errors are "
                "`{error: {code, message, details}}`. Authenticate with `Authorization: Bearer <api key>`; "
                "a shopper's identity comes only from `X-Customer-Token`."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "An API key (`kgqa_<id>_<secret>`) or DEV_API_KEY."}},
        },
        "security": [{"apiKey": []}],
    }


@bp.get("/openapi.json")
@doc(summary="This OpenAPI document", tag="meta", public=True, content="application/json",
     errors=(429, 503))
def openapi_json():
    cached = current_app.extensions.get("kgqa.openapi")
    if cached is None:
        cached = current_app.extensions["kgqa.openapi"] = build(current_app)
    return jsonify(cached)


@bp.get("/docs")
@doc(summary="Interactive API documentation (HTML)", tag="meta", public=True, content="text/html", errors=())
def docs_page():
    return render_template("docs.html")
