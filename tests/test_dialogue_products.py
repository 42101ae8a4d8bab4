"""Product questions through the whole dialogue engine on a real graph: price, stock, details,
coreference and ellipsis, clarification of an ambiguous mention, comparisons, recommendations
that exist in the graph, warranties and promotions."""

from __future__ import annotations

from tests import test_dialogue_support as support
from tests.test_dialogue_support import AURORA_CANDIDATES, ent

# Fixtures shared by the dialogue test modules.
shop, encoder, engine_factory, chat_factory = support.shop, support.encoder, support.engine_factory, support.chat_factory

AURORA_BLACK, AURORA_SILVER, AURORA_BLUE = "NA-HP-000001", "NA-HP-000002", "NA-HP-000003"
NA700X, BOSE_BLACK, TIDE, CASE, HALO = "NA-HP-000004", "BO-HP-000005", "SN-HP-000007", "SH-HC-000008", "SN-HP-000011"


def _context(result, type_="PRODUCT"):
    return [e for e in result.entities if e.type == type_ and e.source == "context"]


def test_pronoun_and_ellipsis_carry_the_product_and_the_intent(chat_factory):
    chat = chat_factory()
    r1 = chat.say("how much are the Aurora X2 in black?", "product_price", ("Aurora X2", "PRODUCT", AURORA_BLACK),
                  ("black", "ATTRIBUTE"))
    assert r1.status == "ok" and "249.99 USD" in r1.answer and r1.query_name == "products.by_skus"

    r2 = chat.say("is it in stock?", "product_availability")
    assert r2.intent.name == "product_availability"
    [ctx] = _context(r2)
    assert ctx.node_id == AURORA_BLACK and ctx.start is None and ctx.end is None
    assert "12" in r2.answer and "in stock" in r2.answer

    # "and in silver?": the model is unsure; the previous intent and product line are kept and the
    # attribute picks the silver variant, which is out of stock.
    r3 = chat.say("and in silver?", "product_price", ("silver", "ATTRIBUTE"), confidence=0.41)
    assert r3.intent.name == "product_availability"
    assert [e.node_id for e in r3.entities if e.type == "PRODUCT"] == [AURORA_SILVER]
    assert "out of stock" in r3.answer and r3.facts[0].data["stock"] == 0

    # "and how much is it?" carries its own intent word: the model's intent wins, the product stays.
    r4 = chat.say("and how much is it?", "product_price")
    assert r4.intent.name == "product_price" and "249.99 USD" in r4.answer
    assert _context(r4)[0].node_id == AURORA_SILVER


def test_ambiguous_mention_gets_a_clarifying_question_that_keeps_the_intent(chat_factory):
    chat = chat_factory()
    r1 = chat.say("how much is the Aurora X2?", "product_price",
                  ent("how much is the Aurora X2?", "Aurora X2", "PRODUCT", candidates=AURORA_CANDIDATES))
    assert r1.status == "clarify" and r1.intent.name == "product_price"
    for _, _, name in AURORA_CANDIDATES:
        assert name.split(", ")[1] in r1.answer  # every colour is offered
    assert [e.node_id for e in r1.entities if e.type == "PRODUCT"] == [None]
    assert r1.suggestions == []

    r2 = chat.say("the second one", "out_of_scope", confidence=0.3)
    assert r2.status == "ok" and r2.intent.name == "product_price"
    assert _context(r2)[0].node_id == AURORA_SILVER and "249.99 USD" in r2.answer

    # Asked again later, the variant just discussed settles the same ambiguous mention silently.
    r3 = chat.say("is the Aurora X2 available?", "product_availability",
                  ent("is the Aurora X2 available?", "Aurora X2", "PRODUCT", candidates=AURORA_CANDIDATES))
    assert r3.status == "ok" and r3.entities[0].node_id == AURORA_SILVER


