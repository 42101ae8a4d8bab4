"""Dialogue state per session, as JSON in Redis under a key prefix with a TTL.

Redis is the state store (kg/backends/state_server.py: `REDIS_URL`, else the embedded state
server beside the embedded graph, else a FalkorDB server's own); every API worker shares it, so a session survives a restart of the engine and can
move between workers. There is no in-memory fallback: when Redis cannot be reached the turn fails
with `SessionStoreUnavailable` (retryable, a 503), because a conversation silently losing its
context is worse than a visible error.

Keys are namespaced by graph (`kgqa:<GRAPH_NAME>:session:<id>`), so two instances with different
graph names sharing one Redis never see each other's sessions.

Sessions are owned. The owner is the signed-in customer, or for an anonymous caller the
`caller` string the API passes (an API key id, say); loading a session as anyone else raises
`SessionNotFound`, exactly like an id that never existed or has expired. Ids are 128-bit random,
generated here. One exception, one way only (DESIGN section 6): an anonymous session continued
(`adopt=True`, a turn) by the same caller with a signed-in customer becomes that customer's; from
then on it is that customer's alone, still bound to the caller that created it, and never goes
back to anonymous or on to another customer.

Saves are compare-and-set on a version number (one Lua script, atomic on the server), so two
workers answering the same session at once cannot silently overwrite each other's turn: the
loser gets `SessionConflict` (retryable).

A confirmed action is taken atomically before the graph is written: `claim_action` is a
`SET NX` on a key named by the action's request id, so of several concurrent "yes" exactly one
writes; the others wait for its outcome (`wait_action_outcome`) and report the same request.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import redis
from pydantic import BaseModel, Field, ValidationError

from common.errors import KGQAError, SessionConflict, SessionNotFound, SessionStoreUnavailable
from qa.facts import ActionKind
from qa.types import Turn

MAX_TURNS = 200  # kept for GET /chat/sessions/<id>; the verbalizers see only the last few
ANONYMOUS = "anonymous"
CLAIMED = "claimed"  # an action key's value while the claiming turn writes the graph


def session_prefix(graph_name: str) -> str:
    """The key prefix of one graph's sessions: instances with other graph names never meet."""
    return f"kgqa:{graph_name}:session:"




# -- the state ---------------------------------------------------------------------------------
class Ref(BaseModel):
    """A graph node the conversation has mentioned (a product, brand, category or order)."""

    type: str  # PRODUCT | BRAND | CATEGORY | ORDER_ID | ATTRIBUTE
    node_id: str | None = None
    name: str
    label: str | None = None  # Product | Brand | Category | Order
    price: float | None = None
    currency: str | None = None
    brand: str | None = None
    category: str | None = None
    status: str | None = None
    values: list[str] = Field(default_factory=list)  # lower-cased attribute values, for "the black one"


class TurnRecord(BaseModel):
    role: Literal["user", "assistant"]
    text: str
    intent: str | None = None
    status: str | None = None
    at: str = ""


class PendingClarification(BaseModel):
    """A question back to the shopper; the asked intent is kept and answered once it resolves."""

    kind: Literal["entity", "order", "address"]
    intent: str
    confidence: float = 1.0
    entity_type: str | None = None  # what is being chosen (PRODUCT, BRAND, ORDER_ID...)
    mention: str = ""  # the ambiguous text
    candidates: list[Ref] = Field(default_factory=list)
    more: bool = False  # the mention matched more products than `candidates` lists
    resolved: list[Ref] = Field(default_factory=list)  # the other entities of the asked question
    message: str = ""  # the asked message (for addresses and summaries)
    attempts: int = 0
    asked_at: str = ""  # when the question was asked (engine clock); it expires after PENDING_TTL_S


class PendingAction(BaseModel):
    """An action the bot described and awaits `affirm` or `deny` for."""

    kind: ActionKind
    intent: str
    order_id: str
    request_id: str
    fee: float | None = None
    currency: str | None = None
    new_address: str | None = None
    old_address: str | None = None
    reason: str = ""
    deadline: str | None = None
    items: list[str] = Field(default_factory=list)
    proposed_at: str = ""
    order_status: str | None = None  # the order's status when proposed: the write re-checks it


class PendingQuestion(BaseModel):
    """An order question asked before signing in: answered once the shopper has signed in and
    says "and now?" (or repeats it)."""

    intent: str
    message: str
    asked_at: str = ""


