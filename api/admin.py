"""Operations routes: liveness, readiness, Prometheus metrics and the audit log of catalog writes
(`admin` blueprint); the development sign-in (`dev` blueprint, registered only when API_DEV_MODE is
on); the chat page (`web`)."""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request

from api import schemas as S
from api.auth import authenticate, mint_customer_token, require
from api.errors import BadRequest, Forbidden, NotFound
from api.openapi import doc, qparam
from kg.audit import CURSOR_PATTERN, parse_since
from kg.queries import q

bp = Blueprint("admin", __name__)
dev_bp = Blueprint("dev", __name__, url_prefix="/api/v1/dev")
web_bp = Blueprint("web", __name__, static_folder="static", static_url_path="/static/chat")

SAMPLE_CUSTOMERS = q(
    "api.dev.sample_customers",
    "MATCH (c:Customer)-[:PLACED]->(:Order) RETURN DISTINCT c.customer_id AS customer_id "
    "ORDER BY customer_id LIMIT $limit",
    description="A few customers with orders, for the development sign-in on the chat page.",
)


def _services() -> Any:
    return current_app.extensions["kgqa"]


# -- health --------------------------------------------------------------------------------------------
@bp.get("/healthz")
@bp.get("/api/v1/healthz")
@doc(summary="Liveness: the process answers", tag="ops", reply=S.HealthResponse, public=True)
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@bp.get("/api/v1/readyz")
@doc(summary="Readiness: graph reachable, state store reachable, models loaded", tag="ops",
     reply=S.ReadyResponse, extra_replies={503: S.ReadyResponse}, public=True)
