"""Operations routes: liveness, readiness, Prometheus metrics, hand-offs for agents and the audit
log of catalog writes (`admin` blueprint); the development sign-in (`dev` blueprint, registered
only when API_DEV_MODE is on); the chat page (`web`)."""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request

from api import schemas as S
from api.auth import authenticate, mint_customer_token, require
from api.chat import check_session_id
from api.errors import BadRequest, Forbidden, NotFound
from api.handoffs import HandoffList, HandoffRecord, HandoffReleased, summary_of
from api.openapi import doc, qparam
from common.errors import KGQAError
from kg.audit import CURSOR_PATTERN, parse_since
from kg.queries.embeddings import VECTOR_LABEL
from kg.queries.system import SAMPLE_CUSTOMERS

log = logging.getLogger("kgqa.api")

bp = Blueprint("admin", __name__)
dev_bp = Blueprint("dev", __name__, url_prefix="/api/v1/dev")
web_bp = Blueprint("web", __name__, static_folder="static", static_url_path="/static/chat")


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
@doc(summary="Readiness: graph and state store reachable, the graph's indexes built, models loaded, linking index built, product names embedded (LINKING_VECTORS=graph)", tag="ops",
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
    try:  # what the graph server is still building after loading its data, and whether readiness waits for it
        building = services.indexes_building()
        waited = {k for k in building if not (k == VECTOR_LABEL and services.settings.ready_before_vector_index)}
        checks["indexes"] = {"ok": not waited, **({"building": building} if building else {})}
    except Exception:  # noqa: BLE001 - readiness reports, never raises
        checks["indexes"] = {"ok": False}
    if services.settings.linking_vectors == "graph":
        try:
            missing = services.vectors_to_embed()
            checks["vectors"] = {"ok": missing == 0, "to_embed": missing,
                                 **({"hint": "run ./kgqa graph embed"} if missing else {})}
        except Exception:  # noqa: BLE001 - readiness reports, never raises
            checks["vectors"] = {"ok": False}
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


# -- hand-offs (agents) --------------------------------------------------------------------------------
HANDOFF_PATH = {"session_id": {"type": "string", "minLength": 8, "maxLength": 64, "pattern": "^[A-Za-z0-9_-]+$"}}


@bp.get("/api/v1/admin/handoffs")
@doc(summary="Hand-offs: conversations passed to a person, newest first", tag="admin", reply=HandoffList,
     params=[qparam("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Records (default 50)")],
     description="Each record carries the real session id (the conversation the agent takes up), why it was "
                 "handed off, what was asked, the products and orders that came up, and the shopper's last "
                 "messages with personal data masked; later events of the same hand-off (`returned`, "
                 "`released`, `timeout`) are records too. Also POSTed to HANDOFF_WEBHOOK_URL when set.",
     errors={400: "`limit` is not a number between 1 and 500."})
@require("admin")
def handoffs():
    services = _services()
    limit = S.query_int("limit", 50, lo=1, hi=500)
    return jsonify(HandoffList(handoffs=services.handoffs.recent(limit)).model_dump(mode="json"))


@bp.post("/api/v1/admin/handoffs/<session_id>/release")
@doc(summary="Hand a conversation back to the bot", tag="admin", reply=HandoffReleased, path_params=HANDOFF_PATH,
     description="After a hand-off the bot answers only that a colleague will reply; an agent who is done (or "
                 "will not take it) hands the session back, and the bot answers the next message. Idempotent: "
                 "`released` is false when the session was not handed off.",
     errors={404: "No such session (unknown or expired).",
             409: "The session was changed by concurrent requests; retry after `Retry-After`."})
@require("admin")
def release_handoff(session_id: str):
    services = _services()
    check_session_id(session_id)
    released = services.sessions.release_handoff(session_id)
    if released:
        rec = HandoffRecord(event="released", at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            session_id=session_id, by=g.principal.key_id)
        rec.summary = summary_of(rec)
        try:
            services.handoffs.add(rec)
        except KGQAError:  # released all the same: the log is for the record
            log.warning("hand-off release not logged")
    return jsonify(HandoffReleased(session_id=session_id, released=released).model_dump(mode="json"))


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
    # the page gets the chat-only key; the every-role DEV_API_KEY is printed in the terminal only
    key = settings.dev_chat_key.get_secret_value() if settings.dev_chat_key else None
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
