"""The OpenAPI 3.1 document, built with apispec from the registered routes and the pydantic models,
and the Swagger UI page that reads it.

Each view carries its description through `@doc(...)` (summary, request and reply models, query
and path parameters, the errors only it can raise); `@require(role)` adds the role. `build` walks
the app's URL map, so a route that exists is documented and a documented route exists. The
pydantic models' JSON schemas (`models_json_schema`, one call so names stay unique) are registered
as apispec schema components; the error replies, the customer-token header and `Retry-After` are
components too, referenced by name.

Which errors an operation lists follows from what the route does: a key (401, 403, 429 from the
per-key rate limit, 503 when keys, sessions, the graph or the models cannot be reached), a JSON
body (400, 413, 415, 422), a multipart upload (413, 415, 422), query parameters (400), an id in
the path (404), plus what a view declares in `errors`.

Served at `/api/v1/openapi.json` (no key). `/api/v1/docs` is Swagger UI from the flask-swagger-ui
package's files (nothing from a CDN), started by `static/docs-init.js` because the page's Content
Security Policy allows no inline script.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from apispec import APISpec
from flask import Blueprint, Flask, Response, abort, current_app, jsonify, render_template, request, send_file
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from werkzeug.routing import Rule

from api import schemas as S
from api.examples import ERROR_EXAMPLES, EXAMPLES, STREAM_EXAMPLE

API_VERSION: Final = "1.0.0"
OPENAPI_VERSION: Final = "3.1.0"
PREFIX: Final = "/api/v1"
DOCS_DIR: Final = Path(__file__).resolve().parent.parent / "docs"
# The contract documents the description links to, served beside the document.
GUIDES: Final = {"api.md": "The HTTP API as implemented", "import-format.md": "The catalog import format"}

bp = Blueprint("openapi", __name__, url_prefix=PREFIX)

F = TypeVar("F", bound=Callable[..., Any])

# status -> (response component, what it means); each operation references the ones it can return.
ERRORS: Final[dict[int, tuple[str, str]]] = {
    400: ("BadRequest", "Malformed JSON, JSON nested too deep, or a bad query parameter."),
    401: ("Unauthorized", "No API key, or an unknown or revoked one."),
    403: ("Forbidden", "The API key lacks the route's role (`admin` implies every role)."),
    404: ("NotFound", "No such thing, or not the caller's: both get the same reply."),
    409: ("Conflict", "A conflicting change; see the message."),
    413: ("PayloadTooLarge", "The body, a file, a string or the number of values is over its limit."),
    415: ("UnsupportedMediaType", "The body has another media type than the route reads."),
    422: ("ValidationError", "The body is well-formed but not valid: `details.fields` lists each problem."),
    429: ("RateLimited", "Over a requests-per-minute limit (the key's, the shopper's or the client address's); "
                         "wait `Retry-After` seconds."),
    503: ("Unavailable", "The graph, the state store (keys, sessions, rate limits) or the models are not "
                         "available yet; retry after `Retry-After` seconds."),
}
KEYED_ERRORS: Final = (401, 403, 429, 503)
JSON_BODY_ERRORS: Final = (400, 413, 415, 422)
UPLOAD_ERRORS: Final = (413, 415, 422)

TAGS: Final = [
    {"name": "chat", "description": "Shoppers' conversations (`chat` role). The shopper is identified only by "
                                    "`X-Customer-Token`."},
    {"name": "catalog", "description": "Imports and single-product edits (`catalog` role; customers, orders and "
                                       "order items need the `orders` role)."},
    {"name": "graph", "description": "Read-only Cypher, the schema and canned reports (`analyst` role)."},
    {"name": "ops", "description": "Liveness, readiness and metrics."},
    {"name": "admin", "description": "Agents and operators (`admin` role): conversations handed to a person, "
                                     "and the audit log of catalog writes."},
    {"name": "dev", "description": "Development mode only (API_DEV_MODE), from the loopback interface only."},
    {"name": "meta", "description": "This document, its page and the guides it links to."},
]

DESCRIPTION: Final = """\
Answers shoppers' questions from a shop's knowledge graph (chat), loads and edits the catalog
(catalog managers) and queries the graph read-only (analysts).

