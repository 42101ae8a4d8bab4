"""Per-key rate limits in Redis: a fixed one-minute window per key and bucket, shared by every
worker. Beyond the limit the answer is a 429 with `Retry-After` (seconds to the next window)."""

from __future__ import annotations

import time
from typing import Any

from flask import current_app, g

from api.errors import RateLimited

WINDOW_S = 60

_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1])) end
return n
"""


def limit_for(principal: Any, bucket: str, settings: Any) -> int:
    if bucket == "import":
        return settings.api_rate_limit_import_per_minute
    if principal.rate_limit is not None:
        return int(principal.rate_limit)
    return settings.api_rate_limit_per_minute


def check_rate(principal: Any, bucket: str = "default") -> None:
    services = current_app.extensions["kgqa"]
    limit = limit_for(principal, bucket, services.settings)
    if limit <= 0:
        return
    now = time.time()
    window = int(now // WINDOW_S)
    key = f"{services.prefix}rl:{bucket}:{principal.key_id}:{window}"
    count = int(services.redis_call(lambda r: r.eval(_INCR, 1, key, WINDOW_S + 5)))
    g.rate_remaining = max(0, limit - count)
    g.rate_limit = limit
    if count > limit:
        retry = int((window + 1) * WINDOW_S - now) + 1
        raise RateLimited("too many requests for this API key", retry_after=retry,
                          details={"limit_per_minute": limit, "bucket": bucket})
