"""The API's errors and the one handler that turns any error into `{error: {code, message, details}}`.

`details` is always a JSON object (`{}` when there is nothing to add). Field-level problems (a
request body that fails validation, an import row the importer rejects) are listed under
`details.fields` as `{field, message, type}` records; other errors put named values there
(`{"got": "text/plain"}`, `{"limit_per_minute": 60, "bucket": "default"}`).

The product's error tree (common/errors.py) is mapped family by family to one status each; the
API adds its own small branch (`APIError`) for what only HTTP knows (authentication, roles, media
types, sizes, rate limits). Werkzeug's HTTP errors (404 for an unknown route, 405, 413 from
MAX_CONTENT_LENGTH) get the same JSON shape. Anything else is a 500 whose body says nothing but
"internal error" and a request id: stack traces and database text stay in the server's log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, Response, g, jsonify
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from common.errors import (
    GraphBusy,
    ImportError_,
    InvalidMessage,
    KGQAError,
    ModelNotReady,
    QueryMemoryLimit,
    QueryTimeout,
    ReadOnlyViolation,
    Retryable,
    SessionConflict,
    SessionNotFound,
    UnknownQuery,
)

log = logging.getLogger("kgqa.api")

RETRY_AFTER_S = 1


class APIError(KGQAError):
    """Errors that only exist at the HTTP boundary; `status` is the HTTP status."""

    status = 400
    code = "bad_request"


class BadRequest(APIError):
    status, code = 400, "bad_request"


class InvalidJSON(APIError):
    status, code = 400, "invalid_json"


class Unauthorized(APIError):
    status, code = 401, "unauthorized"


class Forbidden(APIError):
    status, code = 403, "forbidden"


class NotFound(APIError):
    status, code = 404, "not_found"


class Conflict(APIError):
    status, code = 409, "conflict"


class PayloadTooLarge(APIError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(APIError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(APIError):
    status, code = 422, "validation_error"


class RateLimited(APIError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: int, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = max(1, int(retry_after))


class BadQuery(APIError):
    """An analyst's query the graph rejected (syntax, types): the analyst's fault, not ours."""

    status, code = 400, "query_error"


# -- the mapping -------------------------------------------------------------------------------------
# Ordered: the first matching family wins (subclasses before their parents).
def _family_status(exc: KGQAError) -> tuple[int, str, str | None]:
    """(status, code, public message or None to keep the error's own message)."""
    if isinstance(exc, APIError):
        return exc.status, exc.code, None
    if isinstance(exc, SessionNotFound):
        return 404, "session_not_found", "no such session"
    if isinstance(exc, SessionConflict):
        return 409, exc.code, None
    if isinstance(exc, InvalidMessage):
        return 422, exc.code, None
    if isinstance(exc, ReadOnlyViolation):
        return 403, exc.code, None
    if isinstance(exc, QueryTimeout):
        return 422, exc.code, "the query ran past its time limit"
    if isinstance(exc, QueryMemoryLimit):
        return 422, exc.code, "the query needed more memory than the graph server allows"
    if isinstance(exc, ImportError_):
        return 422, exc.code, None
    if isinstance(exc, ModelNotReady):
        return 503, exc.code, "the language models are not ready yet"
    if isinstance(exc, Retryable):
        return 503, getattr(exc, "code", "unavailable"), "the service is temporarily unavailable"
    if isinstance(exc, UnknownQuery):
        return 404, exc.code, "no such report"
    # Anything else (our own named query failed, or a model did: GraphError, NLUError,
    # VerbalizerError, ConfigError) is a defect, never the caller's input. The message would name
    # internals (and may carry server text), so it stays in the log.
    return 500, "internal_error", "internal error"


def error_response(status: int, code: str, message: str, details: Mapping[str, Any] | None = None,
                   headers: Mapping[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message, "details": public_details(details)}
    rid = getattr(g, "request_id", None) if _has_app_ctx() else None
    if rid:
        body["request_id"] = rid
    resp = jsonify({"error": body})
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _has_app_ctx() -> bool:
    from flask import has_app_context

    return has_app_context()


def field_details(errors: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """`details` for field-level problems: `{"fields": [{field, message, type}, ...]}` (at most 50)."""
    fields: list[dict[str, str]] = []
    for err in errors:
        if len(fields) == 50:
            break
        fields.append({"field": str(err.get("field", "")), "message": str(err.get("message", ""))[:300],
                       "type": str(err.get("type", ""))})
    return {"fields": fields}


def validation_details(exc: ValidationError) -> dict[str, Any]:
    """Field-level details without echoing the (possibly huge or personal) input back."""
    return field_details(
        {"field": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", ""),
         "type": err.get("type", "")}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)[:50])


def handle_error(exc: BaseException) -> Response:
    """The one handler: every error raised while serving a request ends here."""
    if isinstance(exc, ValidationError):
        return error_response(422, "validation_error", "the request is not valid", validation_details(exc))
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
                415: "unsupported_media_type", 429: "rate_limited"}.get(status, (exc.name or "error").lower()
                                                                       .replace(" ", "_"))
        message = {404: "no such route", 405: "method not allowed for this route",
                   413: "the request body is too large"}.get(status, exc.name or "error")
        allow: dict[str, str] = {}
        if status == 405:
            resp = exc.get_response()
            if "Allow" in resp.headers:
                allow["Allow"] = resp.headers["Allow"]
        if status >= 500:
            log.error("http error", exc_info=exc)
        return error_response(status, code, message, headers=allow)
    if isinstance(exc, KGQAError):
        status, code, public = _family_status(exc)
        headers: dict[str, str] = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        elif status == 503 or (isinstance(exc, Retryable) and status == 409):
            headers["Retry-After"] = str(RETRY_AFTER_S)
        if status >= 500:
            log.error("request failed", extra={"error": type(exc).__name__, "code": code}, exc_info=status == 500)
            _note_unavailable(exc)
            return error_response(status, code, public or "internal error", headers=headers)
        details = exc.details if isinstance(exc, APIError) or public is None else None
        return error_response(status, code, public or exc.message, details, headers=headers)
    if _is_transport_failure(exc):
        # A connection to the graph or Redis broke mid-call (the server died or restarted under a
        # request on another thread): transient, like GraphUnavailable.
        log.warning("connection failure", extra={"error": type(exc).__name__})
        _note_unavailable(Retryable("connection lost"))
        return error_response(503, "unavailable", "the service is temporarily unavailable",
                              headers={"Retry-After": str(RETRY_AFTER_S)})
    log.error("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal error")


def _is_transport_failure(exc: BaseException) -> bool:
    """An error raised inside the Redis client's socket handling (a dropped or closed connection)."""
    import redis

    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, ConnectionError)):
        return True
    if not isinstance(exc, (OSError, ValueError, AttributeError, redis.RedisError)):
        return False
    tb = exc.__traceback__
    last = ""
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return bool(last) and ("/redis/" in last or "/falkordb/" in last or last.endswith("socket.py"))