def test_clarification_answered_by_a_value_or_a_comparative(chat_factory):
    chat = chat_factory()
    chat.say("is the Aurora X2 in stock", "product_availability",
             ent("is the Aurora X2 in stock", "Aurora X2", "PRODUCT", candidates=AURORA_CANDIDATES))
    r = chat.say("the midnight blue one", "product_availability", ("midnight blue", "ATTRIBUTE"), confidence=0.7)
    assert r.status == "ok" and _context(r)[0].node_id == AURORA_BLUE and "only 3" in r.answer

    chat2 = chat_factory()
    chat2.say("what's the price of the Aurora X2", "product_price",
              ent("what's the price of the Aurora X2", "Aurora X2", "PRODUCT", candidates=AURORA_CANDIDATES))
    r = chat2.say("the most expensive one", "product_price", confidence=0.6)
    assert _context(r)[0].node_id == AURORA_BLUE and "259.99 USD" in r.answer


def test_an_attribute_in_the_same_message_settles_an_ambiguous_mention(chat_factory):
    chat = chat_factory()
    msg = "how much is the black Aurora X2"
    r = chat.say(msg, "product_price", ent(msg, "Aurora X2", "PRODUCT", candidates=AURORA_CANDIDATES),
                 ("black", "ATTRIBUTE"))
    assert r.status == "ok" and r.entities[0].node_id == AURORA_BLACK


def test_what_about_another_brand_keeps_the_intent_and_swaps_the_entity(chat_factory):
    chat = chat_factory()
    chat.say("how much is the NA-700X?", "product_price", ("NA-700X", "PRODUCT", NA700X))
    r = chat.say("what about the Bose ones?", "product_recommend", ("Bose", "BRAND", "Bose"), confidence=0.55)
    assert r.intent.name == "product_price" and r.status == "ok"
    assert [(e.type, e.node_id, e.source) for e in r.entities] == [("BRAND", "Bose", "message"),
                                                                  ("CATEGORY", "Headphones", "context")]
    assert "329.00 USD" in r.answer and r.query_name == "products.list_filtered"
    names = {f.data.get("sku") for f in r.facts if f.kind == "product"}
    assert names == {BOSE_BLACK, "BO-HP-000006"}
    # "the first one" now points into that list.
    r2 = chat.say("is the first one in stock?", "product_availability")
    assert _context(r2)[0].node_id in names


def test_compare_then_the_cheaper_one(chat_factory):
    chat = chat_factory()
    msg = "compare the NA-700X with the Aurora X2 black"
    r = chat.say(msg, "product_compare", ("NA-700X", "PRODUCT", NA700X), ("Aurora X2 black", "PRODUCT", AURORA_BLACK))
    assert r.status == "ok" and "100.00 USD cheaper" in r.answer
    comparison = next(f for f in r.facts if f.kind == "comparison").data
    assert comparison["cheaper"] == AURORA_BLACK and comparison["better_rated"] == NA700X
    r2 = chat.say("what's the warranty on the cheaper one?", "product_warranty")
    assert _context(r2)[0].node_id == AURORA_BLACK
    # no own warranty: the category policy found through Headphones -> Electronics
    assert "24 months" in r2.answer and r2.facts[0].data["policy_id"] == "POL-WARRANTY-ELEC"


def test_compare_with_one_product_asks_for_the_other_and_uses_the_answer(chat_factory):
    chat = chat_factory()
    chat.say("tell me about the Sonara Tide 3", "product_details", ("Sonara Tide 3", "PRODUCT", TIDE))
    r = chat.say("how does it compare?", "product_compare")
    # The product in context is one side; the bot asks for the other.
    assert r.status == "ok" or r.status == "clarify"
    if r.status == "clarify":
        r = chat.say("the Halo 2", "product_compare", ("Halo 2", "PRODUCT", HALO), confidence=0.4)
    assert r.status == "ok" and {f.data["sku"] for f in r.facts if f.kind == "product"} >= {TIDE, HALO}


