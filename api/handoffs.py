"""The hand-off log and the help-desk webhook (issue 11 item 5).

When the dialogue hands a conversation to a person, the chat route appends a record to a Redis
stream (`<prefix>handoffs`, capped at API_TURN_LOG_MAX): the real session id (the agent takes up
that conversation, so this report is for the `admin` role only), why, the intent, the intents
asked, the products, orders and entities that came up, and the shopper's last messages masked
(api/privacy.mask_text); the customer id is masked like in the logs. The later events of the same
hand-off are appended too: the shopper went back to the bot (`returned`), an agent released the
session (`released`, POST /api/v1/admin/handoffs/<id>/release), nobody took it in
HANDOFF_TIMEOUT_S (`timeout`).

With HANDOFF_WEBHOOK_URL set, every record is also POSTed there as JSON from one background thread
per app: a chat turn only queues it and never waits; each POST has a timeout
(HANDOFF_WEBHOOK_TIMEOUT_S) and is retried (HANDOFF_WEBHOOK_RETRIES, pausing longer each time); a
record that cannot be delivered is logged, and stays in the stream for `GET /admin/handoffs`.
With HANDOFF_WEBHOOK_SECRET set, each POST carries `X-Kgqa-Signature: sha256=<hex HMAC of the body>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Literal

from pydantic import Field

from api.privacy import mask_id, mask_text
from api.schemas import Reply

log = logging.getLogger("kgqa.api")

HandoffEventName = Literal["opened", "returned", "released", "timeout"]
MAX_MESSAGES = 3  # the shopper's last messages in a record
QUEUE_MAX = 1000  # records waiting for the webhook; beyond it new ones are logged and dropped


# -- the record --------------------------------------------------------------------------------------
class HandoffEntity(Reply):
    type: str
    text: str
    node_id: str | None = Field(None, description="The graph node it resolved to (an order only when it is "
                                                   "the shopper's own).")


class HandoffRecord(Reply):
    """One event of a hand-off, as the help desk and `GET /admin/handoffs` see it."""

    event: HandoffEventName = Field(description="`opened` (handed to a person), `returned` (the shopper went "
                                                "back to the bot), `released` (an agent handed it back), "
                                                "`timeout` (nobody took it within HANDOFF_TIMEOUT_S).")
    at: str = Field(description="When (UTC, ISO 8601).")
    session_id: str = Field(description="The real session id: the conversation the agent takes up.")
    reason: str | None = Field(None, description="Why it was handed off (`opened`): `complaint`, "
                                                 "`asked_for_agent`, `negative_sentiment`, `failed_turns`.")
    intent: str | None = Field(None, description="The intent of the turn that caused the event.")
    intents: list[str] = Field(default_factory=list, description="What the shopper asked about, in order.")
    customer: str | None = Field(None, description="The signed-in customer, masked; null when anonymous.")
    signed_in: bool = False
    turns: int | None = Field(None, description="The shopper's messages so far.")
    products: list[str] = Field(default_factory=list)
    orders: list[str] = Field(default_factory=list)
    entities: list[HandoffEntity] = Field(default_factory=list)
    messages: list[str] = Field(default_factory=list, description="The shopper's last messages, personal data "
                                                                  "masked (e-mail, phone, card, address, names).")
    summary: str = Field("", description="One line for the agent, built from the fields above.")
    by: str | None = Field(None, description="`released`: the API key id of the agent's tool.")


class HandoffList(Reply):
    handoffs: list[HandoffRecord] = Field(description="Newest first.")


class HandoffReleased(Reply):
    session_id: str
    released: bool = Field(description="True when the session was handed off and is now back with the bot; "
                                       "false when it was not handed off.")


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def record_of(result: Any, event: HandoffEventName, *, customer_id: str | None, key: bytes) -> HandoffRecord:
    """The record of a chat turn's hand-off event (`result`: the engine's TurnResult)."""
    fact = next((f for f in result.facts if getattr(f, "kind", "") == "handoff"), None)
    entities = [HandoffEntity(type=e.type, text=mask_text(e.text, 200), node_id=e.node_id)
                for e in result.entities]
    rec = HandoffRecord(event=event, at=_now_iso(), session_id=result.session_id, intent=result.intent.name,
                        customer=mask_id(customer_id, key), signed_in=customer_id is not None, entities=entities)
    if fact is not None:
        rec.reason = fact.reason
        rec.intents = list(fact.intents or [])
        rec.turns = fact.turns
        rec.products = list(fact.products or [])
        rec.orders = list(fact.orders or [])
        rec.messages = [mask_text(m, 300) for m in (fact.recent_messages or [])][-MAX_MESSAGES:]
    rec.summary = summary_of(rec)
    return rec


def summary_of(rec: HandoffRecord) -> str:
    parts = [f"{rec.event.capitalize()}" + (f" ({rec.reason.replace('_', ' ')})" if rec.reason else "") + "."]
    if rec.event != "released":  # an agent's release knows nothing of the shopper
        parts.append(f"Customer: {rec.customer or 'not signed in'}.")
    if rec.intents:
        parts.append(f"Asked about: {', '.join(rec.intents)}.")
    if rec.products:
        parts.append(f"Products: {', '.join(rec.products)}.")
    if rec.orders:
        parts.append(f"Orders: {', '.join(rec.orders)}.")
    if rec.messages:
        parts.append(f"Last message: {rec.messages[-1]}")
    return " ".join(parts)


# -- the log and the webhook ---------------------------------------------------------------------------
class HandoffLog:
    """The `<prefix>handoffs` stream and the optional webhook. No I/O at construction: the
    webhook's thread starts with the first record it has to send."""

    def __init__(self, services: Any) -> None:
        self._services = services
        settings = services.settings
        self.stream = services.prefix + "handoffs"
        self.webhook = Webhook(settings.handoff_webhook_url, timeout_s=settings.handoff_webhook_timeout_s,
                               retries=settings.handoff_webhook_retries,
                               secret=(settings.handoff_webhook_secret.get_secret_value().encode()
                                       if settings.handoff_webhook_secret else None)) \
            if settings.handoff_webhook_url else None

    def add(self, rec: HandoffRecord) -> None:
        """Append to the stream (a `StateUnavailable` when Redis is down) and queue for the webhook."""
        services = self._services
        payload = rec.model_dump_json()
        try:
            services.redis_call(lambda r: r.xadd(self.stream, {"record": payload},
                                                 maxlen=services.settings.api_turn_log_max, approximate=True))
        finally:
            if self.webhook is not None:
                self.webhook.send(payload.encode("utf-8"))

    def recent(self, limit: int) -> list[HandoffRecord]:
        rows = self._services.redis_call(lambda r: r.xrevrange(self.stream, max="+", min="-", count=limit))
        out = []
        for _id, fields in rows or []:
            try:
                out.append(HandoffRecord.model_validate_json(fields.get("record", "")))
            except ValueError:
                continue  # an entry this version cannot read
        return out


