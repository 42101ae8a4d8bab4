"""Understanding on data nobody on the team wrote, and the training pieces that use outside data.

The Bitext development file and CLINC150 lie in ../shared/data (beside the checkout, in CI too);
they are only ever read here, never trained on (Bitext) or trained on through the train split only
(CLINC). Every test runs the real committed model.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from common.errors import NLUError
from common.settings import REPO_ROOT, Settings
from nlu.dataset import load_phrasings, train_phrasing_files
from nlu.evaluate import evaluate_clinc, evaluate_external, format_clinc, format_external
from nlu.external import CLINC_DROPPED, CLINC_MAP, OUT_OF_SCOPE, read_clinc, read_jsonl
from nlu.labels import INTENTS
from nlu.synonyms import load_table, swap_synonym
from nlu.train import choose_threshold, clinc_examples, teacher_vectors, with_synonyms
from nlu.understand import Understander

SHARED = REPO_ROOT.parent / "shared" / "data"
BITEXT = SHARED / "bitext-dev" / "intents_dev.jsonl"
CLINC = SHARED / "clinc150"
needs_bitext = pytest.mark.skipif(not BITEXT.is_file(), reason="../shared/data/bitext-dev is not beside the checkout")
needs_clinc = pytest.mark.skipif(not (CLINC / "data_full.json").is_file(),
                                 reason="../shared/data/clinc150 is not beside the checkout")


@pytest.fixture(scope="module")
def understander() -> Understander:
    return Understander.load(Settings(_env_file=None))


def _norm(text: str) -> str:
    return " ".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


@needs_bitext
def test_no_bitext_sentence_is_training_data():
    trained = {_norm(p) for ps in load_phrasings(train_phrasing_files()).values() for p in ps}
    dev = {_norm(e.text) for e in read_jsonl(BITEXT)}
    assert not (trained & dev)


@needs_bitext
def test_external_evaluation_on_a_slice_of_bitext(understander: Understander, tmp_path: Path):
    rows = [json.loads(line) for line in BITEXT.read_text(encoding="utf-8").splitlines()]
    sliced = random.Random(3).sample(rows, 60)
    path = tmp_path / "slice.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in sliced), encoding="utf-8")
    report = evaluate_external(understander, read_jsonl(path))
    assert report["examples"] == 60
    assert set(report["per_intent"]) <= set(INTENTS)
    assert sum(v["support"] for v in report["per_intent"].values()) == 60
    assert report["accuracy"] >= 0.7, format_external("slice", report)  # the whole file: see README
    if "entity_span_f1" in report:
        assert report["entity_span_f1"]["types"] == ["ORDER_ID"] and report["entity_span_f1"]["f1"] >= 0.9
    assert "accuracy" in format_external("slice", report)


def test_external_file_errors_name_the_line(tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "intent": "greeting"}\n{"text": "x", "intent": "order_pizza"}\n', encoding="utf-8")
    with pytest.raises(NLUError, match=r"bad.jsonl:2: unknown intent 'order_pizza'"):
        read_jsonl(bad)
    bad.write_text('{"text": "hi", "intent": "greeting"}\nnot json\n', encoding="utf-8")
    with pytest.raises(NLUError, match=r"bad.jsonl:2: not JSON"):
        read_jsonl(bad)
    bad.write_text('{"text": 3, "intent": "greeting"}\n', encoding="utf-8")
    with pytest.raises(NLUError, match=r"bad.jsonl:1: each line needs"):
        read_jsonl(bad)


@needs_clinc
def test_clinc_mapping_and_dropped_intents():
    test = read_clinc(CLINC, "test")
    assert {e.intent for e in test.in_scope} == set(CLINC_MAP.values())
    assert {e.intent for e in test.other_domain + test.oos} == {OUT_OF_SCOPE}
    assert not {e.phrasing.removeprefix("clinc:") for e in test.other_domain} & CLINC_DROPPED
    assert len(test.oos) == 1000 and not any(e.tagged for e in test.all)
    with pytest.raises(NLUError, match="splits"):
        read_clinc(CLINC, "oos_test")


@needs_clinc
def test_out_of_scope_on_clinc_test_queries(understander: Understander):
    """A sample of CLINC's out-of-scope test queries is declined, its shop intents are answered."""
    test = read_clinc(CLINC, "test")
    rng = random.Random(11)
    oos = rng.sample(test.oos, 40) + rng.sample(test.other_domain, 40)
    declined = [u.intent.name == OUT_OF_SCOPE for u in understander.understand_batch([e.text for e in oos])]
    assert sum(declined) >= 0.75 * len(oos)
    mapped = rng.sample(test.in_scope, 30)
    right = [u.intent.name == e.intent for u, e in zip(understander.understand_batch([e.text for e in mapped]),
                                                      mapped, strict=True)]
    assert sum(right) >= 0.8 * len(mapped)


