"""Questions about any field of a product, follow-ups that carry them, and replies that read well,
on a small hardware-and-groceries shop imported through the catalog loader (kg/loader.py) into a
real embedded FalkorDB, answered by the real understanding model, entity linker and engine.

The shop's products have columns the sample store lacks (voltage, origin, pack_size,
shelf_life_days, thread_pitch): they arrive as attributes, and questions about them are answered
without any code knowing their names. Its prices are in EUR while the store currency setting is
left at its USD default.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from common.settings import Settings
from kg.backends.falkordb import FalkorDBStore
from kg.loader import import_path
from kg.schema import ensure_schema
from qa.facts import ActionFact, OrderOptionFact, ProductFact, SupplierFact
from qa.fields import FieldResolver, humanise
from qa.prompts import FieldQuestion, WhichOrder
from qa.templates import render, suggestions
from qa.types import Retrieval
from tests import test_dialogue_support as support

# Shared fixtures: the sentence encoder, and (for the scripted tests) the small shop of
# tests/test_dialogue_support.py with a fake understander that says what the model understood.
encoder, shop, engine_factory, chat_factory = support.encoder, support.shop, support.engine_factory, support.chat_factory

NOW = datetime(2026, 5, 4, 12, 0, 0, tzinfo=UTC)

DRILL, CABLE, SCREWS, OATS, BEANS, DECAF, EARBUDS = ("HW-0001", "HW-0002", "HW-0003", "GR-0001", "GR-0002",
                                                     "GR-0003", "HW-0004")
PORRIDGE_S, PORRIDGE_L = "GR-0004", "GR-0005"

FILES = {
    "categories.csv": "name,parent\nTools,\nElectrical,Tools\nFixings,Tools\nPantry,\nCoffee,Pantry\n",
    "brands.csv": "name,country\nAmpere Works,Germany\nKestrel Fixings,Taiwan\nHill Farm,Ireland\nRoastwell,Italy\n",
    "suppliers.csv": ("supplier_id,name,country,phone\n"
                      "H01,Northgate Trade Supplies,United Kingdom,+44 20 5550 0101\n"
                      "G01,Valle Verde Imports,Italy,+39 06 5550 0199\n"),
    "products.csv": (
        "sku,name,brand,category,supplier_id,price,currency,stock,description,warranty_months,rating,status,"
        "voltage,origin,pack_size,shelf_life_days,thread_pitch,battery_mah,battery_life_hours\n"
        f"{DRILL},Ampere Cordless Drill,Ampere Works,Electrical,H01,89.00,EUR,14,A compact drill.,24,4.5,active,"
        "18 V,Germany,,,,2000,\n"
        f"{CABLE},Ampere Extension Cable,Ampere Works,Electrical,H01,19.90,EUR,30,Ten metres of cable.,,4.1,active,"
        "230 V,Poland,1,,,,\n"
        f"{SCREWS},Kestrel Wood Screws,Kestrel Fixings,Fixings,H01,6.40,EUR,0,Zinc-plated wood screws.,,4.0,active,"
        ",Taiwan,200,,1.8 mm,,\n"
        f"{OATS},Hill Farm Rolled Oats,Hill Farm,Pantry,G01,3.20,EUR,52,Jumbo rolled oats.,,4.6,active,"
        ",Ireland,6,365,,,\n"
        f"{BEANS},Roastwell Espresso Beans,Roastwell,Coffee,G01,12.50,EUR,18,A dark roast.,,4.8,active,"
        ",Brazil,1,270,,,\n"
        f"{DECAF},Roastwell Decaf Ground Coffee,Roastwell,Coffee,G01,9.80,EUR,7,Swiss water decaf.,,3.9,active,"
        ",,2,,,,\n"
        f"{EARBUDS},Ampere Wireless Earbuds,Ampere Works,Electrical,H01,49.00,EUR,0,True wireless.,12,4.2,active,"
        ",China,,,,,6\n"
        f"{PORRIDGE_S},Hill Farm Porridge Oats (500 g),Hill Farm,Pantry,G01,2.10,EUR,40,Fine porridge oats.,,4.4,"
        "active,,Ireland,12,300,,,\n"
        f"{PORRIDGE_L},Hill Farm Porridge Oats (1 kg),Hill Farm,Pantry,G01,3.60,EUR,25,Fine porridge oats.,,4.4,"
        "active,,Ireland,6,300,,,\n"
    ),
    "policies.jsonl": "\n".join(json.dumps(p) for p in (
        {"policy_id": "RET", "type": "return", "title": "30-day returns", "text": "Return within 30 days.",
         "days": 30, "applies_to": ""},
        {"policy_id": "CAN", "type": "cancellation", "title": "Cancelling an order", "fee": 4.5,
         "text": "Cancelling after dispatch costs a handling fee.", "applies_to": ""},
    )) + "\n",
}


understander = support.understander  # the committed model


@pytest.fixture
def hardware(settings: Settings, tmp_path: Path):
    """The small shop, imported through the catalog loader into a fresh graph."""
    data = tmp_path / "shop"
    data.mkdir()
    for name, text in FILES.items():
        (data / name).write_text(text, encoding="utf-8")
    store = FalkorDBStore.from_settings(settings)
    ensure_schema(store)
    report = import_path(store, data, settings=settings, progress=False)
    assert not report.errors, report.errors
    yield settings, store
    try:
        store.redis.execute_command("GRAPH.DELETE", settings.graph_name)
    except Exception:  # noqa: BLE001 - best effort clean-up
        pass
    store.close()


@pytest.fixture
def engine(hardware, encoder, understander):
    from common import bootstrap
    from qa.state import SessionStore
    from qa.templates import TemplateVerbalizer

    settings, store = hardware
    assert settings.store_currency == "USD"  # the setting is left at its default; the catalog is in EUR
    return bootstrap.build(settings, store=store, encoder_model=encoder, understander=understander,
                           sessions=SessionStore(lambda: store.redis, ttl_s=600, prefix=f"fld:{settings.graph_name}:"),
                           verbalizer=TemplateVerbalizer(), examples=None, clock=lambda: NOW).engine.get()


class Talk:
    def __init__(self, engine) -> None:
        self.engine, self.session = engine, None

    def __call__(self, text: str):
        r = self.engine.handle(self.session, text, None)
        self.session = r.session_id
        return r


# -- which field: the shop's own columns, the schema's fields, properties it lacks -----------------
def test_the_shops_own_columns_are_fields_without_code_knowing_them(hardware, encoder):
    _, store = hardware
    fields = FieldResolver(store, lambda: encoder)
    keys = fields.catalog().keys
    assert {"voltage", "origin", "pack_size", "shelf_life_days", "thread_pitch"} <= set(keys)
    assert humanise("shelf_life_days") == "shelf life" and humanise("packSize") == "pack size"

    def field(text: str) -> tuple[str, str] | None:
        found = fields.detect(text)
        return (found.key, found.kind) if found is not None else None

    assert field("what voltage does the cordless drill take?") == ("voltage", "attribute")
    assert field("what's the thread pitch of the wood screws?") == ("thread_pitch", "attribute")  # by its name
    assert field("how many come in a pack of the oats?") == ("pack_size", "attribute")  # by a phrasing
    assert field("where are the espresso beans made?") == ("origin", "attribute")
    assert field("which country do the oats come from?") == ("origin", "attribute")
    assert field("how long do the oats keep?") == ("shelf_life_days", "attribute")
    assert field("who supplies the extension cable?") == ("supplier", "supplier")
    assert field("which distributor do you get the oats from?") == ("supplier", "supplier")
    assert field("what category are the espresso beans in?") == ("category", "product")
    assert field("who makes the drill?") == ("brand", "product")
    assert field("how much is the drill?") == ("price", "product")
    # a property the shop records for no product: recognised, so it can be answered "I don't know"
    assert field("how heavy is the drill?") == ("weight", "unknown")
    assert field("what are the ingredients of the oats?") == ("ingredients", "unknown")
    # generic or other questions are no field question
    assert field("tell me about the drill") is None
    assert field("can I return the drill?") is None
    assert field("what is the meaning of life") is None
    # a value the shop holds under one key, asked yes/no: that key, and the value
    found = fields.detect("is the decaf from Brazil?")
    assert found is not None and found.key == "origin" and found.value == "brazil" and found.yes_no
    # a misspelt field word
    assert field("what voltge is the cable?") == ("voltage", "attribute")


# -- answers state that field, or that it is not known ---------------------------------------------
def test_a_field_question_states_that_field_and_nothing_else(engine):
    talk = Talk(engine)
    r = talk("who supplies the Ampere Extension Cable?")
    assert r.intent.name == "product_details" and r.status == "ok" and r.query_name == "products.suppliers"
    assert "Northgate Trade Supplies" in r.answer and "19.90" not in r.answer
    assert [f.kind for f in r.facts] == ["product", "supplier"]

    r = Talk(engine)("what voltage does the Ampere Cordless Drill take?")
    assert r.intent.name == "product_details" and "18 V" in r.answer and "89.00" not in r.answer
    assert r.facts[0].data == {"sku": DRILL, "name": "Ampere Cordless Drill", "attributes": {"voltage": "18 V"}}

    r = Talk(engine)("how many are in a pack of Hill Farm Rolled Oats?")
    assert "6" in r.answer and "pack size" in r.answer and "3.20" not in r.answer

    r = Talk(engine)("what's the thread pitch of the Kestrel Wood Screws?")
    assert "1.8 mm" in r.answer

    r = Talk(engine)("who supplies Roastwell Espresso Beans and what is their phone number?")
    assert "Valle Verde Imports" in r.answer and "+39 06 5550 0199" in r.answer


def test_a_field_the_product_lacks_is_not_known_never_another_field(engine):
    # the shop records an origin, but not for this product
    r = Talk(engine)("where is the Roastwell Decaf Ground Coffee made?")
    assert r.status == "ok" and "I don't have that information for Roastwell Decaf Ground Coffee" in r.answer
    assert "9.80" not in r.answer and "Swiss water" not in r.answer  # not the price, not the product card
    # a property the shop records for no product at all
    r = Talk(engine)("how heavy is the Ampere Cordless Drill?")
    assert "I don't have that information for Ampere Cordless Drill" in r.answer
    assert "89.00" not in r.answer and "18 V" not in r.answer


def test_keys_asked_for_in_the_same_words_answer_for_the_product_that_has_one(engine):
    # "battery_mah" and "battery_life_hours" are both "the battery": each product answers with its own
    r = Talk(engine)("how long does the battery last on the Ampere Wireless Earbuds?")
    assert "6 h" in r.answer and "battery life" in r.answer
    r = Talk(engine)("what's the battery of the Ampere Cordless Drill?")
    assert "2000 mAh" in r.answer


def test_yes_no_about_a_value(engine):
    r = Talk(engine)("is the Roastwell Espresso Beans from Brazil?")
    assert r.answer.startswith("Yes") and "Brazil" in r.answer
    r = Talk(engine)("is the Hill Farm Rolled Oats from Brazil?")
    assert r.answer.startswith("No") and "Ireland" in r.answer


# -- context ------------------------------------------------------------------------------------------
def test_the_field_carries_to_a_new_product_and_it_reaches_any_field(engine):
    talk = Talk(engine)
    r = talk("where is the Hill Farm Rolled Oats made?")
    assert "Ireland" in r.answer
    r = talk("same question for the Roastwell Espresso Beans")
    assert r.intent.name == "product_details" and "Brazil" in r.answer and "Ireland" not in r.answer
    assert [e.node_id for e in r.entities if e.type == "PRODUCT"] == [BEANS]
    r = talk("and for the Kestrel Wood Screws?")
    assert "Taiwan" in r.answer
    r = talk("who supplies it?")
    assert "Northgate Trade Supplies" in r.answer
    assert [e.node_id for e in r.entities if e.type == "PRODUCT" and e.source == "context"] == [SCREWS]
    r = talk("going back to the Hill Farm Rolled Oats, how much are they?")
    assert r.intent.name == "product_price" and "3.20 EUR" in r.answer


def test_which_of_the_two_compares_the_products_of_the_conversation(engine):
    talk = Talk(engine)
    assert "89.00 EUR" in talk("how much is the Ampere Cordless Drill?").answer
    assert "19.90 EUR" in talk("what about the Ampere Extension Cable?").answer
    r = talk("which of the two is cheaper?")
    assert r.intent.name == "product_compare" and r.status == "ok"
    assert {f.data["sku"] for f in r.facts if f.kind == "product"} == {DRILL, CABLE}
    assert r.answer.startswith("Ampere Extension Cable is 69.10 EUR cheaper than Ampere Cordless Drill.")


def test_variants_that_agree_are_answered_at_once_and_those_that_differ_are_asked(engine):
    r = Talk(engine)("where are the Hill Farm Porridge Oats made?")
    assert r.status == "ok" and "Ireland" in r.answer
    assert "Hill Farm Porridge Oats (500 g)" in r.answer and "Hill Farm Porridge Oats (1 kg)" in r.answer
    assert "Hill Farm Rolled Oats" not in r.answer  # another product whose name is not the one asked
    talk = Talk(engine)
    r = talk("what is the pack size of the Hill Farm Porridge Oats?")
    assert r.status == "clarify" and "500 g" in r.answer and "1 kg" in r.answer
    r = talk("the 1 kg one")
    assert r.status == "ok" and r.intent.name == "product_details"
    assert "The pack size of Hill Farm Porridge Oats (1 kg) is 6." == r.answer
    # a field asked while "which one?" waits is asked of the candidates: alike, answered at once
    talk = Talk(engine)
    assert talk("how much are the Hill Farm Porridge Oats?").status == "clarify"
    r = talk("who supplies them?")
    assert r.status == "ok" and "Valle Verde Imports" in r.answer


# -- the same, with a scripted understanding (what the model got wrong is stated, not hoped for) -------
def test_options_of_a_model_line_and_follow_ups_the_model_misreads(chat_factory):
    chat = chat_factory()
    r = chat.say("what colours does the Aurora X2 in black come in?", "product_details",
                 ("Aurora X2 in black", "PRODUCT", "NA-HP-000001"))
    assert r.status == "ok" and r.query_name == "products.line_variants"
    assert r.answer == "Aurora X2 comes in Black, Silver and Midnight Blue."
    # "tell me about it" heard as an order question: the product the conversation is about
    r = chat.say("tell me about it", "order_details", confidence=0.8)
    assert r.intent.name == "product_details" and r.status == "ok" and "249.99 USD" in r.answer
    # "what about X?" heard as a goodbye: the previous question, for X
    r = chat.say("how long does the battery last?", "out_of_scope", confidence=0.9)
    assert r.intent.name == "product_details" and "30 h" in r.answer
    r = chat.say("what about the Bose QuietComfort 45 in white?", "goodbye", ("Bose QuietComfort 45 in white",
                                                                              "PRODUCT", "BO-HP-000006"))
    assert r.intent.name == "product_details" and "24 h" in r.answer and "battery life" in r.answer
    # "same question for X" heard as a yes
    r = chat.say("same for the Sonara Tide 3 please", "affirm", ("Sonara Tide 3", "PRODUCT", "SN-HP-000007"))
    assert r.intent.name == "product_details" and "30 h" in r.answer and "Sonara" in r.answer


# -- wording ------------------------------------------------------------------------------------------
def test_agreement_and_currency_from_the_catalog(engine):
    r = Talk(engine)("is the Ampere Wireless Earbuds in stock?")
    assert r.intent.name == "product_availability" and "Earbuds are" in r.answer and "Earbuds is" not in r.answer
    # the policy's fee has no currency of its own: the catalog's (EUR), not the unset default (USD)
    r = Talk(engine)("is there a fee if I cancel an order?")
    assert r.intent.name == "check_cancellation_fee" and "4.50 EUR" in r.answer and "USD" not in r.answer


def _retrieval(**kw) -> Retrieval:
    return Retrieval(variant="fixed", **kw)


def test_replies_have_no_doubled_words_and_suggestions_fit():
    # "placed, placed 6 December" when the order's status is "placed"
    r = _retrieval(intent="track_order", status="clarify", prompt=WhichOrder(options=["1", "2"]), facts=[
        OrderOptionFact(order_id="1", status="placed", placed_at="2026-12-06"),
        OrderOptionFact(order_id="2", status="shipped", placed_at="2026-12-01")])
    text = render(r)
    assert "order 1, placed 6 December 2026" in text and "placed, placed" not in text
    assert "order 2, shipped, placed 1 December 2026" in text
    # a title that brings its own article is not given a second one
    r = _retrieval(intent="product_availability", status="ok", facts=[
        ProductFact(sku="B1", name="The Hobbit", stock=0, in_stock=False, status="active")])
    assert "the The" not in render(r) and "The Hobbit is" in render(r)
    # after a cancellation is done, not "What does cancelling cost?"
    done = _retrieval(intent="cancel_order", status="action_done",
                      facts=[ActionFact(action="cancel_order", order_id="1", done=True, request_id="R1")])
    assert "What does cancelling cost?" not in suggestions(done)
    # a field answer about a book suggests its essentials, not accessories that fit it
    field = _retrieval(intent="product_details", status="ok", prompt=FieldQuestion(
        field="author", label="author", kind="attribute"), facts=[
        ProductFact(sku="B1", name="Dune", attributes={"author": "Frank Herbert"})])
    assert render(field) == "The author of Dune is Frank Herbert."
    assert "Which accessories fit it?" not in suggestions(field)
    supplied = _retrieval(intent="product_details", status="ok", prompt=FieldQuestion(
        field="supplier", label="supplier", kind="supplier"), facts=[
        ProductFact(sku="E1", name="Wireless Earbuds"), SupplierFact(name="Northgate", country="UK")])
    assert render(supplied) == "Wireless Earbuds are supplied by Northgate (UK)."


def test_the_shops_attributes_are_scanned_once_per_catalog_change_not_by_every_worker(hardware):
    """The keys and values a scan of every product's attributes found are kept in the graph with the catalog
    stamp they belong to: a second worker reads them instead of scanning; a stamp that does not match is
    scanned again (and kept)."""
    from test_linking import _Reads

    from kg.queries import get

    _, store = hardware
    first = FieldResolver(store).catalog()
    reads = _Reads(store)
    second = FieldResolver(reads).catalog()
    assert "products.attribute_page" not in reads.names
    assert (second.keys, second.values) == (first.keys, first.values)
    store.run(get("products.save_field_summary"), {"stamp": "another catalog", "keys": "{}", "values": "[]"})
    reads.names.clear()
    third = FieldResolver(reads).catalog()
    assert "products.attribute_page" in reads.names and (third.keys, third.values) == (first.keys, first.values)
    reads.names.clear()
    assert FieldResolver(reads).catalog().keys == first.keys and "products.attribute_page" not in reads.names
