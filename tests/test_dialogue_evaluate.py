"""qa/evaluate.py: bindings to real nodes, scoring, the hallucination count and the guard fallback
rate on the small test shop; the shipped evaluation set's shape; and the shipped set run end to end
on the sample store (seed 7) with the real entity linker, once the catalog importer exists."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from common import bootstrap
from nlu.labels import INTENTS
from nlu.types import IntentScore, Understanding
from qa import evaluate
from qa.engine import Engine
from qa.state import SessionStore
from qa.templates import TemplateVerbalizer
from qa.types import Reply
from tests import test_dialogue_support as support

# Fixtures shared by the dialogue test modules.
shop, encoder = support.shop, support.encoder


class Oracle:
    """Understands each message as the dialogue file expects (a fake of the model): what is
    measured here is everything after understanding."""

    threshold = 0.5  # the out-of-scope threshold the engine reads from its understander

    def __init__(self, store, dialogues) -> None:
        self.intents: dict[str, str] = {}
        binder = evaluate.Binder(store)
        for item in dialogues:
            bound = binder.bind(item.get("bind", {}))
            for turn in item["turns"]:
                self.intents[evaluate.fill(turn["say"], bound)] = turn["expect"]["intent"]

    def understand(self, text: str) -> Understanding:
        return Understanding(text=text, intent=IntentScore(name=self.intents.get(text, "out_of_scope"),
                                                           confidence=0.9))


def _engine(store, settings, encoder, understander, verbalizer=None, linker=None, now=support.NOW) -> Engine:
    sessions = SessionStore(lambda: store.redis, ttl_s=600, prefix=f"ev:{uuid.uuid4().hex[:6]}:")
    return bootstrap.build(settings, store=store, sessions=sessions, understander=understander, linker=linker,
                           encoder_model=encoder, verbalizer=verbalizer or TemplateVerbalizer(), examples=None,
                           clock=lambda: now).engine.get()


DIALOGUES = [
    {"id": "price", "bind": {"p": "line:Nordic Audio:Aurora X2:0"},
     "turns": [{"say": "how much is the {p.sku}?",
                "expect": {"intent": "product_price", "status": "ok", "answer_contains": ["{p.price}"]}}]},
    {"id": "track", "bind": {"o": "order:shipped"}, "customer": "{o.customer_id}",
     "turns": [{"say": "where is order {o.order_id}", "expect": {
         "intent": "track_order", "entities": [{"type": "ORDER_ID", "node_id": "{o.order_id}"}],
         "answer_contains": ["{o.tracking_number}"]}}]},
    {"id": "not-mine", "bind": {"o": "order:shipped", "x": "other_customer:o", "m": "missing_order"},
     "customer": "{x.customer_id}",
     "turns": [{"say": "where is order {o.order_id}", "expect": {"intent": "track_order", "status": "not_found"}},
               {"say": "and order {m.order_id}?", "expect": {"intent": "track_order", "status": "not_found"}}]},
    {"id": "wrong-on-purpose", "turns": [{"say": "what delivery options are there",
                                          "expect": {"intent": "delivery_options", "answer_contains": ["Teleport"]}}]},
]


class TaggingOracle(Oracle):
    def understand(self, text: str) -> Understanding:
        u = super().understand(text)
        ents = []
        for word in text.replace("?", " ").split():
            if word.isdigit() and len(word) >= 5:
                ents.append(support.ent(text, word, "ORDER_ID", word))
            if word.startswith("NA-HP-"):
                ents.append(support.ent(text, word, "PRODUCT", word))
        return u.model_copy(update={"entities": ents})


def test_run_binds_real_nodes_and_scores_turns(shop, encoder):
    settings, store = shop
    engine = _engine(store, settings, encoder, TaggingOracle(store, DIALOGUES))
    report = evaluate.run(engine, DIALOGUES, progress=False)
    figures = report.figures
    assert figures["dialogues"] == 4 and figures["turns"] == 5
    assert figures["intent_accuracy"] == 1.0 and figures["entity_accuracy"] == 1.0
    assert figures["answer_correctness"] == 0.8  # the one wrong expectation
    assert figures["hallucinations"] == 0 and figures["guard_fallback_rate"] is None
    [failure] = report.failures()
    assert failure.dialogue == "wrong-on-purpose" and "Teleport" in failure.problems[0]
    binder = evaluate.Binder(store)
    assert binder.pick("line:Nordic Audio:Aurora X2:0", {})["sku"] == "NA-HP-000001"
    assert binder.pick("order:shipped", {})["order_id"] == "10002"


def _result(answer: str, facts: list[dict], *, llm_draft: str | None = None):
    from qa.engine import IntentOut, TurnResult
    from qa.facts import make_fact

    return TurnResult(session_id="s", answer=answer, intent=IntentOut(name="product_price", confidence=0.9),
                      facts=[make_fact(kind=f["kind"], data=f["data"]) for f in facts], llm_draft=llm_draft,
                      guard_passed=False if llm_draft else None)


class InventingVerbalizer(TemplateVerbalizer):
    """A writer that makes a price up, as the small LLM might, and says its guard failed."""

    def verbalize(self, retrieval, turns, *, customer_id):
        return Reply(text="It costs 199.00 USD, order SKU ZZ-999 today.", verbalizer="llm", guard_passed=False,
                     guard_reasons=["money 199.00"])


def test_hallucinations_and_guard_fallbacks_are_counted(shop, encoder):
    settings, store = shop
    dialogues = DIALOGUES[:1]
    engine = _engine(store, settings, encoder, TaggingOracle(store, dialogues), verbalizer=InventingVerbalizer())
    report = evaluate.run(engine, dialogues, progress=False)
    assert report.figures["hallucinations"] == 1 and report.figures["guard_fallback_rate"] == 1.0
    assert report.turns[0].hallucinated == ["199.00", "ZZ-999"]
    # the template writer's replies carry nothing unsupported
    facts = [{"kind": "order", "data": {"order_id": "10002", "eta": "2026-03-17", "total": 1199.0}}]
    assert evaluate.unsupported_tokens("Order 10002 arrives 17 March 2026; total 1,199.00 USD; 2) rated 4.5/5",
                                       facts, "rated 4.5") == []
    # counted before the guard too: a faithful answer sent, an invented figure in the model's text
    price = [{"kind": "product", "data": {"sku": "X", "price": 18.0, "currency": "USD"}}]
    turn = evaluate.score_turn("d", 0, "how much?", {}, _result("It costs 18.00 USD.", price,
                                                                  llm_draft="It costs 17.50 USD."))
    assert turn.hallucinated == [] and turn.llm_hallucinated == ["17.50"]
    assert evaluate.Report([turn]).figures["llm_hallucinations_before_guard"] == 1
    promo = [{"kind": "promotion", "data": {"discount": 0.3, "price": 309.99}}]
    assert evaluate.unsupported_tokens("309.99 USD, 30% off (30 percent)", promo, "") == []
    assert evaluate.unsupported_tokens("309.99 USD, 40% off", promo, "") == ["40"]


def test_bad_dialogue_files_are_reported_with_the_line(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "ok", "turns": [{"say": "hi"}]}\n{not json\n')
    with pytest.raises(evaluate.EvalDataError, match="bad.jsonl:2"):
        evaluate.load_dialogues(path)
    with pytest.raises(evaluate.EvalDataError, match="not bound"):
        evaluate.fill("{x.sku}", {})


def test_the_shipped_evaluation_set_is_well_formed():
    dialogues = evaluate.load_dialogues(evaluate.DEFAULT_DATA)
    assert len(dialogues) >= 30 and sum(len(d["turns"]) for d in dialogues) >= 45
    assert len({d["id"] for d in dialogues}) == len(dialogues)
    multi = [d for d in dialogues if len(d["turns"]) > 1]
    assert len(multi) >= 8
    kinds = {"line", "order", "other_customer", "co_purchased", "missing_order"}
    for d in dialogues:
        for spec in d.get("bind", {}).values():
            assert spec.split(":")[0] in kinds, spec
        for t in d["turns"]:
            assert t["expect"]["intent"] in INTENTS, t
            # expectations name catalog values only through placeholders or generator-fixed texts
            assert "NA-HP-" not in json.dumps(t), t
