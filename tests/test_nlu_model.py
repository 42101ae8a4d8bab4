"""The trained understanding model in nlu/artifacts: real weights, no mocks, no retraining."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from common.errors import NLUError
from common.settings import REPO_ROOT, Settings
from nlu import model as nlu_model
from nlu.dataset import load_phrasings, train_phrasing_files
from nlu.labels import ENTITY_TYPES, FAMILY_OF, INTENTS
from nlu.understand import Understander, decode_bio, viterbi_bio

ARTIFACTS = REPO_ROOT / "nlu" / "artifacts"

# Phrasings of the held-out evaluation file (slots filled by hand with sample-store names), one or
# more per intent family; `test_examples_are_not_training_phrasings` checks none was trained on.
HELD_OUT: dict[str, list[tuple[str, str]]] = {
    "products": [
        ("whats the price of the Aurora X2?", "product_price"),
        ("do you have the kairo 7 available right now", "product_availability"),
        ("what colours does the Gale 3 come in", "product_details"),
        ("does NA-700X come with a warranty", "product_warranty"),
    ],
    "orders": [
        ("wheres my package 10452", "track_order"),
        ("please cancle 11003", "cancel_order"),
        ("send me the invoice for 10877", "get_invoice"),
    ],
    "policies": [
        ("how much does it cost to cancel an order", "check_cancellation_fee"),
        ("what shipping options do you have", "delivery_options"),
        ("can I pay with a credit card", "check_payment_methods"),
    ],
    "account": [
        ("I lost my sign-in key", "recover_password"),
        ("i want to deactivate my profile", "delete_account"),
    ],
    "service": [
        ("i'd like to file a complaint about the delivery driver", "complaint"),
        ("i want to speak to a real person", "contact_human_agent"),
    ],
    "conversation": [
        ("hi, anyone there?", "greeting"),
        ("that will be all, goodbye", "goodbye"),
        ("great, thanks for the help", "thanks"),
        ("no, that's not it", "deny"),
    ],
}


@pytest.fixture(scope="module")
def nlu_settings() -> Settings:
    return Settings(_env_file=None, nlu_model_dir=ARTIFACTS)


@pytest.fixture(scope="module")
def understander(nlu_settings: Settings) -> Understander:
    return Understander.load(nlu_settings)


def test_examples_are_not_training_phrasings():
    trained = {p.lower().strip() for ps in load_phrasings(train_phrasing_files()).values() for p in ps}
    for family, cases in HELD_OUT.items():
        assert set(FAMILY_OF[i] for _, i in cases) == {family}
        for text, _ in cases:
            assert text.lower() not in trained
    assert set(HELD_OUT) == set(FAMILY_OF.values())


@pytest.mark.parametrize("family", sorted(HELD_OUT))
def test_each_intent_family_on_held_out_phrasings(understander: Understander, family: str):
    cases = HELD_OUT[family]
    results = understander.understand_batch([t for t, _ in cases])
    for (text, expected), u in zip(cases, results, strict=True):
        assert u.intent.name == expected, (text, u.intent, u.ranking[:3])
        assert u.intent.confidence >= understander.threshold
        assert u.ranking[0].name == expected
        assert [r.confidence for r in u.ranking] == sorted((r.confidence for r in u.ranking), reverse=True)


def test_entities_have_offsets_in_the_original_text(understander: Understander):
    text = "Hi!  is my order #10452 with the Nordic Audio Aurora X2 headphones shipped yet?"
    u = understander.understand(text)
    by_type = {e.type: e for e in u.entities}
    assert set(by_type) == {"ORDER_ID", "PRODUCT"}, u.entities
    for e in u.entities:
        assert e.start is not None and e.end is not None
        assert text[e.start:e.end] == e.text
        assert e.node_id is None and e.source == "message"
    assert by_type["ORDER_ID"].text.lstrip("#") == "10452"
    assert "Aurora X2" in by_type["PRODUCT"].text
    assert by_type["PRODUCT"].start < by_type["PRODUCT"].end <= len(text)


def test_money_attribute_and_category(understander: Understander):
    text = "can you recommend black running shoes under $150"
    u = understander.understand(text)
    found = {(e.type, e.text.lower()) for e in u.entities}
    assert ("MONEY", "$150") in found
    assert ("ATTRIBUTE", "black") in found
    assert ("CATEGORY", "running shoes") in found
    assert u.intent.name == "product_recommend"


DEGENERATE = [
    "",
    "   \n\t  ",
    "😀😀🎉",
    "\x00\x01\x02",
    "我的订单在哪里？请尽快回复",
    "أين طلبي؟ أريد أن أعرف متى يصل",
    "asdkjh qwpeoiru zmxncb",
]


@pytest.mark.parametrize("text", DEGENERATE)
def test_degenerate_input_is_out_of_scope(understander: Understander, text: str):
    u = understander.understand(text)
    assert u.text == text
    assert u.intent.name == "out_of_scope"
    assert 0.0 <= u.intent.confidence <= 1.0
    for e in u.entities:
        assert 0 <= e.start < e.end <= len(text) and text[e.start:e.end] == e.text


def test_long_and_control_character_input_stays_sane(understander: Understander):
    long_text = "where is my order 10452 " + "blah " * 2000
    assert len(long_text) > 10_000
    for text in (long_text, "x" * 10_000, "where is\x00 my order\x07 10452\u200b?", "\ud83d broken surrogate"):
        u = understander.understand(text)
        assert u.intent.name in INTENTS
        assert 0.0 <= u.intent.confidence <= 1.0
        for e in u.entities:
            assert e.type in ENTITY_TYPES
            assert 0 <= e.start < e.end <= len(text) and text[e.start:e.end] == e.text
    # Text past max_length tokens is cut, never shifted: the order id at the start keeps its offsets.
    order = [e for e in understander.understand(long_text).entities if e.type == "ORDER_ID"]
    assert [(e.start, e.end) for e in order] == [(18, 23)]


def test_batch_equals_single_and_threads_agree(understander: Understander):
    texts = [t for cases in HELD_OUT.values() for t, _ in cases] + DEGENERATE
    single = [understander.understand(t) for t in texts]
    batched = understander.understand_batch(texts, batch_size=5)
    assert [(u.intent.name, u.entities) for u in batched] == [(u.intent.name, u.entities) for u in single]
    results: dict[int, list] = {}

    def work(k: int) -> None:
        results[k] = [understander.understand(t).intent.name for t in texts]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == [s.intent.name for s in single] for r in results.values())


def test_decode_bio_repairs_invalid_sequences():
    # "buy na 700x now": I- without B- starts a span; a type change starts a new one.
    tags = ["O", "O", "I-PRODUCT", "I-PRODUCT", "I-PRODUCT", "B-MONEY", "I-ORDER_ID", "O"]
    word_ids = [None, 0, 1, 2, 2, 3, 4, None]
    offsets = [(0, 0), (0, 3), (4, 6), (7, 10), (10, 11), (12, 15), (16, 19), (0, 0)]
    assert decode_bio(tags, word_ids, offsets) == [(4, 11, "PRODUCT"), (12, 15, "MONEY"), (16, 19, "ORDER_ID")]


def test_viterbi_keeps_bio_valid_and_joins_the_order_sign():
    import torch

    from nlu.labels import BIO_TAGS

    text = "track #10452 now"
    word_ids = [None, 0, 1, 2, 3, None]
    offsets = [(0, 0), (0, 5), (6, 7), (7, 12), (13, 16), (0, 0)]
    probs = torch.full((6, len(BIO_TAGS)), 0.01)
    probs[:, 0] = 0.9  # "O" everywhere...
    probs[3, BIO_TAGS.index("I-ORDER_ID")] = 0.6  # ...but "10452" looks like the inside of an order id
    probs[3, BIO_TAGS.index("B-ORDER_ID")] = 0.3
    probs[3, 0] = 0.1
    spans = viterbi_bio(probs.log(), word_ids, offsets, BIO_TAGS, text)
    assert spans == [(6, 12, "ORDER_ID")]  # B- chosen (I- cannot follow O); "#" joins its number
    assert text[6:12] == "#10452"


def test_loads_offline_in_a_fresh_process():
    code = (
        "from common.settings import Settings; from nlu.understand import Understander;"
        f"u = Understander.load(Settings(_env_file=None, nlu_model_dir={str(ARTIFACTS)!r}));"
        "print(u.understand('where is my order 10452').intent.name)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "track_order"


def test_save_load_round_trip(understander: Understander, nlu_settings: Settings, tmp_path: Path):
    model, config = nlu_model.load(ARTIFACTS, nlu_settings.encoder_path, merge=False)
    nlu_model.save(model, config, tmp_path / "copy")
    again = Understander.load(nlu_settings, model_dir=tmp_path / "copy")
    texts = [t for cases in HELD_OUT.values() for t, _ in cases]
    texts.append("is the Aurora X2 in black cheaper than $200 for order #10452?")
    first, second = understander.understand_batch(texts), again.understand_batch(texts)
    for a, b in zip(first, second, strict=True):
        assert a.intent.name == b.intent.name
        assert [r.name for r in a.ranking] == [r.name for r in b.ranking]
        assert all(abs(x.confidence - y.confidence) < 1e-5 for x, y in zip(a.ranking, b.ranking, strict=True))
        assert a.entities == b.entities


def test_missing_encoder_is_a_clear_error(nlu_settings: Settings, tmp_path: Path):
    with pytest.raises(NLUError, match="encoder"):
        Understander.load(nlu_settings, encoder_path=tmp_path / "no-such-encoder")


def test_mismatched_encoder_config_is_a_clear_error(nlu_settings: Settings, tmp_path: Path):
    other = tmp_path / "other-encoder"
    shutil.copytree(nlu_settings.encoder_path, other, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    cfg = json.loads((other / "config.json").read_text())
    cfg["num_hidden_layers"] = cfg["num_hidden_layers"] + 2
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(NLUError, match="does not match"):
        Understander.load(nlu_settings, encoder_path=other)


def test_same_shape_other_weights_is_a_clear_error(nlu_settings: Settings, tmp_path: Path):
    import torch
    from transformers import AutoConfig, AutoModel

    other = tmp_path / "retrained-encoder"
    shutil.copytree(nlu_settings.encoder_path, other, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.from_pretrained(other)).save_pretrained(other)
    with pytest.raises(NLUError, match="other weights"):
        Understander.load(nlu_settings, encoder_path=other)


def test_missing_artefacts_are_a_clear_error(nlu_settings: Settings, tmp_path: Path):
    with pytest.raises(NLUError, match="no trained understanding model"):
        Understander.load(nlu_settings, model_dir=tmp_path)


def test_catalog_from_graph_equals_catalog_from_files(store, settings: Settings, tmp_path: Path, monkeypatch):
    import datetime as dt

    from import_scripts.sample_store import generate
    from kg.loader import import_path
    from nlu import catalog as catalog_module

    sample = tmp_path / "sample"
    generate(sample, products=40, customers=5, orders=12, seed=3, today=dt.date(2026, 1, 15))
    import_path(store, sample, settings=settings, progress=False)
    monkeypatch.setattr(catalog_module, "_PAGE", 7)  # several pages of products
    from_graph = catalog_module.catalog_from_store(store)
    from_files = catalog_module.catalog_from_dir(sample)
    key = [(p.sku, p.name, p.brand, p.category, p.variant_values) for p in from_graph.products]
    assert len(key) == 40
    assert key == [(p.sku, p.name, p.brand, p.category, p.variant_values) for p in from_files.products]
    assert from_graph.brands == from_files.brands and from_graph.categories == from_files.categories
    assert from_graph.attribute_values == from_files.attribute_values
    assert sorted(from_graph.order_ids) == sorted(from_files.order_ids) and len(from_graph.order_ids) == 12
    train, held = from_graph.split()
    assert train.split() == from_graph.split()[0].split()  # deterministic
    assert not {p.sku for p in train.products} & {p.sku for p in held.products}
    assert 0.05 <= len(held.products) / 40 <= 0.4


@pytest.mark.parametrize("runtime", ["onnx", "torchscript"])
def test_the_served_runtimes_answer_exactly_like_the_eager_model(understander: Understander, nlu_settings: Settings,
                                                                  runtime: str):
    """The default load exports the model to ONNX (Settings.nlu_runtime), TorchScript is the other
    fast runtime: both must serve any batch size and length, padded or not, with the eager model's
    numbers and the same understanding."""
    import torch

    eager = Understander.load(nlu_settings, runtime="eager")
    served = understander if runtime == "onnx" else Understander.load(nlu_settings, runtime="torchscript")
    assert served.runtime == runtime and eager.runtime == "eager"
    assert isinstance(served.model, nlu_model.OnnxModel if runtime == "onnx" else torch.jit.ScriptModule)
    texts = ["hi", "is the Aurora X2 in stock?", "compare the kairo 7 and the nova 5 please, which is cheaper",
             "change the delivery address of #10999 to 12 Harbour Street, Edinburgh EH1 2AB " * 3]
    batch = understander.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        for ids, mask in [(batch["input_ids"], batch["attention_mask"])] + [
                (batch["input_ids"][k:k + 1, :int(batch["attention_mask"][k].sum())],
                 batch["attention_mask"][k:k + 1, :int(batch["attention_mask"][k].sum())]) for k in range(len(texts))]:
            a_int, a_tag, a_vec = eager.model(ids, mask)
            b_int, b_tag, b_vec = served.model(ids, mask)
            assert torch.allclose(a_int, b_int, atol=1e-4)
            keep = mask.bool()
            assert torch.allclose(a_tag[keep], b_tag[keep], atol=1e-4)
            assert torch.allclose(a_vec, b_vec, atol=1e-4)
    assert [u.model_dump() for u in eager.understand_batch(texts)] == \
        [u.model_dump() for u in served.understand_batch(texts)]


def test_the_exported_graph_is_cached_for_every_later_load(nlu_settings: Settings, tmp_path: Path, monkeypatch):
    """The first ONNX load exports the graph into NLU_CACHE_DIR under its fingerprint; a later load
    (another worker) reads that file and never loads the torch model, with the same reading. A
    damaged file is a clear error naming it."""
    settings = nlu_settings.model_copy(update={"nlu_cache_dir": str(tmp_path / "cache")})
    first = Understander.load(settings, runtime="onnx")
    [graph] = (tmp_path / "cache").glob("understanding-*.onnx")
    assert nlu_model.onnx_fingerprint(settings.nlu_model_dir, settings.encoder_path) in graph.name

    def no_torch_model(*_a, **_k):
        raise AssertionError("the cached graph should have been read")

    monkeypatch.setattr(nlu_model, "load", no_torch_model)
    second = Understander.load(settings, runtime="onnx")
    texts = ["is the Aurora X2 in stock?", "where is my order 10452", "hi"]
    assert [u.model_dump() for u in first.understand_batch(texts)] == \
        [u.model_dump() for u in second.understand_batch(texts)]
    graph.write_bytes(b"not a graph")
    with pytest.raises(NLUError, match=graph.name):
        Understander.load(settings, runtime="onnx")


def test_int8_runs_as_torchscript(nlu_settings: Settings):
    """int8 dynamic quantisation is torch's: asked for with the ONNX runtime, the model is traced."""
    int8 = Understander.load(nlu_settings, quantize=True, runtime="onnx")
    assert int8.quantized and int8.runtime == "torchscript"


