"""The evaluation-shop runner (qa/shop_eval.py) on a slice of eval/shops/bookshop: a shop nobody
here wrote the questions for, imported into a throwaway graph and answered by the real engine.
The whole set's figures are in the README (`./kgqa qa evaluate --set eval/shops/bookshop`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from common.settings import REPO_ROOT
from qa.shop_eval import EvalSet, EvalSetError, _linked, check, run, shop_engine
from qa.types import IntentOut, TurnResult
from tests.api_support import needs_engine

BOOKSHOP = REPO_ROOT / "eval" / "shops" / "bookshop"


def test_the_set_loads_and_its_gold_names_its_products():
    data = EvalSet.load(BOOKSHOP)
    assert len(data.questions) >= 150 and len(data.dialogues) >= 30
    assert str(data.today) == (BOOKSHOP / "today.txt").read_text().strip()
    skus = {line.split(",", 1)[0] for line in (BOOKSHOP / "data" / "products.csv").read_text().splitlines()[1:]}
    named = {s for q in data.questions for s in (q.get("source") or {}).get("skus", [])}
    assert named and named <= skus  # gold comes from the data


def test_a_set_without_its_date_or_data_is_a_clear_error(tmp_path: Path):
    with pytest.raises(EvalSetError, match="data/"):
        EvalSet.load(tmp_path)
    shutil.copytree(BOOKSHOP / "data", tmp_path / "data")
    (tmp_path / "today.txt").write_text("not a date")
    with pytest.raises(EvalSetError, match="today.txt"):
        EvalSet.load(tmp_path)


def test_a_turn_is_checked_against_every_kind_of_expectation():
    def res(answer: str, status: str = "ok") -> TurnResult:
        return TurnResult(session_id="s", answer=answer, intent=IntentOut(name="product_price", confidence=1.0),
                          status=status)

    expect = {"contains": ["8.50 EUR"], "contains_any": [["4 November 2026", "2026-11-04"]],
              "not_contains": ["9.99 EUR"]}
    assert check("q", expect, res("It costs 8.50 eur, shipped 2026-11-04.")) == []
    assert check("q", expect, res("It costs 9.99 EUR or 8.50 EUR, 4 November 2026.")) == ["should not say '9.99 EUR'"]
    assert check("q", expect, res("It costs 8.50 EUR.")) == ["none of ['4 November 2026', '2026-11-04']"]
    assert check("q", {"clarify": True}, res("Which one?", "clarify")) == []
    assert check("q", {"clarify": True}, res("It is 8.50 EUR.")) == ["should ask which one (status ok)"]
    assert check("q", {}, res("Which one?", "clarify")) == ["asked back instead of answering"]
    assert check("q", {"unknown": True}, res("I don't have that information for Dune.")) == []
    assert check("q", {"unknown": True}, res("Dune costs 8.50 EUR.")) != []


def test_a_mention_counts_as_linked_by_its_entity_or_by_the_facts_the_answer_was_written_from():
    from nlu.types import Candidate, Entity
    from qa.facts import ProductFact

    both = [Candidate(node_id=s, label="Product", name=s, score=0.9) for s in ("BK-1-HC", "BK-1-PB")]
    mention = Entity(type="PRODUCT", text="dune", ambiguous=True, candidates=both)

    def res(status: str, facts: list, entities: list) -> TurnResult:
        return TurnResult(session_id="s", answer="...", intent=IntentOut(name="product_details", confidence=1.0),
                          status=status, facts=facts, entities=entities)

    linked = Entity(type="PRODUCT", text="dune", node_id="BK-1-PB")
    assert _linked(res("ok", [], [linked]), ["BK-1-PB"], clarify=False)
    # "who wrote dune?" answered for both editions at once: the facts name the products
    answered = res("ok", [ProductFact(sku="BK-1-HC"), ProductFact(sku="BK-1-PB")], [mention])
    assert _linked(answered, ["BK-1-HC"], clarify=False)
    assert not _linked(answered, ["BK-9-PB"], clarify=False)  # the wrong book
    # asked back when an answer was wanted: candidates do not count, nor does a reply with no facts
    assert not _linked(res("clarify", [], [mention]), ["BK-1-HC"], clarify=False)
    assert _linked(res("clarify", [], [mention]), ["BK-1-HC"], clarify=True)
    assert not _linked(res("not_found", [], [Entity(type="PRODUCT", text="dune")]), ["BK-1-HC"], clarify=False)


@needs_engine
def test_runner_on_a_slice_of_the_bookshop(tmp_path: Path):
    data = EvalSet.load(BOOKSHOP)
    with shop_engine(data) as engine:
        report = run(engine, data, limit=20, progress=False)
        # the author names both editions and the prices differ: asked back ("book" is no "ebook")
        which = engine.handle(None, "What's the price of the kahneman book?", None)
        assert which.status == "clarify" and "(Paperback)" in which.answer and "(E-book)" in which.answer
    figures = report.figures
    assert figures["questions"] == 20 and figures["dialogues"] == 4
    assert 0.0 <= figures["answers_right"] <= 1.0 and figures["linking_mentions"] > 0
    assert figures["hallucinated_answers"] == 0  # nothing in a reply that the facts do not hold
    assert sum(v["turns"] for v in figures["by_covers"].values()) == 20 + sum(
        len(d["turns"]) for d in data.dialogues[:4])
    assert json.dumps(figures)  # the --json output is plain data
    # a floor under today's figures on this slice: a change that breaks answering fails here
    assert figures["answers_right"] >= 0.5, [(t.text, t.answer, t.problems) for t in report.failures()]