def readyz():
    services = _services()
    checks: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        health = services.store.health()
        checks["graph"] = {"ok": bool(health.ok), "backend": health.backend}
        if not health.ok:
            services.connection_lost()
    except Exception:  # noqa: BLE001 - readiness reports, never raises
        checks["graph"] = {"ok": False}
    try:
        services.redis_call(lambda r: r.ping())
        checks["state"] = {"ok": True}
    except Exception:  # noqa: BLE001
        checks["state"] = {"ok": False}
    if not services.engine_loaded and services.settings.api_preload_engine:
        services.warm_async()
    checks["models"] = {"ok": services.engine_loaded, "error": services.engine_error is not None}
    checks["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    ready = all(v["ok"] for k, v in checks.items() if isinstance(v, dict))
    resp = jsonify({"status": "ready" if ready else "not_ready", "checks": checks})
    resp.status_code = 200 if ready else 503
    if not ready:
        resp.headers["Retry-After"] = "1"
    return resp


@bp.get("/metrics")
@bp.get("/api/v1/metrics")
@doc(summary="Prometheus metrics", tag="ops", content="text/plain", optional_key=True,
     description="Public when API_METRICS_PUBLIC is on; otherwise a key with the `admin` role.",
     errors={401: "No valid API key (when the metrics are not public).",
             403: "The key lacks the `admin` role (when the metrics are not public).",
             503: "The state store cannot be reached to check the key."})
def metrics():
    services = _services()
    if not services.settings.api_metrics_public:
        principal = authenticate()
        if not principal.has("admin"):
            raise Forbidden("this API key lacks the `admin` role")
    body, ctype = services.metrics.render()
    return Response(body, mimetype=ctype.split(";")[0], headers={"Content-Type": ctype})


# -- the audit log ----------------------------------------------------------------------------------------
_CURSOR = re.compile(CURSOR_PATTERN)


def _text_param(name: str, most: int) -> str | None:
    value = request.args.get(name)
    if value is None:
        return None
    if not value or len(value) > most or re.search(r"[\x00-\x1f\x7f]", value):
        raise BadRequest(f"query parameter `{name}` must be 1 to {most} printable characters")
    return value


@bp.get("/api/v1/admin/audit")
@doc(summary="The audit log of catalog writes", tag="admin", reply=S.AuditPage,
     params=[qparam("key_id", {"type": "string", "maxLength": 100}, "Only writes by this API key (or `cli:<user>`)"),
             qparam("node", {"type": "string", "maxLength": 200}, "Only writes to this node key (sku, order id, ...)"),
             qparam("sku", {"type": "string", "maxLength": 200}, "The same as `node`, for products"),
             qparam("since", {"type": "string", "maxLength": 40}, "Only writes at or after this ISO 8601 date or time"),
             qparam("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Entries per page (default 50)"),
             qparam("cursor", {"type": "string", "pattern": CURSOR_PATTERN, "maxLength": 51},
                    "`next_cursor` of the previous page: older entries")],
     description="Every catalog write, newest first: who (the key), where (the route, or the import job, file "
                 "and line), which node, and the old and new values of the fields that changed. Kept in the "
                 "state store as a capped stream (AUDIT_MAX_ENTRIES). A page with a selective filter may hold "
                 "fewer entries than `limit` and still a `next_cursor`: read on with it.")
@require("admin")
def audit_log():

    key_id = _text_param("key_id", 100)
    node = _text_param("node", 200) or _text_param("sku", 200)
    limit = S.query_int("limit", 50, lo=1, hi=500)
    cursor = request.args.get("cursor")
    if cursor is not None and not _CURSOR.match(cursor):
        raise BadRequest("query parameter `cursor` must be a `next_cursor` value")
    since_ms = None
    since = _text_param("since", 40)
    if since is not None:
        try:
            since_ms = parse_since(since)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    entries, next_cursor = _services().audit.read(key_id=key_id, node=node, since_ms=since_ms, cursor=cursor,
                                                  limit=limit)
    return jsonify(S.AuditPage(entries=[S.AuditEntry.model_validate(e) for e in entries], next_cursor=next_cursor)
                   .model_dump(mode="json"))


# -- development sign-in -----------------------------------------------------------------------------------
def _loopback_only() -> None:
    try:
        if ipaddress.ip_address((request.remote_addr or "").split("%")[0]).is_loopback:
            return
    except ValueError:
        pass
    raise NotFound("no such route")


@dev_bp.get("/config")
@doc(summary="Development: the chat page's key and sample customers (loopback only)", tag="dev",
     reply=S.DevConfigResponse, public=True, errors={404: "Not from the loopback interface."})
def dev_config():
    _loopback_only()
    services = _services()
    settings = services.settings
    customers: list[str] = []
    try:
        customers = [r["customer_id"] for r in services.graph.run(SAMPLE_CUSTOMERS, {"limit": 8})
                     if r.get("customer_id")]
    except Exception:  # noqa: BLE001 - an empty graph or a graph still starting: no sample customers
        customers = []
    key = settings.dev_api_key.get_secret_value() if settings.dev_api_key else None
    from api.auth import customer_secret

    return jsonify(S.DevConfigResponse(api_key=key, customers=customers,
                                       sign_in=customer_secret(settings) is not None).model_dump(mode="json"))


@dev_bp.post("/customer-token")
@doc(summary="Development: mint a customer token (loopback only)", tag="dev", body=S.DevTokenRequest,
     reply=S.DevTokenResponse, errors={404: "Not from the loopback interface."})
@require("chat")
def dev_token():
    _loopback_only()
    body = S.parse_body(S.DevTokenRequest, _services().settings)
    token = mint_customer_token(body.customer_id, _services().settings, ttl_s=body.ttl_s)
    g.minted_for = body.customer_id
    return jsonify(S.DevTokenResponse(token=token, customer_id=body.customer_id, expires_in=body.ttl_s)
                   .model_dump(mode="json"))


# -- the chat page -------------------------------------------------------------------------------------------
@web_bp.get("/")
@web_bp.get("/chat")
def chat_page():
    return render_template("chat.html", dev=_services().settings.api_dev_mode)
