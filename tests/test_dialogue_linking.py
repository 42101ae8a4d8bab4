"""The dialogue with the real entity linker (nlu/linking) on a real graph: the understanding is
still scripted (the model's spans, without nodes), linking is real. Ambiguous lines lead to a
clarifying question, typed model numbers and order ids are normalised, another customer's order
stays unlinked, and a product added after the index was built is found."""

from __future__ import annotations

import pytest

from common import bootstrap
from kg.queries import Query
from nlu.linking import LinkerConfig
from qa.state import SessionStore
from qa.templates import TemplateVerbalizer
from tests import test_dialogue_support as support
from tests.test_dialogue_support import NOW, Chat, ScriptedUnderstander

# Fixtures shared by the dialogue test modules.
shop, encoder = support.shop, support.encoder

ADD_PRODUCT = Query("test.add_product", """
    MATCH (b:Brand {name: 'Sonara'}), (c:Category {name: 'Headphones'})
    CREATE (p:Product {sku: 'SN-HP-000099', name: 'Sonara Zephyr 9 Wireless Headphones, Teal', price: 199.0,
                       currency: 'USD', stock: 8, status: 'active', rating: 4.0,
                       attributes: '{"model_line": "Zephyr 9", "colour": "Teal"}', attr_values: ['zephyr 9', 'teal']})
    CREATE (p)-[:MADE_BY]->(b) CREATE (p)-[:IN_CATEGORY]->(c)
    WITH p MATCH (m:Meta {key: 'catalog'}) SET m.version = m.version + 1""", read_only=False)


@pytest.fixture
def linked(shop, encoder):
    settings, store = shop
    nlu = ScriptedUnderstander()
    sessions = SessionStore(lambda: store.redis, ttl_s=600, prefix=f"lnk:{settings.graph_name}:")
    app = bootstrap.build(settings, store=store, sessions=sessions, understander=nlu,
                          linker_config=LinkerConfig(refresh_interval_s=0.0), encoder_model=encoder,
                          verbalizer=TemplateVerbalizer(), examples=None, clock=lambda: NOW)
    return app.engine.get(), nlu, store


def test_ambiguous_line_clarified_then_resolved(linked):
    engine, nlu, _ = linked
    chat = Chat(engine, nlu)
    r = chat.say("how much is the aurora x2?", "product_price", ("aurora x2", "PRODUCT"))
    assert r.status == "clarify" and r.intent.name == "product_price"
    assert {c.data["node_id"] for c in r.facts} == {"NA-HP-000001", "NA-HP-000002", "NA-HP-000003"}
    r = chat.say("the silver one", "product_price", ("silver", "ATTRIBUTE"), confidence=0.5)
    assert r.status == "ok" and "Silver" in r.answer and "249.99 USD" in r.answer


def test_model_numbers_order_ids_and_ownership(linked):
    engine, nlu, _ = linked
    chat = Chat(engine, nlu, "C00001")
    r = chat.say("is the na700x in stock", "product_availability", ("na700x", "PRODUCT"))
    assert r.status == "ok" and r.entities[0].node_id == "NA-HP-000004"
    r = chat.say("where is order #10002", "track_order", ("#10002", "ORDER_ID"))
    assert r.entities[0].node_id == "10002" and "SwiftPost" in r.answer
    r = chat.say("where is order #10005", "track_order", ("#10005", "ORDER_ID"))  # C00002's
    assert r.status == "not_found" and r.entities[0].node_id is None and r.entities[0].score is None


def test_product_added_after_the_index_was_built(linked):
    engine, nlu, store = linked
    chat = Chat(engine, nlu)
    r = chat.say("how much is the halo 2", "product_price", ("halo 2", "PRODUCT"))  # builds the index
    assert r.status == "ok" and r.entities[0].node_id == "SN-HP-000011" and "239.00 USD" in r.answer
    r = chat.say("how much is the Zorblax 9000?", "product_price", ("Zorblax 9000", "PRODUCT"))
    assert r.status == "not_found" and "Zorblax 9000" in r.answer and r.facts == []
    store.run(ADD_PRODUCT)
    r = chat.say("and the zephyr 9?", "product_price", ("zephyr 9", "PRODUCT"))
    assert r.status == "ok" and r.entities[0].node_id == "SN-HP-000099" and "199.00 USD" in r.answer
