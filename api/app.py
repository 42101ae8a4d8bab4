"""The app factory: `create_app(settings, services=...)`.

Everything the app uses is set up per app, never at import: a `Services` object around the
composition root's container (common/bootstrap.py: graph store, Redis, the dialogue engine, built
lazily) goes into `app.extensions["kgqa"]`. Tests pass their own `Settings`, or a `Services` built
on a container they made (a store they hold, fakes).
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING

from flask import Flask, Response, g, request

from common.settings import Settings

if TYPE_CHECKING:
    from api.services import Services

log = logging.getLogger("kgqa.api")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def loopback_host(host: str) -> bool:
    """A Host header naming this machine: localhost, 127.0.0.1 or [::1], with or without a port."""
    host = (host or "").strip().lower()
    for name in _LOOPBACK_HOSTS:
        if host == name or (host.startswith(name + ":") and host[len(name) + 1:].isdigit()):
            return True
    return False


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> Flask:
    from api import admin, catalog, chat, errors, graph, openapi
    from api.errors import Forbidden
    from api.services import Services

    if services is None:
        services = Services.from_settings(settings or Settings())
    settings = services.settings

    app = Flask(__name__, static_folder=None)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.api_max_content_length,
        MAX_FORM_MEMORY_SIZE=min(settings.api_max_content_length, 1024 * 1024),
        MAX_FORM_PARTS=200,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["kgqa"] = services

    app.register_blueprint(chat.bp)
    app.register_blueprint(catalog.bp)
    app.register_blueprint(graph.bp)
    app.register_blueprint(admin.bp)
    openapi.register(app)
    app.register_blueprint(admin.web_bp)
    if settings.api_dev_mode:
        app.register_blueprint(admin.dev_bp)
    errors.register(app)

    origins = [o.strip() for o in settings.api_cors_origins.split(",") if o.strip()]

    @app.before_request
    def _start() -> Response | None:
        g.started = time.perf_counter()
        rid = request.headers.get("X-Request-Id", "")
        g.request_id = rid if 0 < len(rid) <= 64 and rid.replace("-", "").isalnum() else secrets.token_hex(8)
        if settings.api_dev_mode and not loopback_host(request.host):
            # Development mode hands out keys to the page it serves: only to pages opened as this
            # machine (a DNS-rebinding page has its own host name in Host), for every route.
            raise Forbidden("development mode answers only requests for localhost, 127.0.0.1 or [::1]",
                            details={"host": request.host[:100]})
        if request.method == "OPTIONS" and origins and request.headers.get("Origin"):
            resp = app.make_response(("", 204))
            return resp
        return None

    @app.after_request
    def _finish(resp: Response) -> Response:
        rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        elapsed = time.perf_counter() - getattr(g, "started", time.perf_counter())
        services.metrics.latency.labels(rule, request.method).observe(elapsed)
        services.metrics.requests.labels(rule, request.method, str(resp.status_code)).inc()
        if resp.status_code == 503:
            services.metrics.unavailable.inc()
        resp.headers["X-Request-Id"] = g.get("request_id", "")
        resp.headers["X-Instance"] = services.instance_id
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        if resp.mimetype == "text/html":
            resp.headers.setdefault("Content-Security-Policy", CSP)
            resp.headers.setdefault("X-Frame-Options", "DENY")
        if rate := g.get("rate_limit"):
            resp.headers["X-RateLimit-Limit"] = str(rate)
            resp.headers["X-RateLimit-Remaining"] = str(g.get("rate_remaining", 0))
        _cors(resp, origins)
        principal = g.get("principal")
        log.info("request", extra={
            "method": request.method, "route": rule, "status": resp.status_code,
            "ms": round(elapsed * 1000, 1), "request_id": g.get("request_id"),
            "key": principal.key_id if principal else None,
            "signed_in": bool(principal and principal.customer_id)})
        return resp

    @app.teardown_appcontext
    def _teardown(exc: BaseException | None) -> None:  # nothing per request to close
        return None

    return app


def _cors(resp: Response, origins: list[str]) -> None:
    origin = request.headers.get("Origin")
    if not origins or not origin:
        return
    if "*" in origins:
        resp.headers["Access-Control-Allow-Origin"] = "*"
    elif origin in origins:
        resp.headers["Access-Control-Allow-Origin"] = origin
        resp.headers["Vary"] = "Origin"
    else:
        return
    if request.method == "OPTIONS":
        resp.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
        resp.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, X-Customer-Token, X-Request-Id"
        resp.headers["Access-Control-Max-Age"] = "600"
    resp.headers["Access-Control-Expose-Headers"] = "Retry-After, X-Request-Id"
