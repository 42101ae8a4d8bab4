"""Per-key rate limits and the analyst semaphore, in Redis, shared by every worker and host.

Rate limits: a fixed one-minute window per key and bucket. Beyond the limit the answer is a 429
with `Retry-After` (seconds to the next window).

The analyst semaphore (`analyst_slot`) keeps at most `ANALYST_MAX_CONCURRENT` analyst queries
running across all workers: a sorted set of slot tokens scored by their expiry (server time), so a
worker that dies mid-query loses its slot when the query could no longer be running anyway.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
from collections.abc import Iterator
from typing import Any

from flask import current_app, g

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


def _count(services: Any, key: str) -> int:
    return int(services.redis_call(lambda r: r.eval(_INCR, 1, key, WINDOW_S + 5)))


def check_rate(principal: Any, bucket: str = "default") -> None:
    services = current_app.extensions["kgqa"]
    limit = limit_for(principal, bucket, services.settings)
    if limit <= 0:
        return
    now = time.time()
    window = int(now // WINDOW_S)
    count = _count(services, f"{services.prefix}rl:{bucket}:{principal.key_id}:{window}")
    g.rate_remaining = max(0, limit - count)
    g.rate_limit = limit
    if count > limit:
        retry = int((window + 1) * WINDOW_S - now) + 1
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