class DialogueState(BaseModel):
    session_id: str
    owner: str
    customer_id: str | None = None
    created_at: str
    updated_at: str = ""
    version: int = 0
    turns: list[TurnRecord] = Field(default_factory=list)
    last_entities: dict[str, Ref] = Field(default_factory=dict)  # by entity type
    last_list: list[Ref] = Field(default_factory=list)  # what the last reply listed, in order
    recent_products: list[Ref] = Field(default_factory=list)  # products answered about, latest first (a few)
    last_intent: str | None = None
    last_status: str | None = None
    pending_clarification: PendingClarification | None = None
    pending_action: PendingAction | None = None
    failed_turns: int = 0
    handed_off: bool = False
    handed_off_at: str | None = None  # engine clock; the bot answers again after HANDOFF_TIMEOUT_S
    # The anonymous owner (`anonymous:<caller>`) of a session a customer signed in to: the caller
    # that created it still bounds it.
    adopted_from: str | None = None
    signed_in_at: str | None = None
    awaiting_sign_in: PendingQuestion | None = None
    last_action: PendingAction | None = None  # the action just confirmed: a second "yes" reports it
    expired_action: PendingAction | None = None  # an action whose confirmation came too late: "start again?"

    def recent_turns(self, n: int = 10) -> list[Turn]:
        return [Turn(role=t.role, text=t.text) for t in self.turns[-n:]]

    @property
    def turn_index(self) -> int:
        """How many user turns came before this one (0 for the first message)."""
        return sum(1 for t in self.turns if t.role == "user")


def owner_of(customer_id: str | None, caller: str | None = None) -> str:
    if customer_id:
        return f"customer:{customer_id}"
    return f"{ANONYMOUS}:{caller or ''}"


def utcnow_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(raw: Any) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw


def _same(a: str, b: str) -> bool:
    # as bytes: compare_digest refuses str with non-ASCII characters (a customer "KUNDE-Müller")
    return secrets.compare_digest(a.encode(), b.encode())


# -- the store ----------------------------------------------------------------------------------
_CAS = """
local cur = redis.call('GET', KEYS[1])
local expected = tonumber(ARGV[2])
if cur then
  local ok, doc = pcall(cjson.decode, cur)
  local v = 0
  if ok and type(doc) == 'table' and doc['version'] then v = tonumber(doc['version']) end
  if v ~= expected then return 0 end
elseif expected ~= 0 then
  return -1
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[3]))
return 1
"""