def test_recommendations_exist_in_the_graph(chat_factory):
    chat = chat_factory()
    similar = chat.say("recommend something similar to the Aurora X2 black", "product_recommend",
                       ("Aurora X2 black", "PRODUCT", AURORA_BLACK))
    recs = [f.data["sku"] for f in similar.facts if f.kind == "recommendation"]
    assert recs and recs[0] == HALO  # same category, shares "black" and "30", inside the price band
    assert not {AURORA_SILVER, AURORA_BLUE} & set(recs)  # variants of the same line are not "similar"

    acc = chat.say("which accessories fit the Aurora X2 black?", "product_recommend",
                   ("Aurora X2 black", "PRODUCT", AURORA_BLACK))
    assert [f.data["sku"] for f in acc.facts if f.kind == "recommendation"] == [CASE]
    assert acc.query_name == "products.compatible" and "Hard Shell Case" in acc.answer

    also = chat.say("what did customers who bought the Aurora X2 black also buy?", "product_recommend",
                    ("Aurora X2 black", "PRODUCT", AURORA_BLACK))
    rec = [f.data for f in also.facts if f.kind == "recommendation"]
    assert rec[0]["sku"] == CASE and rec[0]["together"] == 2

    cheaper = chat.say("anything cheaper than it?", "product_recommend")
    skus = [f.data["sku"] for f in cheaper.facts if f.kind == "recommendation"]
    assert set(skus) == {TIDE, HALO} and cheaper.facts[0].data["sku"] == AURORA_BLACK


def test_personal_recommendations_use_the_signed_in_customers_history(chat_factory):
    chat = chat_factory("C00001")
    r = chat.say("what would you recommend for me?", "product_recommend")
    assert r.query_name == "products.personal"
    # C00001 bought the case; other buyers of the case bought the silver Aurora X2.
    assert [f.data["sku"] for f in r.facts if f.kind == "recommendation"] == [AURORA_SILVER]
    anon = chat_factory().say("what would you recommend?", "product_recommend")
    assert anon.status == "clarify"


def test_warranty_product_own_then_store_wide(chat_factory):
    chat = chat_factory()
    r = chat.say("what's the warranty on the NA-700X", "product_warranty", ("NA-700X", "PRODUCT", NA700X))
    assert "36-month" in r.answer and r.facts[0].data == {"sku": NA700X, "name": support.PRODUCTS[3]["name"],
                                                          "months": 36, "source": "product"}
    r = chat.say("and the shellcraft case?", "product_warranty", ("shellcraft case", "PRODUCT", CASE))
    assert r.facts[0].data["policy_id"] == "POL-WARRANTY-STD" and "12 months" in r.answer


def test_promotions_in_force_only(chat_factory):
    chat = chat_factory()
    r = chat.say("any deals on the Aurora X2 black?", "product_promotions", ("Aurora X2 black", "PRODUCT", AURORA_BLACK))
    codes = [f.data["code"] for f in r.facts if f.kind == "promotion"]
    assert codes == ["AUDIO20", "NORDIC15", "WELCOME10"]  # not expired OLD10, not future FUTURE30
    assert "AUDIO20" in r.answer and "20% off" in r.answer
    r = chat.say("any promotions on the sofa?", "product_promotions", ("sofa", "PRODUCT", "OA-FU-000009"))
    assert [f.data["code"] for f in r.facts if f.kind == "promotion"] == ["WELCOME10"]


def test_details_and_unknown_and_unlinked_products(chat_factory):
    chat = chat_factory()
    r = chat.say("tell me about the NA-700X", "product_details", ("NA-700X", "PRODUCT", NA700X))
    assert "battery life: 40 h" in r.answer and "4.8/5" in r.answer and "349.99 USD" in r.answer
    r = chat.say("how much is the Zorblax 9000?", "product_price", ("Zorblax 9000", "PRODUCT", None))
    assert r.status == "not_found" and "Zorblax 9000" in r.answer and r.facts == []
    # A mention the entity linker left unlinked (here there is none) gets one more try, the name
    # look-up in the graph (the linker's graph stage, nlu/linking/search.py): every word of it in one
    # product's name.
    r = chat.say("how much is the halo 2?", "product_price", ("halo 2", "PRODUCT", None))
    assert r.status == "ok" and r.entities[0].node_id == "SN-HP-000011" and "239.00 USD" in r.answer


