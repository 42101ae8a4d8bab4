"""Prometheus metrics, one registry per app (tests build several apps in one process).

Under gunicorn with several workers, set `PROMETHEUS_MULTIPROC_DIR` (gunicorn.conf.py does): each
worker writes its samples to files there and `/metrics` merges them, so any worker answers for all.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # noqa: N811
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("kgqa_http_requests_total", "HTTP requests by route, method and status",
                                ("route", "method", "status"), registry=r)
        self.latency = Histogram("kgqa_http_request_seconds", "HTTP request latency by route",
                                 ("route", "method"), buckets=LATENCY_BUCKETS, registry=r)
        self.intents = Counter("kgqa_chat_intents_total", "Chat turns by intent", ("intent",), registry=r)
        self.statuses = Counter("kgqa_chat_status_total", "Chat turns by outcome status", ("status",), registry=r)
        self.verbalizer = Counter("kgqa_chat_verbalizer_total", "Replies by the writer that produced them",
                                  ("path",), registry=r)
        self.guard_fallbacks = Counter("kgqa_chat_guard_fallbacks_total",
                                       "LLM replies refused by the grounding guard (template sent instead)",
                                       registry=r)
        self.handoffs = Counter("kgqa_chat_handoffs_total", "Conversations handed to a person", registry=r)
        self.feedback = Counter("kgqa_chat_feedback_total", "Feedback by rating", ("rating",), registry=r)
        self.imports = Counter("kgqa_catalog_imports_total", "Import jobs by final status", ("status",), registry=r)
        self.unavailable = Counter("kgqa_unavailable_total", "503 answers (graph or state store away)",
                                   registry=r)

    def observe_turn(self, result: object) -> None:
        intent = getattr(getattr(result, "intent", None), "name", "unknown")
        self.intents.labels(intent).inc()
        self.statuses.labels(getattr(result, "status", "unknown")).inc()
        self.verbalizer.labels(getattr(result, "verbalizer", "template")).inc()
        if getattr(result, "guard_passed", None) is False:
            self.guard_fallbacks.inc()
        if getattr(result, "handoff", False):
            self.handoffs.inc()

    def render(self) -> tuple[bytes, str]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged), CONTENT_TYPE
        return generate_latest(self.registry), CONTENT_TYPE
