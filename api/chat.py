"""Chat routes (`chat` role): a turn, a streamed turn, a session's turns, feedback.

The shopper's identity is the customer token alone (`X-Customer-Token`); an anonymous shopper's
sessions belong to the API key that created them. A session that is not the caller's is a 404
exactly like one that does not exist (qa/state.py compares owners). One exception, one way only:
an anonymous session continued (a turn, never a read) through the key that created it with a
valid customer token becomes that customer's (a shopper who signs in keeps the conversation).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, stream_with_context
from pydantic import TypeAdapter, ValidationError

from api import analytics
from api import schemas as S
from api.auth import require
from api.errors import NotFound, handle_error
from api.handoffs import record_of
from api.openapi import doc
from api.privacy import mask_id
from common.errors import KGQAError
from qa.types import TurnResult

log = logging.getLogger("kgqa.api")

bp = Blueprint("chat", __name__, url_prefix="/api/v1")

SESSION_404 = "No such session for this caller: unknown, expired or someone else's (the same reply for each)."
TURN_ERRORS = {404: SESSION_404 + " (`session_id` in the body)",
               409: "The session was changed by a concurrent request; retry after `Retry-After`."}
SESSION_PATH = {"session_id": {"type": "string", "minLength": 8, "maxLength": 64, "pattern": "^[A-Za-z0-9_-]+$"}}


def _services() -> Any:
    return current_app.extensions["kgqa"]


def _reply(result: TurnResult, token_status: str | None) -> dict[str, Any]:
    """The reply body; `customer_token` says when a token was sent and refused (DESIGN section 6)."""
    body = result.public()
    body["customer_token"] = token_status if token_status in ("expired", "invalid") else None
    return body


def _after_turn(result: Any, message: str) -> None:
    """Metrics and the analytics log. The turn is answered and saved already: a failure here is
    logged, never turned into an error for the shopper."""
    services = _services()
    principal = g.principal
    services.metrics.observe_turn(result)
    try:
        analytics.record_turn(services, result, customer_id=principal.customer_id, message=message,
                              threshold=services.engine().threshold)
    except KGQAError:
        log.warning("turn not logged for analytics")
    event = getattr(result, "handoff_event", None)
    if event is not None:  # handed to a person, or back: the agents' log and the help desk's webhook
        try:
            services.handoffs.add(record_of(result, event, customer_id=principal.customer_id,
                                            key=services.privacy_key))
        except KGQAError:
            log.warning("hand-off not logged", extra={"event": event})
    log.info("chat turn", extra={"intent": result.intent.name, "status": getattr(result, "status", None),
                                 "verbalizer": result.verbalizer, "handoff": result.handoff,
                                 "customer": mask_id(principal.customer_id, services.privacy_key), "key": principal.key_id})


@bp.post("/chat")
@doc(summary="Answer one shopper message", tag="chat", body=S.ChatRequest, reply=S.ChatResponse,
     description="Starts a session when `session_id` is omitted. Order questions need `X-Customer-Token`. "
                 "An anonymous session continued with a valid customer token (through the API key that "
                 "started it) becomes that customer's, one way only: signing in keeps the conversation.",
     customer_token=True, errors=TURN_ERRORS)
@require("chat")
def chat():
    services = _services()
    body = S.parse_body(S.ChatRequest, services.settings)
    principal = g.principal
    engine = services.engine()
    result = engine.handle(body.session_id, body.message, principal.customer_id, caller=principal.key_id)
    _after_turn(result, body.message)
    return jsonify(_reply(result, g.get("customer_token")))


def _sse(event: str, data: Any) -> str:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n"


@bp.post("/chat/stream")
@doc(summary="Answer one shopper message as server-sent events", tag="chat", body=S.ChatRequest,
     stream=("`token` events (`{text}`), then one `final` event holding the /chat reply object; "
             "an `error` event (`{error: {...}}`) if the turn fails after streaming began."),
     customer_token=True, errors=TURN_ERRORS)
@require("chat")
def chat_stream():
    services = _services()
    body = S.parse_body(S.ChatRequest, services.settings)
    principal = g.principal
    engine = services.engine()
    gen = engine.stream(body.session_id, body.message, principal.customer_id, caller=principal.key_id)
    # Run the turn up to its first piece here, so a bad session or an unavailable graph is a plain
    # JSON error with the right status rather than an event inside a 200 stream.
    first = next(gen)
    token_status = g.get("customer_token")

    def events() -> Iterator[str]:
        item: Any = first
        try:
            while True:
                if isinstance(item, str):
                    yield _sse("token", {"text": item})
                else:
                    _after_turn(item, body.message)
                    yield _sse("final", _reply(item, token_status))
                    return
                item = next(gen)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - reported as an event; the status line is sent already
            resp = handle_error(exc)
            yield _sse("error", resp.get_json())

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@bp.get("/chat/sessions/<session_id>")
@doc(summary="A session's turns", tag="chat", reply=S.SessionResponse, path_params=SESSION_PATH,
     description="Only the customer (or anonymous API key) that created the session can read it; "
                 "anyone else gets 404.", customer_token=True, errors={404: SESSION_404})
@require("chat")
def session(session_id: str):
    services = _services()
    principal = g.principal
    check_session_id(session_id)
    state = services.sessions.load(session_id, principal.customer_id, principal.key_id)
    turns, n = [], 0
    for t in state.turns:
        if t.role == "user":
            n += 1
        turns.append(S.TurnOut(turn=max(n, 1), role=t.role, text=t.text, intent=t.intent, status=t.status, at=t.at))
    return jsonify(S.SessionResponse(session_id=state.session_id, signed_in=state.customer_id is not None,
                                     turns=turns).model_dump(mode="json"))


_SESSION_ID = TypeAdapter(S.SessionId)


def check_session_id(session_id: str) -> None:
    try:
        _SESSION_ID.validate_python(session_id)
    except ValidationError:  # a malformed id is simply not a session
        raise NotFound("no such session") from None


@bp.post("/chat/feedback")
@doc(summary="Rate one reply of a session", tag="chat", body=S.FeedbackRequest, reply=S.FeedbackResponse,
     customer_token=True, errors={404: "No such session for this caller, or no such turn in it."})
@require("chat")
def feedback():
    services = _services()
    body = S.parse_body(S.FeedbackRequest, services.settings)
    principal = g.principal
    state = services.sessions.load(body.session_id, principal.customer_id, principal.key_id)
    answers = [t for t in state.turns if t.role == "assistant"]
    if body.turn > len(answers):
        raise NotFound("no such turn in this session")
    users = [t for t in state.turns if t.role == "user"]
    intent = users[body.turn - 1].intent if body.turn <= len(users) else None
    analytics.record_feedback(services, session_id=body.session_id, turn=body.turn, rating=body.rating,
                              comment=body.comment, intent=intent, customer_id=principal.customer_id)
    services.metrics.feedback.labels(str(body.rating)).inc()
    return jsonify(S.FeedbackResponse(session_id=body.session_id, turn=body.turn, rating=body.rating)
                   .model_dump(mode="json"))
