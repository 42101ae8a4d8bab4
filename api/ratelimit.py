"""Rate limits and the analyst semaphore, in Redis, shared by every worker and host.

Rate limits are fixed one-minute windows, one counter per (bucket, who, window):
- per API key (`API_RATE_LIMIT_PER_MINUTE`, or the key's own `--rate-limit`; imports have their own
  bucket), as before;
- per shopper on the chat routes (`API_RATE_LIMIT_SHOPPER_PER_MINUTE`): the customer of a valid
  token (`sub`), else the session the request names (the path's or the body's `session_id`). A
  first message with neither has no shopper yet and counts for the key (and the address) only;
- per client address (`API_RATE_LIMIT_ADDRESS_PER_MINUTE`): the socket's address, or with
  `API_TRUSTED_PROXIES` = N the Nth entry from the right of X-Forwarded-For (the address the
  outermost trusted proxy saw; entries further left are the client's own word and never trusted).

The narrowest budget is checked first and a request it refuses is not counted against the wider
ones, so a shopper who exhausts their own budget neither blocks another shopper on the same key nor
spends the key's budget. Beyond any limit the reply is a 429 with `Retry-After` (seconds to the
next window). Shopper ids are hashed into the counter names, so no customer id sits in Redis keys.

The analyst semaphore (`analyst_slot`) keeps at most `ANALYST_MAX_CONCURRENT` analyst queries
running across all workers: a sorted set of slot tokens scored by their expiry (server time), so a
worker that dies mid-query loses its slot when the query could no longer be running anyway.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import math
import secrets
from collections.abc import Iterator
from typing import Any

from flask import current_app, g, request

from api.errors import RateLimited
from kg.store import analyst_socket_timeout_s

WINDOW_S = 60

_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1])) end
return n
"""

# Take a slot when fewer than ARGV[1] live ones exist; slots expire ARGV[2] ms after they are taken.
_ACQUIRE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], t + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
return 0
"""


class TooBusy(RateLimited):
    """As many analyst queries as allowed are running already."""

    code = "too_many_queries"


def limit_for(principal: Any, bucket: str, settings: Any) -> int:
    if bucket == "import":
        return settings.api_rate_limit_import_per_minute
    if principal.rate_limit is not None:
        return int(principal.rate_limit)
    return settings.api_rate_limit_per_minute


def client_address(trusted_proxies: int) -> str:
    """The caller's address: the socket's, or what the outermost of N trusted proxies saw."""
    remote = request.remote_addr or ""
    if trusted_proxies <= 0:
        return remote
    entries = [e.strip() for e in ",".join(request.headers.getlist("X-Forwarded-For")).split(",") if e.strip()]
    if len(entries) < trusted_proxies:
        return remote  # it did not come through every proxy: only the socket is known
    candidate = entries[-trusted_proxies]
    try:
        return str(ipaddress.ip_address(candidate.split("%")[0]))
    except ValueError:
        return remote


def shopper_of(principal: Any) -> tuple[str, str] | None:
    """("c", customer id) for a signed-in shopper, ("s", session id) for an anonymous one who names a
    session, else None. Only on the chat routes."""
    if request.blueprint != "chat":
        return None
    if principal.customer_id:
        return "c", principal.customer_id
    session_id = (request.view_args or {}).get("session_id")
    if session_id is None and request.method == "POST" and request.mimetype == "application/json":
        from api.schemas import read_json

        body = read_json(current_app.extensions["kgqa"].settings)  # kept for the view (one read)
        if isinstance(body, dict) and isinstance(body.get("session_id"), str):
            session_id = body["session_id"]
    if isinstance(session_id, str) and 0 < len(session_id) <= 128:
        return "s", session_id
    return None


def _hashed(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def _count(services: Any, key: str) -> int:
    return int(services.redis_call(lambda r: r.eval(_INCR, 1, key, WINDOW_S + 5)))


def check_rate(principal: Any, bucket: str = "default") -> None:
    services = current_app.extensions["kgqa"]
    settings = services.settings
    now = services.clock()
    window = int(now // WINDOW_S)
    retry = int((window + 1) * WINDOW_S - now) + 1
    prefix = f"{services.prefix}rl:"

    shopper_limit = settings.api_rate_limit_shopper_per_minute
    if shopper_limit > 0:
        shopper = shopper_of(principal)
        if shopper is not None:
            kind, ident = shopper
            n = _count(services, f"{prefix}shopper:{principal.key_id}:{kind}:{_hashed(ident)}:{window}")
            if n > shopper_limit:
                raise RateLimited("too many requests for this shopper", retry_after=retry,
                                  details={"limit_per_minute": shopper_limit, "bucket": "shopper"})

    address_limit = settings.api_rate_limit_address_per_minute
    if address_limit > 0:
        address = client_address(settings.api_trusted_proxies)
        n = _count(services, f"{prefix}addr:{_hashed(address)}:{window}")
        if n > address_limit:
            raise RateLimited("too many requests from this address", retry_after=retry,
                              details={"limit_per_minute": address_limit, "bucket": "address"})

    limit = limit_for(principal, bucket, settings)
    if limit <= 0:
        return
    count = _count(services, f"{prefix}{bucket}:{principal.key_id}:{window}")
    g.rate_remaining = max(0, limit - count)
    g.rate_limit = limit
    if count > limit:
        raise RateLimited("too many requests for this API key", retry_after=retry,
                          details={"limit_per_minute": limit, "bucket": bucket})


@contextlib.contextmanager
def analyst_slot(services: Any) -> Iterator[None]:
    """Hold one of ANALYST_MAX_CONCURRENT slots while an analyst query runs (429 when none is free)."""
    settings = services.settings
    most = settings.analyst_max_concurrent
    if most <= 0:
        yield
        return
    key = services.prefix + "analyst:running"
    ttl_ms = int(math.ceil(analyst_socket_timeout_s(settings.analyst_timeout_ms) * 1000)) + 5000
    token = secrets.token_hex(8)
    got = services.redis_call(lambda r: r.eval(_ACQUIRE, 1, key, most, ttl_ms, token))
    if not int(got):
        raise TooBusy(f"{most} analyst queries are running already; retry shortly", retry_after=1,
                      details={"max_concurrent": most, "bucket": "analyst"})
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # the slot expires by itself if this fails
            services.redis_call(lambda r: r.zrem(key, token))