def test_brand_and_category_questions_list_real_products(chat_factory):
    chat = chat_factory()
    r = chat.say("which Sonara headphones are in stock?", "product_availability", ("Sonara", "BRAND", "Sonara"),
                 ("headphones", "CATEGORY", "Headphones"))
    assert {f.data["sku"] for f in r.facts if f.kind == "product"} == {TIDE, HALO}
    r = chat.say("how much are your electronics?", "product_price", ("electronics", "CATEGORY", "Electronics"))
    group = next(f for f in r.facts if f.kind == "product_group").data
    assert group["count"] == 9 and group["min_price"] == 129.99 and group["max_price"] == 699.0  # via subcategories


def test_low_confidence_out_of_scope_with_a_product_uses_the_models_best_content_intent(chat_factory):
    from nlu.types import IntentScore, Understanding

    chat = chat_factory()
    text = "Aurora X2 black?"
    chat.nlu.script[text] = Understanding(
        text=text, intent=IntentScore(name="out_of_scope", confidence=0.31),
        ranking=[IntentScore(name="out_of_scope", confidence=0.31), IntentScore(name="product_details", confidence=0.3)],
        entities=[ent(text, "Aurora X2 black", "PRODUCT", AURORA_BLACK)])
    r = chat.engine.handle(None, text, None)
    assert r.intent.name == "product_details" and r.status == "ok" and "249.99 USD" in r.answer
    text2 = "what is the meaning of life"
    chat.nlu.script[text2] = Understanding(
        text=text2, intent=IntentScore(name="out_of_scope", confidence=0.2),
        ranking=[IntentScore(name="out_of_scope", confidence=0.2), IntentScore(name="product_details", confidence=0.1)])
    assert chat.engine.handle(None, text2, None).status == "no_answer"


def test_one_question_reads_a_product_once_and_the_next_question_reads_it_again(shop):
    """Context.for_question: the candidates a clarification tries are read from the graph once per
    question (one query for all of them); a new question starts with nothing cached, so a stock
    change between two questions is seen at once."""
    import datetime as dt

    from kg.queries import Query
    from qa.handlers.base import BY_SKUS, SHARED_QUERIES, Context

    _settings, store = shop
    seen: list[str] = []

    class Counting:  # the real store, counting the named queries that reach it
        def run(self, query, params=None, **kw):
            seen.append(query.name)
            return store.run(query, params, **kw)

    base = Context(Counting(), None, "USD", lambda: dt.datetime(2026, 12, 7), SHARED_QUERIES, "test")
    ctx = base.for_question()
    first = ctx.run(BY_SKUS, skus=[AURORA_BLACK, AURORA_SILVER, "NO-SUCH-SKU"])
    assert sorted(r["sku"] for r in first) == [AURORA_BLACK, AURORA_SILVER]
    assert [r["sku"] for r in ctx.run(BY_SKUS, skus=[AURORA_SILVER])] == [AURORA_SILVER]
    assert ctx.run(BY_SKUS, skus=["NO-SUCH-SKU"]) == []  # an absent product is remembered too
    assert seen == [BY_SKUS]
    first[0]["stock"] = -1  # a caller changing its rows changes nothing for the next caller
    assert all(r["stock"] != -1 for r in ctx.run(BY_SKUS, skus=[AURORA_BLACK, AURORA_SILVER]))

    set_stock = Query("test.set_stock", "MATCH (p:Product {sku: $sku}) SET p.stock = $stock", read_only=False)
    [black] = ctx.run(BY_SKUS, skus=[AURORA_BLACK])
    before = black["stock"]
    store.run(set_stock, {"sku": AURORA_BLACK, "stock": 77})
    try:
        [again] = base.for_question().run(BY_SKUS, skus=[AURORA_BLACK])
        assert again["stock"] == 77 and seen == [BY_SKUS, BY_SKUS]
        [uncached] = base.run(BY_SKUS, skus=[AURORA_BLACK])  # outside a question nothing is kept
        assert uncached["stock"] == 77 and seen == [BY_SKUS] * 3
    finally:
        store.run(set_stock, {"sku": AURORA_BLACK, "stock": before})
