"""API keys (roles chat, catalog, orders, analyst, admin) and the shopper's customer token.

Keys look like `kgqa_<id>_<secret>`: `id` (8 hex) names the key in listings and logs, `secret`
(32 random bytes, url-safe) is never stored. Redis keeps, per id, the SHA-256 of the whole key
(a high-entropy secret needs no slow hash) with its name and roles; a request's key is looked up
by id and compared in constant time. Revoking marks the record, so the id stays listed.
`DEV_API_KEY`, when set, is one more key with every role (id `dev`); `DEV_CHAT_KEY` one with the
chat role only (id `dev-chat`, the one the development chat page is given).

The customer token (`X-Customer-Token`) is a JWT the shop signs: HS256 only, `exp` and `sub`
required, a small leeway, a lifetime of at most CUSTOMER_TOKEN_MAX_LIFETIME_S, `aud` and `iss`
checked when configured, `sub` taken exactly as it is. A secret shorter than 32 bytes is refused
as configuration (every token then counts as anonymous, and the log says why once). An invalid or
expired token makes the shopper anonymous; it is never an error, and the chat reply says which
(`customer_token: "expired" | "invalid"`, `g.customer_token` here) so a client knows to refresh it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g, request

from api.errors import Forbidden, Unauthorized

log = logging.getLogger("kgqa.api")

# catalog: products and the store's own data (brands, categories, suppliers, promotions, policies,
# FAQs, shipping and payment methods, shop examples); orders: customers, orders and order items.
ROLES = ("chat", "catalog", "orders", "analyst", "admin")
MIN_SECRET_BYTES = 32
KEY_RE = re.compile(r"^kgqa_([0-9a-f]{8})_([A-Za-z0-9_-]{20,128})$")
MAX_SUB_CHARS = 128


@dataclass(frozen=True)
class Principal:
    """Who is calling: the API key (id and roles) and, when a valid token came, the customer."""

    key_id: str
    roles: frozenset[str]
    customer_id: str | None = None
    rate_limit: int | None = None

    def has(self, role: str) -> bool:
        return "admin" in self.roles or role in self.roles


@dataclass
class KeyRecord:
    key_id: str
    name: str
    roles: list[str]
    digest: str
    created_at: str
    revoked_at: str | None = None
    rate_limit_per_minute: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "name": self.name, "roles": list(self.roles), "created_at": self.created_at,
                "revoked_at": self.revoked_at, "rate_limit_per_minute": self.rate_limit_per_minute}


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class KeyStore:
    """API keys in Redis under `<prefix>apikey:<id>`; `call` runs a function with a Redis client."""

    def __init__(self, call: Callable[[Callable[[Any], Any]], Any], prefix: str) -> None:
        self._call = call
        self.prefix = prefix + "apikey:"
        self.index = prefix + "apikeys"

    def create(self, name: str, roles: Iterable[str], *, rate_limit_per_minute: int | None = None
               ) -> tuple[str, KeyRecord]:
        roles = sorted(set(roles))
        bad = [r for r in roles if r not in ROLES]
        if not roles or bad:
            raise ValueError(f"roles must be among {', '.join(ROLES)}; got {', '.join(bad) or 'none'}")
        name = name.strip()[:100]
        for _ in range(5):
            key_id = secrets.token_hex(4)
            key = f"kgqa_{key_id}_{secrets.token_urlsafe(32)}"
            rec = KeyRecord(key_id=key_id, name=name, roles=roles, digest=digest(key), created_at=_now_iso(),
                            rate_limit_per_minute=rate_limit_per_minute)
            payload = json.dumps(rec.__dict__)

            def _put(r: Any, key_id: str = key_id, payload: str = payload) -> bool:
                if not r.set(self.prefix + key_id, payload, nx=True):
                    return False
                r.sadd(self.index, key_id)
                return True

            if self._call(_put):
                return key, rec
        raise RuntimeError("could not allocate a key id")  # pragma: no cover - 2^32 ids

    def get(self, key_id: str) -> KeyRecord | None:
        raw = self._call(lambda r: r.get(self.prefix + key_id))
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return KeyRecord(**data)
        except (ValueError, TypeError):
            return None

    def list(self) -> list[KeyRecord]:
        ids = sorted(self._call(lambda r: r.smembers(self.index)) or [])
        out = [rec for rec in (self.get(i) for i in ids) if rec is not None]
        return sorted(out, key=lambda rec: rec.created_at)

    def revoke(self, key_id: str) -> bool:
        rec = self.get(key_id)
        if rec is None:
            return False
        if rec.revoked_at is None:
            rec.revoked_at = _now_iso()
            self._call(lambda r: r.set(self.prefix + key_id, json.dumps(rec.__dict__)))
        return True

    def verify(self, key: str) -> KeyRecord | None:
        m = KEY_RE.match(key)
        if not m:
            return None
        rec = self.get(m.group(1))
        if rec is None or rec.revoked_at is not None:
            return None
        if not hmac.compare_digest(rec.digest, digest(key)):
            return None
        return rec


# -- customer tokens ----------------------------------------------------------------------------------
def customer_secret(settings: Any) -> bytes | None:
    secret = settings.customer_token_secret
    if secret is None:
        return None
    raw = secret.get_secret_value().encode("utf-8")
    if len(raw) < MIN_SECRET_BYTES:
        _warn_once("CUSTOMER_TOKEN_SECRET is shorter than 32 bytes: customer tokens are ignored")
        return None
    return raw


_warned: set[str] = set()


def _warn_once(msg: str) -> None:
    if msg not in _warned:
        _warned.add(msg)
        log.warning(msg)


@dataclass(frozen=True)
class TokenCheck:
    """What the `X-Customer-Token` header said: a customer id, or why there is none."""

    customer_id: str | None
    status: str | None  # None: no token sent (or none could be checked); "valid" | "expired" | "invalid"


def check_customer_token(token: str | None, settings: Any) -> TokenCheck:
    """The customer id of a valid token (HS256 only, `exp` and `sub` required, a lifetime of at most
    CUSTOMER_TOKEN_MAX_LIFETIME_S, `aud`/`iss` when configured), else why not. Never raises."""
    if not token:
        return TokenCheck(None, None)
    secret = customer_secret(settings)
    if secret is None:
        return TokenCheck(None, None)  # sign-in is not configured: nothing to refuse
    if len(token) > 4096:
        return TokenCheck(None, "invalid")
    import jwt

    audience = settings.customer_token_audience
    issuer = settings.customer_token_issuer
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != "HS256":
            return TokenCheck(None, "invalid")
        claims = jwt.decode(token, secret, algorithms=["HS256"], leeway=settings.customer_token_leeway_s,
                            audience=audience, issuer=issuer,
                            options={"require": ["exp", "sub"], "verify_exp": True, "verify_signature": True,
                                     "verify_aud": audience is not None, "verify_iss": issuer is not None})
    except jwt.ExpiredSignatureError:
        return TokenCheck(None, "expired")
    except (jwt.PyJWTError, ValueError, TypeError):
        return TokenCheck(None, "invalid")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > MAX_SUB_CHARS or any(ord(c) < 32 for c in sub):
        return TokenCheck(None, "invalid")
    exp, iat = claims.get("exp"), claims.get("iat")
    start = iat if isinstance(iat, int | float) and not isinstance(iat, bool) else time.time()
    if not isinstance(exp, int | float) or exp - start > settings.customer_token_max_lifetime_s + \
            settings.customer_token_leeway_s:
        return TokenCheck(None, "invalid")  # a token for the year 9999 is not a session
    return TokenCheck(sub, "valid")  # exactly as signed: no trimming, no case folding


def decode_customer_token(token: str | None, settings: Any) -> str | None:
    """The customer id of a valid token, else None (anonymous). Never raises."""
    return check_customer_token(token, settings).customer_id


def mint_customer_token(customer_id: str, settings: Any, *, ttl_s: int = 3600) -> str:
    """For the development sign-in only (and tests): a token as a shop would sign it."""
    import jwt

    secret = customer_secret(settings)
    if secret is None:
        from common.errors import ConfigError

        raise ConfigError("CUSTOMER_TOKEN_SECRET (32 bytes or more) is not set")
    now = int(time.time())
    return jwt.encode({"sub": customer_id, "iat": now, "exp": now + ttl_s}, secret, algorithm="HS256")


# -- request authentication --------------------------------------------------------------------------
def _bearer() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    parts = header.split(None, 1)
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise Unauthorized("the Authorization header must be `Bearer <api key>`")
    return parts[1].strip()


def authenticate() -> Principal:
    """The caller's principal, or 401. Cached on `g` for the request."""
    cached = getattr(g, "principal", None)
    if cached is not None:
        return cached
    key = _bearer()
    if not key:
        raise Unauthorized("an API key is required (Authorization: Bearer <api key>)")
    services = current_app.extensions["kgqa"]
    settings = services.settings
    principal: Principal | None = None
    dev = settings.dev_api_key.get_secret_value() if settings.dev_api_key else ""
    dev_chat = settings.dev_chat_key.get_secret_value() if settings.dev_chat_key else ""
    given = key.encode("utf-8", "surrogatepass")
    if dev and hmac.compare_digest(dev.encode("utf-8"), given):
        principal = Principal(key_id="dev", roles=frozenset(ROLES))
    elif dev_chat and hmac.compare_digest(dev_chat.encode("utf-8"), given):
        principal = Principal(key_id="dev-chat", roles=frozenset({"chat"}))
    elif KEY_RE.match(key):
        rec = services.keys.verify(key)
        if rec is not None:
            principal = Principal(key_id=rec.key_id, roles=frozenset(rec.roles),
                                  rate_limit=rec.rate_limit_per_minute)
    if principal is None:
        raise Unauthorized("the API key is not valid")
    check = check_customer_token(request.headers.get("X-Customer-Token"), settings)
    g.customer_token = check.status
    customer = check.customer_id
    if customer is not None:
        principal = Principal(principal.key_id, principal.roles, customer, principal.rate_limit)
    g.principal = principal
    return principal


def require(role: str, *others: str, rate_bucket: str = "default") -> Callable:
    """Decorator: a valid key with `role` or one of `others` (admin implies every role), then the
    rate limits."""
    roles = (role, *others)
    if any(r not in ROLES for r in roles):
        raise ValueError(roles)

    def deco(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = authenticate()
            if not any(principal.has(r) for r in roles):
                raise Forbidden(f"this API key lacks the {' or '.join(f'`{r}`' for r in roles)} role")
            from api.ratelimit import check_rate

            check_rate(principal, rate_bucket)
            return view(*args, **kwargs)

        wrapper.required_role = role  # type: ignore[attr-defined]  # read by the OpenAPI generator
        wrapper.required_roles = roles  # type: ignore[attr-defined]
        return wrapper

    return deco