@needs_clinc
def test_clinc_protocol_report(understander: Understander, tmp_path: Path):
    data = json.loads((CLINC / "data_full.json").read_text(encoding="utf-8"))
    small = {split: (items[::40] if isinstance(items, list) else items) for split, items in data.items()}
    path = tmp_path / "data_full.json"
    path.write_text(json.dumps(small), encoding="utf-8")
    report = evaluate_clinc(understander, tmp_path, "test", shop_labels=None)
    assert report["oos_examples"] == 25 and report["in_scope_examples"] > 0
    for key in ("oos_recall", "other_domain_recall", "oos_precision", "in_scope_accuracy"):
        assert 0.0 <= report[key] <= 1.0
    assert "out-of-scope declined" in format_clinc(report)


@needs_clinc
def test_the_shop_labels_fit_clincs_oos_test_and_split_its_figure(tmp_path: Path):
    """eval/clinc150: one label per oos_test query, checked against the query's text; the report
    gives the declined share of each part beside the whole."""
    from nlu.evaluate import DEFAULT_SHOP_LABELS
    from nlu.external import clinc_report, read_shop_labels

    test = read_clinc(CLINC, "test")
    labels = read_shop_labels(DEFAULT_SHOP_LABELS, test.oos)
    assert len(labels) == 1000 and 0 < labels.count("shop") < 100
    predicted = {"in_scope": [e.intent for e in test.in_scope], "other_domain": [OUT_OF_SCOPE] * len(test.other_domain),
                 "oos": [OUT_OF_SCOPE if lab == "not_shop" else "product_recommend" for lab in labels]}
    report = clinc_report(test, predicted, labels)
    assert report["oos_not_shop_declined"] == 1.0 and report["oos_shop_declined"] == 0.0
    assert report["oos_recall"] == round(labels.count("not_shop") / 1000, 4)
    assert "general shop" in format_clinc({"split": "test", **report})
    # another copy (or order) of the queries is refused, naming the line
    with pytest.raises(NLUError, match=":2: does not label query 1"):
        read_shop_labels(DEFAULT_SHOP_LABELS, [test.oos[0], *test.oos[2:], test.oos[1]])
    with pytest.raises(NLUError, match="999 labels for 1000"):
        short = tmp_path / "short.jsonl"
        short.write_text("\n".join(DEFAULT_SHOP_LABELS.read_text().splitlines()[:999]))
        read_shop_labels(short, test.oos)


@needs_clinc
def test_clinc_training_examples_are_balanced_and_untagged():
    ex = clinc_examples(CLINC, "train", 1300, seed=1)
    other = [e for e in ex if e.phrasing.startswith("clinc:") and e.phrasing != "clinc:oos"]
    per = {}
    for e in other:
        per[e.phrasing] = per.get(e.phrasing, 0) + 1
    assert len(set(per.values())) == 1 and 1000 <= len(other) <= 1300
    assert not any(e.tagged for e in ex)
    assert clinc_examples(CLINC, "train", 1300, seed=1) == ex  # deterministic


def test_threshold_is_the_lowest_reaching_the_target():
    oos = INTENTS.index(OUT_OF_SCOPE)
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.35, 0.65], [0.2, 0.8]])
    labels = torch.tensor([0, 1, 1, 1])  # pretend index 1 is out_of_scope
    assert choose_threshold(probs, labels, 1, 1.0) == 0.61  # the 0.6-confident one must be declined
    assert choose_threshold(probs, labels, 1, 0.6) == 0.2
    assert choose_threshold(probs, torch.tensor([0, 0, 0, 0]), oos, 0.9) == 0.2  # no out-of-scope examples


def test_model_threshold_comes_from_its_config_unless_set(understander: Understander):
    assert understander.threshold == understander.config.threshold
    other = Understander.load(Settings(_env_file=None, intent_threshold=0.77), runtime="eager")
    assert other.threshold == 0.77