def _note_unavailable(exc: BaseException) -> None:
    """Let the services drop a broken connection, so the next request reconnects (and the embedded
    server is restarted) instead of every later request failing the same way. Only for a lost
    connection: models still loading are not one, nor is a query the busy server stopped at its
    time limit (`GraphBusy`: the connection is fine), and `Services.redis_call` has already dropped
    the connection behind a `StateUnavailable` (closing the pool again would break other threads'
    calls in flight)."""
    from api.services import StateUnavailable

    if not isinstance(exc, Retryable) or isinstance(exc, (ModelNotReady, StateUnavailable, GraphBusy)):
        return
    try:
        from flask import current_app

        services = current_app.extensions.get("kgqa")
        if services is not None:
            services.connection_lost()
    except Exception:  # noqa: BLE001 - best effort inside the error path
        log.debug("connection reset failed", exc_info=True)


def public_details(details: Any) -> dict[str, Any]:
    """An error's `details` as the API sends it: always an object. Anything but a mapping (which no
    code path should produce) becomes `{}` rather than changing the shape of the reply."""
    if isinstance(details, Mapping):
        return {str(k): v for k, v in details.items()}
    if details is not None:
        log.warning("error details that are not an object were dropped", extra={"type": type(details).__name__})
    return {}


def register(app: Flask) -> None:
    app.register_error_handler(Exception, handle_error)