class SessionStore:
    """JSON dialogue states in Redis. `connect` returns the client to use (called per operation,
    so a store that reconnects after a server restart hands out its new connection)."""

    def __init__(self, connect: Callable[[], redis.Redis], *, ttl_s: int, prefix: str | None = None,
                 graph_name: str = "shop", new_id: Callable[[], str] | None = None) -> None:
        self._connect = connect
        self.ttl_s = ttl_s
        self.prefix = prefix if prefix is not None else session_prefix(graph_name)
        self._new_id = new_id or (lambda: secrets.token_urlsafe(16))

    def key(self, session_id: str) -> str:
        return self.prefix + session_id

    def _client(self) -> redis.Redis:
        try:
            return self._connect()
        except KGQAError as exc:  # the embedded server would not start
            raise SessionStoreUnavailable("the session store is unavailable") from exc
        except (redis.RedisError, OSError) as exc:
            raise SessionStoreUnavailable("the session store is unavailable") from exc

    def new(self, customer_id: str | None, caller: str | None = None) -> DialogueState:
        """A fresh state (not saved until the first turn completes)."""
        now = utcnow_iso()
        return DialogueState(session_id=self._new_id(), owner=owner_of(customer_id, caller),
                             customer_id=customer_id, created_at=now, updated_at=now)

    def load(self, session_id: str, customer_id: str | None, caller: str | None = None, *,
             adopt: bool = False) -> DialogueState:
        """The session if it is the caller's, else `SessionNotFound` (the same for every reason).
        With `adopt` (a turn, never a read), an anonymous session of this caller continued by a
        signed-in customer becomes that customer's (saved with the turn)."""
        state = self._read(session_id)
        # Compare whole owner strings: another customer, or anonymous vs signed in, is "not found".
        mine = owner_of(customer_id, caller)
        if _same(state.owner, mine):
            if state.adopted_from is not None and not _same(state.adopted_from, owner_of(None, caller)):
                raise SessionNotFound("no such session")  # adopted: still bound to the key that created it
            return state
        if adopt and customer_id and state.customer_id is None and _same(state.owner, owner_of(None, caller)):
            state.adopted_from, state.owner, state.customer_id = state.owner, mine, customer_id
            state.signed_in_at = utcnow_iso()
            return state
        raise SessionNotFound("no such session")

    def _read(self, session_id: str) -> DialogueState:
        """The stored state, whoever owns it (the caller checks ownership)."""
        if not isinstance(session_id, str) or not session_id or len(session_id) > 128:
            raise SessionNotFound("no such session")
        try:
            raw = self._client().get(self.key(session_id))
        except (redis.RedisError, OSError) as exc:
            raise SessionStoreUnavailable("the session store is unavailable") from exc
        if raw is None:
            raise SessionNotFound("no such session")
        try:
            return DialogueState.model_validate_json(raw)
        except (ValidationError, ValueError):
            raise SessionNotFound("no such session") from None

    def save(self, state: DialogueState) -> DialogueState:
        """Compare-and-set on `version`; returns the saved state (version + 1)."""
        expected = state.version
        new = state.model_copy(update={"version": expected + 1, "updated_at": utcnow_iso(),
                                       "turns": state.turns[-MAX_TURNS:]})
        payload = new.model_dump_json()
        try:
            res = self._client().eval(_CAS, 1, self.key(state.session_id), payload, expected, self.ttl_s)
        except (redis.RedisError, OSError) as exc:
            raise SessionStoreUnavailable("the session store is unavailable") from exc
        if int(res) == 1:
            return new
        if int(res) == -1:  # expired (or deleted) between load and save
            raise SessionNotFound("no such session")
        raise SessionConflict("the session was updated by another request; retry", details={"retry": True})

    def delete(self, session_id: str) -> None:
        try:
            self._client().delete(self.key(session_id))
        except (redis.RedisError, OSError) as exc:
            raise SessionStoreUnavailable("the session store is unavailable") from exc

    # -- hand-off (agents) ---------------------------------------------------------------------------
    def release_handoff(self, session_id: str, *, attempts: int = 20) -> bool:
        """An agent hands the conversation back to the bot (whoever owns it: the admin route).
        True when it was handed off, False when it was not; `SessionNotFound` when there is none."""
        for _ in range(attempts):
            state = self._read(session_id)
            if not state.handed_off:
                return False
            state.handed_off, state.handed_off_at = False, None
            try:
                self.save(state)
                return True
            except SessionConflict:
                continue  # a turn was saved in between: read it again
        raise SessionConflict("the session is busy; retry", details={"retry": True})

    # -- confirmed actions ----------------------------------------------------------------------------
    def action_key(self, session_id: str, request_id: str) -> str:
        return f"{self.key(session_id)}:action:{request_id}"

    def claim_action(self, session_id: str, request_id: str) -> bool:
        """Take a pending action for execution: True for exactly one caller per request id."""
        try:
            return bool(self._client().set(self.action_key(session_id, request_id), CLAIMED, nx=True, ex=self.ttl_s))
        except (redis.RedisError, OSError) as exc:
            raise SessionStoreUnavailable("the session store is unavailable") from exc

    def unclaim_action(self, session_id: str, request_id: str) -> None:
        """Give a claimed action back (its execution failed before any outcome): a retry may take it."""
        try:
            key = self.action_key(session_id, request_id)
            client = self._client()
            if _text(client.get(key)) == CLAIMED:
                client.delete(key)
        except (redis.RedisError, OSError):
            pass  # the claim expires with the session

    def record_action_outcome(self, session_id: str, request_id: str, outcome: str) -> None:
        try:
            self._client().set(self.action_key(session_id, request_id), outcome, ex=self.ttl_s)
        except (redis.RedisError, OSError) as exc:
            raise SessionStoreUnavailable("the session store is unavailable") from exc

    def action_outcome(self, session_id: str, request_id: str) -> str | None:
        """The recorded outcome (JSON) of a confirmed action; None while it runs or when unknown."""
        try:
            raw = self._client().get(self.action_key(session_id, request_id))
        except (redis.RedisError, OSError) as exc:
            raise SessionStoreUnavailable("the session store is unavailable") from exc
        text = _text(raw)
        return None if text is None or text == CLAIMED else text

    def wait_action_outcome(self, session_id: str, request_id: str, timeout_s: float,
                            poll_s: float = 0.05) -> str | None:
        """The outcome of an action another turn claimed, once it is recorded (None after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.action_outcome(session_id, request_id)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(poll_s)

    def ttl(self, session_id: str) -> int:
        try:
            return int(self._client().ttl(self.key(session_id)))
        except (redis.RedisError, OSError) as exc:
            raise SessionStoreUnavailable("the session store is unavailable") from exc

