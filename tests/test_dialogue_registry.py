"""The handler registry and the typed facts, without a graph: every intent has exactly one handler,
handlers declare the named queries they run (and may run no other), and facts keep the wire shape
the chat API has always sent."""

from __future__ import annotations

import inspect
import json
import re
from collections import Counter
from typing import get_args

import pytest
from pydantic import TypeAdapter, ValidationError

from common.errors import UnknownQuery
from kg.queries import all_queries
from nlu.labels import INTENTS
from qa import registry
from qa.facts import Fact, FactModel, OrderFact, PolicyFact, RequestFact, make_fact
from qa.handlers.base import SHARED_QUERIES, Context
from qa.prompts import Subject
from qa.retrieval import Retriever
from qa.types import ChatResponse, Retrieval, TurnResult


def test_every_intent_has_exactly_one_handler():
    counts = Counter(spec.name for handler in registry.HANDLERS for spec in handler.intents)
    assert {i: counts[i] for i in INTENTS if counts[i] != 1} == {}
    assert set(counts) == set(INTENTS)  # and no handler answers a name that is not an intent
    assert registry.problems() == []
    for intent in INTENTS:
        handler = registry.handler_for(intent)
        assert intent in [s.name for s in handler.intents]
        assert registry.spec_for(intent) in handler.intents


def test_two_handlers_for_one_intent_cannot_be_indexed():
    products = registry.HANDLERS[0]
    with pytest.raises(ValueError, match="has two handlers"):
        registry._index((products, products))


def test_handlers_declare_existing_named_queries_and_use_only_those():
    known = set(all_queries())
    families = [h.family for h in registry.HANDLERS]
    assert len(families) == len(set(families))
    for handler in registry.HANDLERS:
        assert handler.queries <= known, (handler.family, handler.queries - known)
        # every query name written in the handler's module is one it declared
        source = inspect.getsource(inspect.getmodule(type(handler)))
        named = set(re.findall(r'"((?:products|orders|policies|procedures)\.[a-z_]+)"', source))
        assert named <= handler.queries | SHARED_QUERIES, (handler.family, named - handler.queries)


def test_a_handler_cannot_run_a_query_it_did_not_declare():
    class NoGraph:
        def run(self, *args, **kwargs):  # pragma: no cover - must not be reached
            raise AssertionError("the graph was reached")

    ctx = Context(NoGraph(), None, "USD", lambda: None, frozenset({"products.by_skus"}), "test")  # type: ignore[arg-type]
    with pytest.raises(UnknownQuery, match="orders.by_id_for_customer"):
        ctx.run("orders.by_id_for_customer", customer_id="C1", order_id="1")
    retriever = Retriever(NoGraph(), None)  # type: ignore[arg-type]
    conversation = retriever._context(registry.handler_for("greeting"))
    assert conversation.queries == SHARED_QUERIES  # asks which product was meant, nothing else


def test_each_fact_kind_has_one_model():
    models = _fact_models()
    assert set(get_args(get_args(Fact)[0])) == set(models)  # every kind is in the union
    kinds = Counter(cls.model_fields["kind"].default for cls in models)
    assert len(kinds) >= 24 and all(n == 1 for n in kinds.values()), kinds
    for kind in kinds:
        assert type(make_fact(kind, _minimal(kind))).model_fields["kind"].default == kind


def _fact_models() -> list[type[FactModel]]:
    out, todo = [], list(FactModel.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if isinstance(cls.model_fields["kind"].default, str):
            out.append(cls)
    return out


def _minimal(kind: str) -> dict:
    cls = next(c for c in _fact_models() if c.model_fields["kind"].default == kind)
    samples = {str: "x", bool: True, int: 1, float: 1.5}
    data = {}
    for name, field in cls.model_fields.items():
        if name != "kind" and field.is_required():
            ann = field.annotation
            data[cls.wire_names.get(name, name)] = next(
                (v for t, v in samples.items() if ann is t), "cancel_order" if name == "action" else
                ("product" if name == "source" else "x"))
    return data


def test_facts_keep_the_wire_shape_field_order_and_nulls():
    wire = {"kind": "order", "data": {"order_id": "10452", "total": 18.0, "status": "shipped", "eta": None}}
    fact = TypeAdapter(Fact).validate_python(wire)
    assert isinstance(fact, OrderFact) and fact.total == 18.0 and fact.carrier is None
    assert json.dumps(fact.model_dump(mode="json")) == json.dumps(wire)  # same keys, same order, null kept
    fact.customer_id = "C1"  # a field set later comes last
    assert list(fact.data) == ["order_id", "total", "status", "eta", "customer_id"]
    # wire names that are not attribute names
    policy = make_fact("policy", {"type": "return", "for": "Nordic Audio", "sku": None})
    assert isinstance(policy, PolicyFact) and policy.for_ == "Nordic Audio"
    assert policy.data == {"type": "return", "for": "Nordic Audio", "sku": None}
    request = make_fact("request", {"request_id": "REQ-1", "kind": "return", "status": "open"})
    assert isinstance(request, RequestFact) and request.request_kind == "return" and request.kind == "request"
    assert request.model_dump() == {"kind": "request", "data": {"request_id": "REQ-1", "kind": "return",
                                                                 "status": "open"}}
    with pytest.raises(ValidationError):
        make_fact("no_such_kind", {})
    with pytest.raises(ValidationError):
        make_fact("order", {"order_id": "1", "no_such_field": 1})


def test_the_chat_reply_is_one_model_shared_with_the_api():
    from api import schemas

    assert schemas.ChatResponse is ChatResponse and issubclass(TurnResult, ChatResponse)
    result = TurnResult(session_id="s", answer="a", intent={"name": "greeting", "confidence": 1.0},
                        facts=[make_fact("handoff", {"reason": "complaint"})], guard_passed=False,
                        llm_draft="draft", turn=3)
    body = result.public()
    assert list(body) == list(ChatResponse.model_fields)  # the API's field order, nothing server-only
    assert body["facts"] == [{"kind": "handoff", "data": {"reason": "complaint"}}]
    assert ChatResponse.model_validate(body).model_dump(mode="json") == body  # the same JSON both ways


def test_prompts_keep_the_keys_the_guard_reads():
    r = Retrieval(intent="check_refund_policy", status="ok", prompt=Subject(for_="Nordic Audio"))
    assert r.prompt is not None and r.prompt.as_dict() == {"for": "Nordic Audio", "sku": None}