def test_a_message_reads_the_same_alone_and_in_a_batch(understander: Understander, nlu_settings: Settings):
    """The chat asks one message at a time, evaluation asks batches: the default (float32) model
    must give both the same reading. An int8 model scales a batch's activations together, so the
    evaluation asks it one message at a time (what the chat serves), never a batch."""
    from nlu.evaluate import predict_intents

    texts = ["hi", "is the Aurora X2 in stock?", "i want compensation for the broken kettle",
             "compare the kairo 7 and the nova 5 please, which is cheaper", "what is the fee for a cash advance",
             "change the delivery address of #10999 to 12 Harbour Street, Edinburgh EH1 2AB " * 3]
    assert not understander.quantized
    alone = [understander.understand(t) for t in texts]
    together = understander.understand_batch(texts)
    for a, b in zip(alone, together, strict=True):
        assert a.intent.name == b.intent.name and abs(a.intent.confidence - b.intent.confidence) < 1e-4
        assert [(e.type, e.start, e.end) for e in a.entities] == [(e.type, e.start, e.end) for e in b.entities]
    int8 = Understander.load(nlu_settings, quantize=True)
    assert int8.quantized
    assert predict_intents(int8, texts) == [int8.understand(t).intent.name for t in texts]


def test_trace_needs_a_padded_example(understander: Understander, nlu_settings: Settings):
    eager = Understander.load(nlu_settings, runtime="eager")
    one = understander.tokenizer(["hi there"], return_tensors="pt")
    with pytest.raises(ValueError, match="padded"):
        nlu_model.trace_for_inference(eager.model, one["input_ids"], one["attention_mask"])
    with pytest.raises(ValueError, match="padded"):
        nlu_model.export_onnx(eager.model, one["input_ids"], one["attention_mask"])