def test_synonym_variants_keep_slots_and_intents():
    table = load_table()
    assert "reimbursement" in table["refund"] and "call off" in table["cancel"]
    rng = random.Random(2)
    assert swap_synonym("no domain words here", table, rng) is None
    for _ in range(20):
        out = swap_synonym("I want a refund for {order_id}", table, rng)
        assert out is not None and out.endswith(" for {order_id}") and out != "I want a refund for {order_id}"
    assert swap_synonym("{product} refund", {"product": ["thing"], "refund": ["rebate"]}, rng) == "{product} rebate"
    grown = with_synonyms({"get_refund": ["refund my order please"], OUT_OF_SCOPE: ["refund my train ticket"]},
                          table, random.Random(1), share=1.0)
    assert len(grown["get_refund"]) == 2 and grown[OUT_OF_SCOPE] == ["refund my train ticket"]


def test_teacher_vectors_are_cached(tmp_path: Path):
    """The distillation targets: normalised teacher embeddings, embedded once per text. The
    packaged MiniLM stands in for the teacher here (same sentence-transformers directory format)."""
    teacher = Settings(_env_file=None).encoder_path
    texts = ["where is my parcel", "I want my money back", "where is my parcel"]
    first = teacher_vectors(texts, teacher, str(tmp_path), progress=False, log=lambda *_: None)
    assert first.shape == (3, 384)
    assert torch.allclose(first.norm(dim=-1), torch.ones(3), atol=1e-4)
    assert torch.equal(first[0], first[2])
    logged: list[str] = []
    again = teacher_vectors(texts[:2], teacher, str(tmp_path), progress=False, log=logged.append)
    assert not logged and torch.equal(again, first[:2])  # nothing embedded the second time


@pytest.mark.skipif(not (Path("/usr/share/wordnet") / "index.noun").is_file(),
                    reason="Debian's wordnet-base is not installed (apt-get install wordnet-base)")
def test_committed_synonym_table_is_what_wordnet_gives():
    from nlu.synonyms import build_table

    assert build_table() == load_table()


# -- the out-of-scope margin (nlu/calibrate.py) ----------------------------------------------------------
def test_choose_margin_is_the_least_that_reaches_the_recall():
    from nlu.calibrate import choose_margin

    ratios = [0.05, 0.3, 0.55, 2.0, -1.0]
    # two of five declined already; 80% needs two more: the margin must pass 0.05 and 0.3
    assert choose_margin(ratios, [False, False, False, True, True], 0.8) == 0.31
    assert choose_margin(ratios, [True, True, True, True, False], 0.8) is None  # the threshold suffices
    assert choose_margin([5.0, 5.0], [False, False], 0.5, hi=3.0) is None  # out of reach
    assert choose_margin([], [], 0.95) is None


def test_the_margin_declines_what_the_out_of_scope_class_nearly_won():
    settings = Settings(_env_file=None)
    text = "what's a good recipe for the cheese i bought?"
    off = Understander.load(settings.model_copy(update={"intent_oos_margin": -1.0}))
    wide = Understander.load(settings.model_copy(update={"intent_oos_margin": 50.0}))
    assert off.oos_margin is None and wide.oos_margin == 50.0
    assert wide.understand("is the aurora x2 in stock?").intent.name == OUT_OF_SCOPE  # nothing is that sure
    assert off.understand("is the aurora x2 in stock?").intent.name == "product_availability"
    assert off.understand(text).intent.confidence == wide.understand(text).intent.confidence


@needs_clinc
def test_the_committed_margin_is_reproduced_from_clinc_val(tmp_path: Path):
    """`./kgqa nlu calibrate` on the committed model gives the margin its config holds (chosen on
    CLINC150 val only), and writes it into a model directory's config."""
    import shutil

    from nlu import model as nlu_model
    from nlu.calibrate import calibrate, write_margin

    settings = Settings(_env_file=None)
    committed = nlu_model.read_config(settings.nlu_model_dir).oos_margin
    plain = Understander.load(settings.model_copy(update={"intent_oos_margin": -1.0}))
    margin = calibrate(plain, CLINC)
    assert margin is not None and margin == committed
    copy = tmp_path / "model"
    shutil.copytree(settings.nlu_model_dir, copy)
    write_margin(copy, 1.5)
    assert nlu_model.read_config(copy).oos_margin == 1.5
    assert Understander.load(settings, model_dir=copy).oos_margin == 1.5