class Webhook:
    """POSTs queued JSON bodies to one URL from a background thread, with retries."""

    def __init__(self, url: str, *, timeout_s: float, retries: int, secret: bytes | None = None,
                 backoff_s: float = 0.5) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.secret = secret
        self.backoff_s = backoff_s
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=QUEUE_MAX)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed = 0

    def send(self, body: bytes) -> None:
        """Queue one body; never blocks and never raises."""
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            self.failed += 1
            log.warning("hand-off webhook queue full: a record was not sent", extra={"queued": QUEUE_MAX})
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="kgqa-handoff-webhook", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            body = self._queue.get()
            try:
                if self.deliver(body):
                    self.delivered += 1
                else:
                    self.failed += 1
            except Exception:  # noqa: BLE001 - the thread must live on
                self.failed += 1
                log.exception("hand-off webhook: unexpected error")
            finally:
                self._queue.task_done()

    def deliver(self, body: bytes) -> bool:
        headers = {"Content-Type": "application/json", "User-Agent": "kgqa-handoff/1"}
        if self.secret is not None:
            headers["X-Kgqa-Signature"] = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        for attempt in range(self.retries + 1):
            problem = ""
            try:
                req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 - configured URL
                    if 200 <= resp.status < 300:
                        return True
                    problem = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError, ValueError) as exc:
                problem = type(exc).__name__
            log.warning("hand-off webhook attempt failed",
                        extra={"attempt": attempt + 1, "of": self.retries + 1, "problem": problem})
            if attempt < self.retries:
                time.sleep(self.backoff_s * (2 ** attempt))
        log.error("hand-off webhook: record not delivered", extra={"attempts": self.retries + 1,
                                                                   "record": _session_of(body)})
        return False

    def wait_idle(self, timeout_s: float) -> bool:
        """For tests and shutdown: True once every queued body was handled."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return False


def _session_of(body: bytes) -> str:
    """A short reference for the log: the event and when (never the session id or a message)."""
    try:
        data = json.loads(body)
        return f"{data.get('event')}@{data.get('at')}"
    except ValueError:
        return "?"
