"""Graph routes (`analyst` role): read-only Cypher with row and time limits, the schema, and the
canned analytics reports. Read-only is enforced twice below this layer (kg/readonly.py's lexical
check, then the backend's read-only mode), and so are the row cap (inside the query) and the time
limit (the server's); this blueprint adds the cap on analyst queries running at once across all
workers (api/ratelimit.py `analyst_slot`) and the masking."""

from __future__ import annotations

import logging
import math
import re
import time
from typing import Any

from flask import Blueprint, current_app, jsonify

from api import analytics
from api import schemas as S
from api.auth import require
from api.errors import BadQuery, NotFound
from api.openapi import doc, qparam
from api.ratelimit import analyst_slot
from common.errors import QueryError, QueryMemoryLimit, QueryTimeout, ReadOnlyViolation

log = logging.getLogger("kgqa.api")

bp = Blueprint("graph", __name__, url_prefix="/api/v1")

_REPORT_PATH = {"name": {"type": "string", "enum": list(analytics.REPORTS)}}


def _services() -> Any:
    return current_app.extensions["kgqa"]


def json_safe(value: Any, depth: int = 0) -> Any:
    """Graph values as JSON: non-finite floats become null, unknown types their text."""
    if depth > 64:
        return None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1) for v in value]
    return str(value)


def _reason(message: str) -> str:
    low = message.lower()
    for needle, reason in (("syntax", "syntax_error"), ("invalid input", "syntax_error"),
                           ("unknown function", "unknown_function"), ("not defined", "undefined_variable"),
                           ("type mismatch", "type_error"), ("expected", "type_error"),
                           ("missing parameter", "missing_parameter"), ("parameter", "bad_parameter")):
        if needle in low:
            return reason
    return "rejected"


@bp.post("/graph/query")
@doc(summary="Run a read-only Cypher query", tag="graph", body=S.GraphQueryRequest, reply=S.GraphQueryResponse,
     description="Writes, index or constraint changes, LOAD CSV and procedures other than read-only schema "
                 "and search ones are refused (403). Rows are capped at ANALYST_ROW_LIMIT inside the query "
                 "(`truncated` says so), so the query must end with RETURN (a standalone call of a schema "
                 "procedure excepted); time at ANALYST_TIMEOUT_MS; memory by the graph server. At most "
                 "ANALYST_MAX_CONCURRENT analyst queries run at once (429 `too_many_queries` beyond). "
                 "A query is never retried.",
     errors={400: "Malformed JSON, or a query the graph rejected (`details.reason`: `syntax_error`, "
                  "`must_end_with_return`, ...).",
             403: "The key lacks the `analyst` role, or the query is not read-only (`read_only_violation`).",
             422: "Not a valid body, the query ran past its time limit (`query_timeout`) or needed more "
                  "memory than the graph server allows (`query_memory_limit`).",
             429: "Over the key's rate limit, or as many analyst queries as allowed are running "
                  "(`too_many_queries`)."})
@require("analyst")
def graph_query():
    services = _services()
    settings = services.settings
    body = S.parse_body(S.GraphQueryRequest, settings)
    limit = min(body.limit or settings.analyst_row_limit, settings.analyst_row_limit)
    started = time.perf_counter()
    try:
        with analyst_slot(services):
            res = services.graph.run_untrusted_read(body.cypher, body.params, row_limit=limit,
                                                    timeout_ms=settings.analyst_timeout_ms)
    except (ReadOnlyViolation, QueryTimeout, QueryMemoryLimit):
        raise
    except QueryError as exc:
        log.warning("analyst query rejected", extra={"reason": exc.message[:300]})
        # The analyst's query was rejected: a 400 with a short reason, never the server's own text.
        details = exc.details if isinstance(exc.details, dict) else {}
        reason = details.get("reason") or _reason(exc.message)
        raise BadQuery("the graph database rejected the query", details={"reason": reason}) from None
    rows = [json_safe(r) for r in res.rows]
    return jsonify(S.GraphQueryResponse(columns=[str(c) for c in res.columns], rows=rows, row_count=len(rows),
                                        truncated=bool(res.truncated),
                                        elapsed_ms=round((time.perf_counter() - started) * 1000, 2))
                   .model_dump(mode="json"))


@bp.get("/graph/schema")
@doc(summary="Labels, keys, indexes and relationship types, with counts", tag="graph",
     reply=S.GraphSchemaResponse)
@require("analyst")
def graph_schema():
    from kg.queries import get
    from kg.schema import NODE_TYPES, RELATIONSHIPS

    store = _services().graph
    counts = {r["label"]: int(r["count"]) for r in store.run(get("system.count_by_label")) if r.get("label")}
    rel_counts = {r["type"]: int(r["count"]) for r in store.run(get("system.count_relationships"))}
    labels = [S.LabelInfo(label=n.label, key=n.key, count=counts.get(n.label, 0), fulltext=list(n.fulltext),
                          indexed=list(n.indexed)) for n in NODE_TYPES]
    rels = [S.RelInfo(type=t, source=src, target=dst, count=rel_counts.get(t, 0))
            for t, (src, dst) in RELATIONSHIPS.items()]
    return jsonify(S.GraphSchemaResponse(backend=store.backend, labels=labels, relationships=rels)
                   .model_dump(mode="json"))


@bp.get("/analytics/<name>")
@doc(summary="A canned report", tag="graph", reply=S.AnalyticsResponse, path_params=_REPORT_PATH,
     params=[qparam("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Rows (default 20)"),
             qparam("days", {"type": "integer", "minimum": 1, "maximum": 365},
                    "Window for conversation reports (default 30)"),
             qparam("sku", {"type": "string", "maxLength": 100}, "co_purchases: products bought with this one")],
     description="top_products, co_purchases, intents, unanswered (and low-confidence) questions, handoffs, "
                 "feedback. Personal data is masked: e-mail addresses and phone numbers in questions and "
                 "comments, customer ids.")
@require("analyst")
def report(name: str):
    from flask import request

    if name not in analytics.REPORTS:
        raise NotFound("no such report", details={"reports": list(analytics.REPORTS)})
    limit = S.query_int("limit", 20, lo=1, hi=500)
    days = S.query_int("days", 30, lo=1, hi=365)
    sku = request.args.get("sku")
    if sku is not None and (len(sku) > 200 or re.search(r"[\x00-\x1f\x7f]", sku)):
        sku = None
    rows = analytics.run_report(_services(), name, limit=limit, days=days, sku=sku)
    params: dict[str, Any] = {"limit": limit}
    if name not in ("top_products", "co_purchases"):
        params["days"] = days
    if sku and name == "co_purchases":
        params["sku"] = sku
    return jsonify(S.AnalyticsResponse(report=name, generated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                       params=params, rows=[json_safe(r) for r in rows]).model_dump(mode="json"))