* **Guides**: [docs/api.md](/api/v1/docs/api.md) (this API as the product implements it: keys,
  customer token, sessions, every route, errors) and [docs/import-format.md](/api/v1/docs/import-format.md)
  (the catalog import files, their columns and reading rules).
* **Keys**: `Authorization: Bearer <api key>`. A key has roles `chat`, `catalog`, `orders`, `analyst`,
  `admin` (`admin` implies every role); a missing or invalid key is 401, a key without the route's role 403.
* **Shopper**: `X-Customer-Token: <JWT>` (HS256, claims `sub` = customer id and `exp`) on chat routes
  only. A missing, invalid or expired token makes the shopper anonymous: order questions then get the
  sign-in reply (`status: need_sign_in`).
* **Errors**: always `{"error": {"code", "message", "details"}}` with `details` an object;
  field-level problems are in `details.fields`. 429 and 503 carry `Retry-After`.
"""


@dataclass(frozen=True)
class Doc:
    """The OpenAPI description of one view (see `doc`)."""

    summary: str
    tag: str
    description: str = ""
    body: type[BaseModel] | None = None
    multipart: Mapping[str, Any] | None = None
    reply: type[BaseModel] | None = None
    status: int = 200
    extra_replies: Mapping[int, type[BaseModel]] = field(default_factory=dict)
    params: Sequence[Mapping[str, Any]] = ()
    path_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    stream: str | None = None
    content: str | None = None
    errors: Mapping[int, str | None] = field(default_factory=dict)
    customer_token: bool = False
    key: Literal["role", "none", "optional"] = "role"


def doc(*, summary: str, tag: str, description: str = "", body: type[BaseModel] | None = None,
        multipart: Mapping[str, Any] | None = None, reply: type[BaseModel] | None = None, status: int = 200,
        extra_replies: Mapping[int, type[BaseModel]] | None = None, params: Sequence[Mapping[str, Any]] = (),
        path_params: Mapping[str, Mapping[str, Any]] | None = None, stream: str | None = None,
        content: str | None = None, errors: Mapping[int, str | None] | None = None,
        customer_token: bool = False, public: bool = False, optional_key: bool = False) -> Callable[[F], F]:
    """Attach the OpenAPI description to a view.

    `errors` adds statuses beyond those the route's shape implies (status -> the route's own reason,
    or None for the general one). `customer_token`: the route reads `X-Customer-Token`. `public`: no
    key; `optional_key`: a key only when the configuration asks for one (/metrics).
    """
    unknown = set(errors or {}) - set(ERRORS)
    if unknown:
        raise ValueError(f"no error response for status {sorted(unknown)}")
    meta = Doc(summary=summary, tag=tag, description=description, body=body, multipart=multipart, reply=reply,
               status=status, extra_replies=dict(extra_replies or {}), params=tuple(params),
               path_params=dict(path_params or {}), stream=stream, content=content, errors=dict(errors or {}),
               customer_token=customer_token, key="optional" if optional_key else "none" if public else "role")

    def deco(view: F) -> F:
        setattr(view, "__openapi__", meta)  # noqa: B010 - read back by `build`
        return view

    return deco


def qparam(name: str, schema: Mapping[str, Any], description: str = "", required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": dict(schema), "description": description}


_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def _documented(app: Flask) -> list[tuple[Rule, Callable[..., Any], Doc]]:
    out = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        meta = getattr(view, "__openapi__", None)
        if view is not None and isinstance(meta, Doc) and rule.rule.startswith(PREFIX):
            out.append((rule, view, meta))
    return out


def _schemas(docs: Sequence[Doc]) -> tuple[dict[str, Any], dict[tuple[type[BaseModel], str], str]]:
    """Every model's JSON schema (pydantic), and the component name of each (model, mode)."""
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (S.ErrorResponse, "serialization"), (S.TokenEvent, "serialization"), (S.ChatResponse, "serialization")]
    for d in docs:
        if d.body is not None:
            wanted.append((d.body, "validation"))
        wanted.extend((m, "serialization") for m in [d.reply, *d.extra_replies.values()] if m is not None)
    unique = list(dict.fromkeys(wanted))
    keys, top = models_json_schema(unique, ref_template="#/components/schemas/{model}")
    names: dict[tuple[type[BaseModel], str], str] = {}
    for (model, mode), ref in keys.items():
        if isinstance(model, type) and issubclass(model, BaseModel):
            names[(model, mode)] = str(ref["$ref"]).rsplit("/", 1)[1]
    return dict(top.get("$defs", {})), names


