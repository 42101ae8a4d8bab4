"""Operations routes: liveness, readiness, Prometheus metrics (`admin` blueprint); the development
sign-in (`dev` blueprint, registered only when API_DEV_MODE is on); the chat page (`web`)."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request

from api import schemas as S
from api.auth import authenticate, mint_customer_token, require
from api.errors import Forbidden, NotFound
from api.openapi import doc
from kg.queries.system import SAMPLE_CUSTOMERS

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