def test_evaluate_and_predict_commands(store, settings: Settings, understander: Understander, tmp_path: Path):
    """The evaluation report on held-out names with the real linker (a line-only mention that is
    reported ambiguous with its product among the candidates counts as right), and `predict`."""
    import datetime as dt
    import random

    from click.testing import CliRunner

    from import_scripts.sample_store import generate
    from kg.loader import import_path
    from nlu.catalog import catalog_from_dir
    from nlu.cli import nlu as nlu_cli
    from nlu.dataset import build_eval_examples
    from nlu.evaluate import evaluate, format_report
    from nlu.linking import EntityLinker

    sample = tmp_path / "sample"
    generate(sample, products=60, customers=5, orders=20, seed=5, today=dt.date(2026, 1, 15))
    import_path(store, sample, settings=settings, progress=False)
    held = catalog_from_dir(sample).split()[1]
    examples = random.Random(1).sample(build_eval_examples(held, fills=1), 150)
    linker = EntityLinker.from_settings(settings, store)
    report = evaluate(understander, examples, linker=linker.link, progress=False)
    assert report["examples"] == 150
    assert report["intent_accuracy"] >= 0.85 and report["entity_f1"] >= 0.8
    lk = report["linking"]
    assert lk["mentions"] > 20 and lk["accuracy"] >= 0.85 and lk["flagged_ambiguous"] >= 0
    text = format_report(report)
    assert "intent accuracy" in text and "linking accuracy" in text

    nowhere = {"GRAPH_URL": "falkordb://embedded", "DATA_DIR": str(tmp_path / "no-server")}
    out = CliRunner().invoke(nlu_cli, ["predict", "where is my order #10452?"], env=nowhere)
    assert out.exit_code == 0, out.output
    answer = json.loads(out.stdout)
    assert answer["intent"]["name"] == "track_order"
    assert [(e["type"], e["text"]) for e in answer["entities"]] == [("ORDER_ID", "#10452")]
    assert "not linked" in out.stderr and not (tmp_path / "no-server").exists()  # no server was started

    # with the graph running, predict links: the product a mention names, by its sku
    product = next(p for p in catalog_from_dir(sample).products if len(p.name.split()) >= 2)
    here = {"GRAPH_URL": settings.graph_url, "DATA_DIR": str(settings.data_dir), "GRAPH_NAME": settings.graph_name}
    out = CliRunner().invoke(nlu_cli, ["predict", f"how much is the {product.name}?"], env=here)
    assert out.exit_code == 0, out.output
    linked = json.loads(out.stdout)["entities"]
    assert any(e["node_id"] == product.sku for e in linked), linked
