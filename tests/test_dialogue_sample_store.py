"""The dialogue on the default sample store (seed 7) loaded by the catalog importer into its own
graph, with the real entity linker: the shipped evaluation set end to end, policy specificity on
the generator's overriding policies, recommendations that exist in that graph, and "not yours"
equal to "does not exist". Intents are scripted (the model is measured by nlu/evaluate.py)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import uuid

import pytest

from common import bootstrap
from common.settings import Settings
from kg.backends.falkordb import FalkorDBStore
from kg.queries import Query
from kg.schema import ensure_schema
from nlu.types import IntentScore, Understanding
from qa import evaluate
from qa.engine import Engine
from qa.state import SessionStore
from qa.templates import TemplateVerbalizer
from tests import test_dialogue_support as support
from tests.test_dialogue_support import Chat, ScriptedUnderstander

encoder = support.encoder  # shared fixture

TODAY = dt.date(2026, 3, 15)
NOW = dt.datetime(2026, 3, 15, 12, tzinfo=dt.UTC)

PRODUCTS = Query("test.sample.products", """
    MATCH (p:Product)-[:MADE_BY]->(b:Brand) MATCH (p)-[:IN_CATEGORY]->(c:Category)
    RETURN p.sku AS sku, p.name AS name, b.name AS brand, c.name AS category, p.attributes AS attributes,
           p.status AS status, p.stock AS stock ORDER BY sku""")
BOUGHT = Query("test.sample.bought", """
    MATCH (:Customer {customer_id: $customer_id})-[:PLACED]->(:Order)-[:CONTAINS]->(p:Product)
    RETURN collect(DISTINCT p.sku) AS skus""")


@pytest.fixture(scope="module")
def sample(falkordb_server, tmp_path_factory):
    from import_scripts.sample_store import generate
    from kg import loader

    out = tmp_path_factory.mktemp("sample7")
    generate(out, seed=7, today=TODAY)
    settings = Settings(_env_file=None, graph_url="falkordb://embedded", data_dir=falkordb_server.data_dir,
                        graph_name=f"sample_{uuid.uuid4().hex[:8]}", falkordb_appendfsync="everysec")
    store = FalkorDBStore.from_settings(settings)
    ensure_schema(store)
    report = loader.import_path(store, out, settings=settings, progress=False)
    assert report.ok and report.written, report.errors[:3]
    products = store.run(PRODUCTS)
    for p in products:
        p["attrs"] = json.loads(p["attributes"] or "{}")
    yield settings, store, products
    store.redis.execute_command("GRAPH.DELETE", settings.graph_name)
    store.close()


@pytest.fixture(scope="module")
def linker(sample, encoder):
    settings, store, _ = sample
    return bootstrap.build(settings, store=store, encoder_model=encoder).linker


def _engine(sample, encoder, linker, understander, *, prefix=None, new_id=None) -> Engine:
    settings, store, _ = sample
    sessions = SessionStore(lambda: store.redis, ttl_s=600, prefix=prefix or f"smp:{uuid.uuid4().hex}:",
                            new_id=new_id)
    return bootstrap.build(settings, store=store, sessions=sessions, understander=understander, linker=linker,
                           encoder_model=encoder, verbalizer=TemplateVerbalizer(), examples=None,
                           clock=lambda: NOW).engine.get()


@pytest.fixture
def chat(sample, encoder, linker):
    def factory(customer_id=None, **kw) -> Chat:
        nlu = ScriptedUnderstander()
        return Chat(_engine(sample, encoder, linker, nlu, **kw), nlu, customer_id)

    return factory


class Oracle:
    """Understands each message of the evaluation set as the set expects (a fake of the model)."""

    threshold = 0.5  # the out-of-scope threshold the engine reads from its understander

    def __init__(self, store, dialogues) -> None:
        self.intents: dict[str, str] = {}
        binder = evaluate.Binder(store)
        for item in dialogues:
            bound = binder.bind(item.get("bind", {}))
            for turn in item["turns"]:
                self.intents[evaluate.fill(turn["say"], bound)] = turn["expect"]["intent"]

    def understand(self, text: str) -> Understanding:
        return Understanding(text=text, intent=IntentScore(name=self.intents[text], confidence=0.9))


def test_shipped_evaluation_set_passes_on_the_sample_store(sample, encoder, linker):
    _, store, _ = sample
    dialogues = evaluate.load_dialogues(evaluate.DEFAULT_DATA)
    report = evaluate.run(_engine(sample, encoder, linker, Oracle(store, dialogues)), dialogues, progress=False)
    assert [(t.dialogue, t.turn, t.problems) for t in report.failures()] == []
    assert report.figures["answer_correctness"] == 1.0 and report.figures["hallucinations"] == 0


def _first(products, **where):
    return next(p for p in products if all(p.get(k) == v for k, v in where.items()))


def test_policy_specificity_on_the_generators_overrides(sample, chat):
    _, _, products = sample
    cases = [
        (_first(products, name="Nordic Audio Aurora X2 Wireless Headphones, Black"), "POL-RETURN-AURORA-LAUNCH"),
        (_first(products, name="Nordic Audio Aurora X2 Wireless Headphones, Silver"), "POL-RETURN-HYGIENE"),
        (next(p for p in products if p["attrs"].get("model_line") == "Gale 3"), "POL-RETURN-RUNNING"),
        (_first(products, brand="Oakhaven"), "POL-RETURN-OAKHAVEN"),
        (_first(products, category="Phone Cases"), "POL-RETURN-STD"),
    ]
    c = chat()
    for product, policy in cases:
        r = c.say(f"can I return the {product['name']}?", "check_refund_policy",
                  ("the " + product["name"], "PRODUCT", product["sku"]))
        got = next(f.data for f in r.facts if f.kind == "policy" and f.data["type"] == "return")
        assert got["policy_id"] == policy, product["name"]
        assert f"{got['days']} days" in r.answer


def test_compatible_accessories_exist_in_the_graph(sample, chat):
    _, _, products = sample
    fits: dict[str, list[str]] = {}
    for p in products:
        if p["attrs"].get("compatible_with") and p["status"] == "active":
            fits.setdefault(p["attrs"]["compatible_with"], []).append(p["sku"])
    device = next(p for p in products if f"{p['brand']} {p['attrs'].get('model_line')}" in fits
                  and not p["attrs"].get("compatible_with"))
    c = chat()
    r = c.say(f"which accessories fit the {device['name']}?", "product_recommend",
              (device["name"], "PRODUCT", device["sku"]))
    recs = [f.data["sku"] for f in r.facts if f.kind == "recommendation"]
    assert recs and set(recs) <= set(fits[f"{device['brand']} {device['attrs']['model_line']}"])


def test_personal_and_also_bought_recommendations(sample, chat):
    _, store, _ = sample
    o = store.run(Query("test.sample.customer", """
        MATCH (c:Customer)-[:PLACED]->(o:Order) WITH c, count(o) AS n ORDER BY n DESC, c.customer_id LIMIT 1
        RETURN c.customer_id AS customer_id"""))[0]
    mine = set(store.run(BOUGHT, {"customer_id": o["customer_id"]})[0]["skus"])
    r = chat(o["customer_id"]).say("what would you recommend for me?", "product_recommend")
    recs = [f.data["sku"] for f in r.facts if f.kind == "recommendation"]
    assert recs and not set(recs) & mine
    co = store.run(Query("test.sample.co", """
        MATCH (p:Product)<-[:CONTAINS]-(o:Order)-[:CONTAINS]->(x:Product) WHERE x.sku <> p.sku
        WITH p, count(DISTINCT o) AS n ORDER BY n DESC, p.sku LIMIT 1 RETURN p.sku AS sku, p.name AS name"""))[0]
    r = chat().say(f"what do people also buy with the {co['name']}?", "product_recommend",
                   (co["name"], "PRODUCT", co["sku"]))
    assert r.query_name == "products.also_bought" and [f for f in r.facts if f.kind == "recommendation"]


def test_another_customers_order_equals_a_missing_one_on_the_sample_store(sample, chat):
    _, store, _ = sample
    binder = evaluate.Binder(store)
    order = binder.pick("order:shipped", {})
    other = binder.pick("other_customer:o", {"o": order})["customer_id"]
    ids_a, ids_b = itertools.count(), itertools.count()
    a = chat(other, prefix="smp:a:", new_id=lambda: f"s{next(ids_a)}")
    b = chat(other, prefix="smp:b:", new_id=lambda: f"s{next(ids_b)}")
    ra = a.say(f"where is my order {order['order_id']}?", "track_order", (order["order_id"], "ORDER_ID"))
    missing = "9" * len(order["order_id"])  # same length: the entity offsets compare too
    rb = b.say(f"where is my order {missing}?", "track_order", (missing, "ORDER_ID"))
    assert ra.status == "not_found"
    assert ra.model_dump_json().replace(order["order_id"], "#") == rb.model_dump_json().replace(missing, "#")
    mine = chat(order["customer_id"]).say(f"where is my order {order['order_id']}?", "track_order",
                                          (order["order_id"], "ORDER_ID"))
    assert mine.status == "ok" and order["tracking_number"] in mine.answer


def test_a_kind_shared_by_many_products_is_asked_back_and_an_unlisted_one_can_be_named(sample, chat):
    """"the charger" in a shop with a dozen chargers: the question lists some and says there are more;
    naming one the list left out ("the one for the <device>") answers the question asked, for that
    charger only (its colours share a price, so the answer names both)."""
    _, _, products = sample
    chargers = [p for p in products if p["name"].split(" for ")[0].endswith("Charger") and p["status"] == "active"]
    c = chat()
    r = c.say("how much is the charger?", "product_price")
    listed = [f.data["node_id"] for f in r.facts if f.kind == "candidate"]
    assert r.status == "clarify" and len(listed) == 6 and "more" in r.answer.lower(), r.answer
    assert {p["sku"] for p in chargers} >= set(listed)
    left_out = next(p for p in chargers if p["sku"] not in listed and
                    not any(q["sku"] in listed for q in chargers if q["name"].split(",")[0] == p["name"].split(",")[0]))
    device = left_out["name"].split(" for ")[1].split(",")[0]
    same_line = sorted(q["sku"] for q in chargers if q["name"].split(",")[0] == left_out["name"].split(",")[0])
    # the model reads the answer as a request of its own; it still answers the question asked
    r = c.say(f"the one for the {device}", "product_recommend")
    assert r.intent.name == "product_price" and r.status in ("ok", "clarify"), r.answer
    named = {f.data.get("sku") or f.data.get("node_id") for f in r.facts if f.kind in ("product", "candidate")}
    assert named and named <= set(same_line), (named, same_line, r.answer)
