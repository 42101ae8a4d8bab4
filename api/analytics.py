"""The turn log and the canned analytics reports.

The dialogue layer keeps conversations (qa/state.py) but no cross-session record, so the API
appends one entry per answered turn to a Redis stream (`<prefix>turns`, capped at
`API_TURN_LOG_MAX`), and one per feedback to `<prefix>feedback`. Entries hold no raw personal data:
session and customer ids are pseudonyms (a keyed hash, api/privacy.py), the question is masked (e-mail addresses,
phone and card numbers) and cut to 300 characters. Reports read the newest entries of a window.

Graph reports (top products, co-purchases) are named, read-only queries like every other
(kg/queries/analytics.py).
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from typing import Any

from api.privacy import mask_text, pseudonym
from kg.queries.analytics import CO_PURCHASES, CO_PURCHASES_OF, TOP_PRODUCTS

SCAN_LIMIT = 20_000  # newest stream entries a report looks at

REPORTS = ("top_products", "co_purchases", "intents", "unanswered", "handoffs", "feedback")
UNANSWERED_STATUSES = {"no_answer", "not_found"}


def _now() -> float:
    return time.time()


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


# -- writing ---------------------------------------------------------------------------------------------
def record_turn(services: Any, result: Any, *, customer_id: str | None, message: str, threshold: float) -> None:
    reason = ""
    for f in getattr(result, "facts", []) or []:
        if getattr(f, "kind", "") == "handoff":
            reason = str((f.data or {}).get("reason", ""))[:50]
    guard = getattr(result, "guard_passed", None)
    fields = {
        "ts": f"{_now():.3f}",
        "session": pseudonym(result.session_id, services.privacy_key) or "",
        "customer": pseudonym(customer_id, services.privacy_key) or "",
        "intent": result.intent.name,
        "confidence": f"{float(result.intent.confidence):.4f}",
        "status": getattr(result, "status", "ok") or "ok",
        # a hand-off opened (the summary is in the facts); not the replies while a person has it
        "handoff": "1" if result.handoff and reason else "0",
        "reason": reason,
        "verbalizer": result.verbalizer,
        "guard": "" if guard is None else ("1" if guard else "0"),
        "query": getattr(result, "query_name", None) or "",
        "message": mask_text(message, 300),
        "low": "1" if float(result.intent.confidence) < threshold else "0",
    }
    maxlen = services.settings.api_turn_log_max
    services.redis_call(lambda r: r.xadd(services.prefix + "turns", fields, maxlen=maxlen, approximate=True))


def record_feedback(services: Any, *, session_id: str, turn: int, rating: int, comment: str,
                    intent: str | None, customer_id: str | None) -> None:
    fields = {
        "ts": f"{_now():.3f}", "session": pseudonym(session_id, services.privacy_key) or "", "turn": str(turn),
        "rating": str(rating), "comment": mask_text(comment, 500), "intent": intent or "",
        "customer": pseudonym(customer_id, services.privacy_key) or "",
    }
    key = f"{services.prefix}feedback:{session_id}"
    ttl = services.settings.session_ttl_s

    def _write(r: Any) -> None:
        pipe = r.pipeline()
        pipe.hset(key, str(turn), json.dumps({"rating": rating, "comment": fields["comment"], "ts": fields["ts"]}))
        pipe.expire(key, ttl)
        pipe.xadd(services.prefix + "feedback", fields, maxlen=services.settings.api_turn_log_max, approximate=True)
        pipe.execute()

    services.redis_call(_write)


# -- reading ---------------------------------------------------------------------------------------------
def _entries(services: Any, stream: str, since: float) -> list[dict[str, str]]:
    rows = services.redis_call(lambda r: r.xrevrange(services.prefix + stream, max="+", min=f"{int(since * 1000)}",
                                                     count=SCAN_LIMIT))
    return [fields for _id, fields in rows or []]


def run_report(services: Any, name: str, *, limit: int, days: int, sku: str | None = None) -> list[dict[str, Any]]:
    since = _now() - days * 86_400
    if name == "top_products":
        return services.graph.run(TOP_PRODUCTS, {"limit": limit})
    if name == "co_purchases":
        if sku:
            return services.graph.run(CO_PURCHASES_OF, {"sku": sku, "limit": limit})
        return services.graph.run(CO_PURCHASES, {"limit": limit})
    if name == "intents":
        return _intents(_entries(services, "turns", since), limit)
    if name == "unanswered":
        return _unanswered(_entries(services, "turns", since), limit)
    if name == "handoffs":
        return _handoffs(_entries(services, "turns", since), limit)
    if name == "feedback":
        return _feedback(_entries(services, "feedback", since), limit)
    raise KeyError(name)


def _intents(entries: list[dict[str, str]], limit: int) -> list[dict[str, Any]]:
    count: Counter[str] = Counter()
    conf: dict[str, float] = defaultdict(float)
    low: Counter[str] = Counter()
    for e in entries:
        i = e.get("intent", "")
        count[i] += 1
        conf[i] += float(e.get("confidence") or 0)
        low[i] += e.get("low") == "1"
    total = sum(count.values()) or 1
    return [{"intent": i, "turns": n, "share": round(n / total, 4), "mean_confidence": round(conf[i] / n, 4),
             "low_confidence": low[i]} for i, n in count.most_common(limit)]


def _unanswered(entries: list[dict[str, str]], limit: int) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for e in entries:  # newest first
        failed = e.get("status") in UNANSWERED_STATUSES or e.get("intent") == "out_of_scope" or e.get("low") == "1"
        if not failed:
            continue
        text = mask_text(e.get("message", ""), 300)  # masked again: entries from older versions too
        key = " ".join(text.lower().split())
        g = groups.get(key)
        if g is None:
            g = groups[key] = {"question": text, "times": 0, "last_at": _iso(float(e.get("ts") or 0)),
                               "intent": e.get("intent"), "confidence": float(e.get("confidence") or 0),
                               "status": e.get("status")}
        g["times"] += 1
    return sorted(groups.values(), key=lambda g: (-g["times"], g["question"]))[:limit]


def _handoffs(entries: list[dict[str, str]], limit: int) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        if e.get("handoff") != "1":
            continue
        out.append({"at": _iso(float(e.get("ts") or 0)), "reason": e.get("reason") or None,
                    "intent": e.get("intent"), "customer": (e.get("customer") or "")[:8] or None,
                    "question": mask_text(e.get("message", ""), 300)})
        if len(out) >= limit:
            break
    return out


def _feedback(entries: list[dict[str, str]], limit: int) -> list[dict[str, Any]]:
    ratings: Counter[int] = Counter()
    recent = []
    for e in entries:
        try:
            r = int(e.get("rating") or 0)
        except ValueError:
            continue
        ratings[r] += 1
        if len(recent) < limit:
            recent.append({"at": _iso(float(e.get("ts") or 0)), "rating": r, "intent": e.get("intent") or None,
                           "comment": mask_text(e.get("comment", ""), 500)})
    n = sum(ratings.values())
    summary = {"summary": True, "count": n,
               "mean_rating": round(sum(k * v for k, v in ratings.items()) / n, 3) if n else None,
               "by_rating": {str(k): ratings[k] for k in sorted(ratings)}}
    return [summary, *recent]