def _examples(model: type[BaseModel] | None) -> dict[str, Any]:
    found = EXAMPLES.get(model) if model is not None else None
    return {"examples": found} if found else {}


def _error_response(status: int, reason: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": reason or ERRORS[status][1],
        "content": {"application/json": {"schema": "ErrorResponse", "examples": ERROR_EXAMPLES[status]}},
    }
    if status in (429, 503):
        response["headers"] = {"Retry-After": "RetryAfter"}
    return response


def _error_statuses(meta: Doc, rule: Rule) -> dict[int, str | None]:
    statuses: dict[int, str | None] = {}
    if meta.key == "role":
        statuses.update(dict.fromkeys(KEYED_ERRORS))
    if meta.body is not None:
        statuses.update(dict.fromkeys(JSON_BODY_ERRORS))
    if meta.multipart is not None:
        statuses.update(dict.fromkeys(UPLOAD_ERRORS))
    if meta.params:
        statuses[400] = None
    if rule.arguments:
        statuses[404] = None
    statuses.update(meta.errors)
    return dict(sorted(statuses.items()))


def _operation(rule: Rule, method: str, view: Callable[..., Any], meta: Doc,
               names: Mapping[tuple[type[BaseModel], str], str]) -> dict[str, Any]:
    role = getattr(view, "required_role", None)
    if (role is None) != (meta.key != "role"):
        raise ValueError(f"{rule.rule}: @doc says key={meta.key!r} but @require gives role {role!r}")
    op: dict[str, Any] = {"operationId": f"{rule.endpoint.replace('.', '_')}_{method}", "summary": meta.summary,
                          "tags": [meta.tag]}
    description = meta.description
    if role:
        roles = getattr(view, "required_roles", (role,))
        description = (description + "\n\n" if description else "") + \
            f"Requires the {' or '.join(f'`{r}`' for r in roles)} role (`admin` implies every role)."
    if description:
        op["description"] = description

    parameters: list[Any] = []
    for arg in sorted(rule.arguments):
        schema = dict(meta.path_params.get(arg, {"type": "string", "minLength": 1}))
        parameters.append({"name": arg, "in": "path", "required": True, "schema": schema})
    parameters.extend(dict(p) for p in meta.params)
    if meta.customer_token:
        parameters.append("CustomerToken")
    if parameters:
        op["parameters"] = parameters

    if meta.body is not None and method in ("post", "put", "patch"):
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": names[(meta.body, "validation")], **_examples(meta.body)}}}
    elif meta.multipart is not None and method == "post":
        op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": dict(meta.multipart)}}}

    ok: dict[str, Any] = {"description": "OK"}
    if meta.stream:
        # One event's schema: its `data` is one JSON document (a token, the final reply or an error).
        data = {"type": "string", "contentMediaType": "application/json",
                "contentSchema": {"anyOf": [{"$ref": f"#/components/schemas/{names[(m, 'serialization')]}"}
                                            for m in (S.TokenEvent, S.ChatResponse, S.ErrorResponse)]}}
        ok = {"description": meta.stream, "content": {"text/event-stream": {
            "schema": {"type": "object", "required": ["event", "data"],
                       "properties": {"event": {"type": "string", "enum": ["token", "final", "error"]}, "data": data}},
            "example": STREAM_EXAMPLE}}}
    elif meta.content:
        kind = "object" if meta.content.endswith("json") else "string"
        ok["content"] = {meta.content: {"schema": {"type": kind}}}
    elif meta.reply is not None:
        ok["content"] = {"application/json": {"schema": names[(meta.reply, "serialization")],
                                              **_examples(meta.reply)}}
    responses: dict[str, Any] = {str(meta.status): ok}
    for code, model in meta.extra_replies.items():
        entry: dict[str, Any] = {"description": "OK" if code < 400 else "The same reply, with this status",
                                 "content": {"application/json": {"schema": names[(model, "serialization")],
                                                                  **_examples(model)}}}
        if code == 503:
            entry["headers"] = {"Retry-After": "RetryAfter"}
        responses[str(code)] = entry
    for code, reason in _error_statuses(meta, rule).items():
        if str(code) not in responses:
            responses[str(code)] = _error_response(code, reason) if reason else ERRORS[code][0]
    op["responses"] = responses
    op["security"] = {"role": [{"apiKey": []}], "none": [], "optional": [{}, {"apiKey": []}]}[meta.key]
    return op


