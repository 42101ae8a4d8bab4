"""Dialogue state per session, as JSON in Redis under a key prefix with a TTL.

Redis is the embedded FalkorDB server itself by default (`store.redis`), or any Redis named by
`REDIS_URL`; every API worker shares it, so a session survives a restart of the engine and can
move between workers. There is no in-memory fallback: when Redis cannot be reached the turn fails
with `SessionStoreUnavailable` (retryable, a 503), because a conversation silently losing its
context is worse than a visible error.

Sessions are owned. The owner is the signed-in customer, or for an anonymous caller the
`caller` string the API passes (an API key id, say); loading a session as anyone else raises
`SessionNotFound`, exactly like an id that never existed or has expired. Ids are 128-bit random,
generated here.

Saves are compare-and-set on a version number (one Lua script, atomic on the server), so two
workers answering the same session at once cannot silently overwrite each other's turn: the
loser gets `SessionConflict` (retryable).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import redis
from pydantic import BaseModel, Field, ValidationError

from common.errors import KGQAError, SessionConflict, SessionNotFound, SessionStoreUnavailable
from qa.facts import ActionKind
from qa.types import Turn

KEY_PREFIX = "kgqa:session:"
MAX_TURNS = 200  # kept for GET /chat/sessions/<id>; the verbalizers see only the last few
ANONYMOUS = "anonymous"




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
    resolved: list[Ref] = Field(default_factory=list)  # the other entities of the asked question
    message: str = ""  # the asked message (for addresses and summaries)
    attempts: int = 0


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

    def __init__(self, connect: Callable[[], redis.Redis], *, ttl_s: int, prefix: str = KEY_PREFIX,
                 new_id: Callable[[], str] | None = None) -> None:
        self._connect = connect
        self.ttl_s = ttl_s
        self.prefix = prefix
        self._new_id = new_id or (lambda: secrets.token_urlsafe(16))

    @classmethod
    def from_settings(cls, settings: Any, store: Any = None, **kwargs: Any) -> SessionStore:
        """REDIS_URL when set, else the embedded graph server's own Redis (`store.redis`)."""
        if settings.redis_url:
            client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2,
                                          decode_responses=True)
            return cls(lambda: client, ttl_s=settings.session_ttl_s, **kwargs)
        if store is None or not hasattr(store, "redis"):
            from common.errors import ConfigError

            raise ConfigError("REDIS_URL is required for dialogue state unless the graph is FalkorDB")
        return cls(lambda: store.redis, ttl_s=settings.session_ttl_s, **kwargs)

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

    def load(self, session_id: str, customer_id: str | None, caller: str | None = None) -> DialogueState:
        if not isinstance(session_id, str) or not session_id or len(session_id) > 128:
            raise SessionNotFound("no such session")
        try:
            raw = self._client().get(self.key(session_id))
        except (redis.RedisError, OSError) as exc:
            raise SessionStoreUnavailable("the session store is unavailable") from exc
        if raw is None:
            raise SessionNotFound("no such session")
        try:
            state = DialogueState.model_validate_json(raw)
        except (ValidationError, ValueError):
            raise SessionNotFound("no such session") from None
        # Compare the whole owner string: another customer, or anonymous vs signed in, is "not found".
        # (as bytes: compare_digest refuses str with non-ASCII characters, e.g. a customer "KUNDE-Müller")
        if not secrets.compare_digest(state.owner.encode(), owner_of(customer_id, caller).encode()):
            raise SessionNotFound("no such session")
        return state

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

    def ttl(self, session_id: str) -> int:
        try:
            return int(self._client().ttl(self.key(session_id)))
        except (redis.RedisError, OSError) as exc:
            raise SessionStoreUnavailable("the session store is unavailable") from exc