def build(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of the app's `/api/v1` routes."""
    documented = _documented(app)
    components, names = _schemas([meta for _, _, meta in documented])
    spec = APISpec(title="kgqa: knowledge-graph question answering for e-commerce", version=API_VERSION,
                   openapi_version=OPENAPI_VERSION, info={"description": DESCRIPTION},
                   servers=[{"url": "/"}], security=[{"apiKey": []}], tags=TAGS)
    for name, schema in components.items():
        spec.components.schema(name, schema)
    spec.components.security_scheme("apiKey", {
        "type": "http", "scheme": "bearer", "description": "An API key (`kgqa_<id>_<secret>`) or DEV_API_KEY."})
    spec.components.header("RetryAfter", {"description": "Seconds to wait before retrying.",
                                          "schema": {"type": "integer", "minimum": 1}})
    spec.components.parameter("CustomerToken", "header", {
        "name": "X-Customer-Token", "required": False, "schema": {"type": "string", "maxLength": 4096},
        "description": "The signed-in shopper: a JWT the shop signs (HS256, claims `sub` = customer id and "
                       "`exp`). Without a valid one the shopper is anonymous."})
    for status, (name, _) in ERRORS.items():
        spec.components.response(name, _error_response(status))
    per_endpoint = Counter(rule.endpoint for rule, _, _ in documented)
    for rule, view, meta in documented:
        path = _CONVERTER.sub(lambda m: "{" + m.group(2) + "}", rule.rule)
        operations = {}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op = _operation(rule, method.lower(), view, meta, names)
            if per_endpoint[rule.endpoint] > 1:  # one view under several paths: one operation id per path
                op["operationId"] += "_" + re.sub(r"\W+", "_", path.rsplit("/", 1)[1]).strip("_")
            operations[method.lower()] = op
        spec.path(path=path, operations=operations)
    return spec.to_dict()


# -- routes ------------------------------------------------------------------------------------------------
@bp.get("/openapi.json")
@doc(summary="This OpenAPI document", tag="meta", public=True, content="application/json")
def openapi_json() -> Response:
    cached = current_app.extensions.get("kgqa.openapi")
    if cached is None:
        cached = current_app.extensions["kgqa.openapi"] = build(current_app)
    return jsonify(cached)


@bp.get("/docs")
@doc(summary="Interactive API documentation (Swagger UI)", tag="meta", public=True, content="text/html")
def docs_page() -> str:
    return render_template("docs.html")


@bp.get("/docs/api.md")
@bp.get("/docs/import-format.md")
@doc(summary="The guides the document links to (Markdown)", tag="meta", public=True, content="text/plain",
     errors={404: "The guide is not installed with this server."})
def guide() -> Response:
    name = request.path.rsplit("/", 1)[1]
    path = DOCS_DIR / name
    if name not in GUIDES or not path.is_file():
        abort(404)
    return send_file(path, mimetype="text/plain", max_age=300)


def swagger_ui_dir() -> Path:
    """Swagger UI's files as the flask-swagger-ui package ships them."""
    import flask_swagger_ui

    return Path(flask_swagger_ui.__file__).resolve().parent / "dist"


def register(app: Flask) -> None:
    """The document's routes, and Swagger UI's files at /api/v1/docs/assets/."""
    app.register_blueprint(bp)
    app.register_blueprint(Blueprint("swagger_ui", __name__, static_folder=swagger_ui_dir(),
                                     static_url_path=f"{PREFIX}/docs/assets"))
