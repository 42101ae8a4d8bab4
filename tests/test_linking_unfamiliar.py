"""Linking on a catalog unlike the one the understanding model was trained on (issue 11): a general
store selling board games and building sets (in series, by designers, in editions), groceries
(names with a subtitle, pack sizes) and tools (colours whose names contain each other). Real
embedded FalkorDB, the real sentence encoder and, where a test says so, the real understanding model.

Each mechanism has its test:
- lines by title: products of one series (a `series` or `model_line` attribute) with different
  names are different lines, the series name still names them all, and a title named exactly wins
  over a series of the same words;
- a name's head before a subtitle is a name of its own ("golden crunch");
- between two variant values named in full, the longer wins ("navy blue" over "blue");
- product names found in the message itself when the model tagged none, or tagged them as other
  types, or too short ("castle siege" of "castle siege the dragon expansion");
- an attribute value that names products (a designer) when nothing else does.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from common.settings import Settings
from kg.backends.falkordb import FalkorDBStore
from kg.loader import import_path
from kg.schema import ensure_schema
from nlu.linking import EntityLinker, LinkerConfig
from nlu.linking.encoder import TextEncoder
from nlu.types import Entity, IntentScore, Understanding
from tests import test_dialogue_support as support

understander = support.understander  # the committed model

GENERAL_STORE = {
    "brands.csv": "name,country\nBrightbox Games,Norway\nTidewater Toys,Denmark\nBrookfield Pantry,Ireland\n"
                  "Ironbark Tools,Australia\n",
    "categories.csv": "name,parent,description\nToys,,\nBoard Games,Toys,\nBuilding Sets,Toys,\nPantry,,\n"
                      "Tea,Pantry,\nCereal,Pantry,\nTools,,\nPower Tools,Tools,\nHand Tools,Tools,\n",
    "products.csv": (
        "sku,name,brand,category,price,currency,stock,status,designer,attributes\n"
        'BG-CS-ST,Castle Siege (Standard Edition),Brightbox Games,Board Games,39.00,EUR,5,active,Lotte Brandvold,'
        '"{""edition"": ""Standard Edition"", ""series"": ""Realm Classics"", ""material"": ""Cardboard""}"\n'
        'BG-CS-TR,Castle Siege (Travel Edition),Brightbox Games,Board Games,24.00,EUR,5,active,Lotte Brandvold,'
        '"{""edition"": ""Travel Edition"", ""series"": ""Realm Classics"", ""material"": ""Cardboard""}"\n'
        'BG-CS-DX,Castle Siege: The Dragon Expansion,Brightbox Games,Board Games,19.00,EUR,5,active,'
        'Lotte Brandvold,"{""series"": ""Realm Classics"", ""material"": ""Cardboard""}"\n'
        'BG-LB,Lantern Bay,Brightbox Games,Board Games,34.00,EUR,5,active,Lotte Brandvold,'
        '"{""material"": ""Cardboard""}"\n'
        'BG-CT,Copper Trails,Brightbox Games,Board Games,29.00,EUR,5,active,Emeric Dalloway,'
        '"{""material"": ""Cardboard""}"\n'
        'BG-QK,Quarry Kings,Brightbox Games,Board Games,31.00,EUR,5,active,Bastian Rook,'
        '"{""material"": ""Cardboard""}"\n'
        'BG-MR,Moon Rover,Brightbox Games,Board Games,22.00,EUR,5,active,Ines Okafor,'
        '"{""series"": ""Moon Rover"", ""material"": ""Cardboard""}"\n'
        'BG-MR-DX,Moon Rover Deluxe,Brightbox Games,Board Games,45.00,EUR,5,active,Ines Okafor,'
        '"{""series"": ""Moon Rover"", ""material"": ""Cardboard""}"\n'
        'BS-FS-R,"Harbour Town Fire Station, Red",Tidewater Toys,Building Sets,59.00,EUR,5,active,,'
        '"{""series"": ""Harbour Town"", ""colour"": ""Red"", ""material"": ""Plastic""}"\n'
        'BS-FS-B,"Harbour Town Fire Station, Blue",Tidewater Toys,Building Sets,59.00,EUR,5,active,,'
        '"{""series"": ""Harbour Town"", ""colour"": ""Blue"", ""material"": ""Plastic""}"\n'
        'BS-PB,Harbour Town Police Boat,Tidewater Toys,Building Sets,42.00,EUR,5,active,,'
        '"{""series"": ""Harbour Town"", ""colour"": ""Navy Blue"", ""material"": ""Plastic""}"\n'
        'BS-FE,Harbour Town Ferry,Tidewater Toys,Building Sets,48.00,EUR,5,active,,'
        '"{""series"": ""Harbour Town"", ""colour"": ""White"", ""material"": ""Plastic""}"\n'
        'GR-GC,Golden Crunch: Honey Oat Granola,Brookfield Pantry,Cereal,5.49,EUR,40,active,,'
        '"{""size"": ""500 g""}"\n'
        'GR-RT-20,Wild Rosehip Herbal Tea (20 bags),Brookfield Pantry,Tea,3.99,EUR,40,active,,'
        '"{""pack"": ""20 bags""}"\n'
        'GR-RT-40,Wild Rosehip Herbal Tea (40 bags),Brookfield Pantry,Tea,6.99,EUR,40,active,,'
        '"{""pack"": ""40 bags""}"\n'
        'GR-MT,Midnight Mint Tea (20 bags),Brookfield Pantry,Tea,3.49,EUR,40,active,,"{""pack"": ""20 bags""}"\n'
        'TL-CD-B,"Ironbark Cordless Drill 18V, Blue",Ironbark Tools,Power Tools,129.00,EUR,8,active,,'
        '"{""colour"": ""Blue""}"\n'
        'TL-CD-N,"Ironbark Cordless Drill 18V, Navy Blue",Ironbark Tools,Power Tools,129.00,EUR,8,active,,'
        '"{""colour"": ""Navy Blue""}"\n'
        'TL-CH,Ironbark Claw Hammer 16 oz,Ironbark Tools,Hand Tools,24.00,EUR,8,active,,'
        '"{""material"": ""Steel""}"\n'
        'TL-VS,Ironbark Vista Bench Vise,Ironbark Tools,Hand Tools,64.00,EUR,3,active,,'
        '"{""material"": ""Steel""}"\n'),
}
CASTLE_SIEGE = ["BG-CS-ST", "BG-CS-TR"]
HARBOUR_TOWN = ["BS-FE", "BS-FS-B", "BS-FS-R", "BS-PB"]
ROSEHIP = ["GR-RT-20", "GR-RT-40"]
BRANDVOLD = ["BG-CS-DX", "BG-CS-ST", "BG-CS-TR", "BG-LB"]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder(Settings(_env_file=None).encoder_path)


@pytest.fixture(scope="module")
def general_store(falkordb_server, tmp_path_factory):
    directory = tmp_path_factory.mktemp("general_store")
    for name, text in GENERAL_STORE.items():
        (directory / name).write_text(text, encoding="utf-8")
    settings = Settings(_env_file=None, graph_url="falkordb://embedded", data_dir=falkordb_server.data_dir,
                        graph_name=f"general_{uuid.uuid4().hex[:8]}")
    store = FalkorDBStore.from_settings(settings)
    ensure_schema(store)
    report = import_path(store, Path(directory), settings=settings, progress=False)
    assert report.ok, report.errors[:5]
    yield store, settings
    store.redis.execute_command("GRAPH.DELETE", store.graph_name)
    store.close()


@pytest.fixture(scope="module")
def linker(general_store, encoder) -> EntityLinker:
    store, _settings = general_store
    lk = EntityLinker(store, encoder=encoder, currency="EUR", config=LinkerConfig(refresh_interval_s=3600))
    lk.warm()
    return lk


def _ids(entity: Entity) -> list[str]:
    return sorted(c.node_id for c in entity.candidates)


def _understanding(text: str, intent: str, *spans: tuple[str, str]) -> Understanding:
    """What the model understood, scripted: (span text, entity type) in the order they occur."""
    ents = [Entity(type=t, text=m, start=text.index(m), end=text.index(m) + len(m)) for m, t in spans]
    return Understanding(text=text, intent=IntentScore(name=intent, confidence=0.9), entities=ents)


def _products(u: Understanding) -> list[Entity]:
    return [e for e in u.entities if e.type == "PRODUCT"]


# -- lines by title, subtitles, the longer variant value ---------------------------------------------
def test_products_of_one_series_are_lines_of_their_own(linker):
    boat = linker.link_mention("harbour town police boat", "PRODUCT")
    assert (boat.node_id, boat.score) == ("BS-PB", 1.0)
    expansion = linker.link_mention("castle siege the dragon expansion", "PRODUCT")
    assert expansion.node_id == "BG-CS-DX"
    # the series name names the whole series; a title names its own editions
    series = linker.link_mention("harbour town", "PRODUCT")
    assert series.ambiguous and _ids(series) == HARBOUR_TOWN
    castle = linker.link_mention("castle siege", "PRODUCT")
    assert castle.ambiguous and _ids(castle) == CASTLE_SIEGE
    assert linker.link_mention("castle siege travel edition", "PRODUCT").node_id == "BG-CS-TR"
    # a title spelt like its series: the title, not its deluxe sibling
    rover = linker.link_mention("moon rover", "PRODUCT")
    assert (rover.node_id, rover.score) == ("BG-MR", 1.0)


def test_the_head_of_a_subtitled_name_is_a_name(linker):
    e = linker.link_mention("golden crunch", "PRODUCT")
    assert (e.node_id, e.score) == ("GR-GC", 1.0)
    assert linker.link_mention("honey oat granola", "PRODUCT").node_id == "GR-GC"
    out = linker.link(_understanding("how much is golden crunch?", "product_price"))  # the model tagged nothing
    [product] = _products(out)
    assert (product.node_id, product.text, product.start) == ("GR-GC", "golden crunch", 12)


def test_the_longer_of_two_values_named_in_full_wins(linker):
    assert linker.link_mention("cordless drill 18v in navy blue", "PRODUCT").node_id == "TL-CD-N"
    assert linker.link_mention("cordless drill 18v in blue", "PRODUCT").node_id == "TL-CD-B"
    assert linker.link_mention("cordless drill 18v", "PRODUCT").ambiguous


# -- product names in the message ----------------------------------------------------------------------
def test_a_product_name_the_model_did_not_tag_is_found_in_the_message(linker):
    # most of a name, typed partly: no exact name, and no typo for the free-text fall-back to try
    out = linker.link(_understanding("how much is the wild rosehip tea?", "product_price"))
    [product] = _products(out)
    assert product.ambiguous and _ids(product) == ROSEHIP and product.text == "wild rosehip tea"
    out = linker.link(_understanding("who designed the quarry kings game?", "product_details"))
    assert [(e.type, e.node_id) for e in out.entities] == [("PRODUCT", "BG-QK")]


def test_a_product_name_tagged_as_other_types_replaces_them(linker):
    text = "is the wild rosehip herbal tea in stock?"
    out = linker.link(_understanding(text, "product_availability", ("wild rosehip", "ATTRIBUTE"), ("tea", "CATEGORY")))
    [product] = out.entities
    assert product.type == "PRODUCT" and product.ambiguous and _ids(product) == ROSEHIP
    assert text[product.start:product.end] == "wild rosehip herbal tea"
    # a number read as an order id, a colour read right: the colour stays, it picks the variant
    text = "price of the cordless drill 18v in navy blue"
    out = linker.link(_understanding(text, "product_price", ("cordless drill", "CATEGORY"), ("18v", "ORDER_ID"),
                                     ("navy blue", "ATTRIBUTE")))
    assert [(e.type, e.node_id) for e in out.entities] == [("PRODUCT", "TL-CD-N"), ("ATTRIBUTE", "navy blue")]
    # a policy question about a product
    text = "can I return the midnight mint tea?"
    out = linker.link(_understanding(text, "check_refund_policy", ("midnight", "ATTRIBUTE"), ("mint tea", "CATEGORY")))
    assert [(e.type, e.node_id) for e in out.entities] == [("PRODUCT", "GR-MT")]


def test_a_mention_too_short_is_widened_to_the_name_in_the_message(linker):
    text = "who designed castle siege the dragon expansion?"
    out = linker.link(_understanding(text, "product_details", ("castle siege", "PRODUCT")))
    [product] = out.entities
    assert product.node_id == "BG-CS-DX" and text[product.start:product.end] == "castle siege the dragon expansion"


def test_format_words_next_to_a_name_pick_the_variant(linker):
    out = linker.link(_understanding("is the castle siege travel edition in stock", "product_availability",
                                     ("castle", "BRAND"), ("travel edition", "CATEGORY")))
    assert [(e.type, e.node_id) for e in out.entities] == [("PRODUCT", "BG-CS-TR")]
    text = "compare the wild rosehip herbal tea 20 bags with the wild rosehip herbal tea 40 bags"
    out = linker.link(_understanding(text, "product_compare", ("wild rosehip", "ATTRIBUTE"),
                                     ("herbal", "CATEGORY")))
    assert [e.node_id for e in _products(out)] == ["GR-RT-20", "GR-RT-40"]


def test_a_few_distinctive_words_name_their_lines(linker):
    out = linker.link(_understanding("is the herbal tea caffeine free?", "product_details"))
    [product] = out.entities
    assert product.ambiguous and _ids(product) == ROSEHIP and product.text == "herbal tea"


def test_what_names_no_product_stays_unlinked(linker):
    for text, intent, spans in [
        ("can I pay with my visa card?", "check_payment_methods", ()),  # "visa" is no typo of "vista"
        ("do you ship to austria?", "delivery_options", ()),
        ("how much is the blue one?", "product_price", (("blue", "ATTRIBUTE"),)),
        ("do you have anything from brightbox games?", "product_availability", (("brightbox games", "BRAND"),)),
        ("which board games do you have?", "product_recommend", (("board games", "CATEGORY"),)),
    ]:
        out = linker.link(_understanding(text, intent, *spans))
        assert not _products(out), (text, out.entities)


def test_an_order_id_in_an_order_question_stays(linker):
    out = linker.link(_understanding("where is order 4417 with my golden crunch", "track_order", ("4417", "ORDER_ID")))
    assert [(e.type, e.node_id) for e in out.entities] == [("ORDER_ID", "4417"), ("PRODUCT", "GR-GC")]


# -- attribute values that name products -----------------------------------------------------------------
def test_a_designer_names_their_games(linker):
    out = linker.link(_understanding("what does the brandvold one cost?", "product_price", ("brandvold", "BRAND")))
    [product] = out.entities
    assert product.type == "PRODUCT" and product.ambiguous and _ids(product) == BRANDVOLD
    out = linker.link(_understanding("any games by lotte brandvold in stock?", "product_availability"))
    assert _ids(_products(out)[0]) == BRANDVOLD
    out = linker.link(_understanding("who publishes the dalloway game?", "product_details"))
    assert [e.node_id for e in _products(out)] == ["BG-CT"]
    # variant words narrow the designer's games
    out = linker.link(_understanding("the brandvold travel edition, how much?", "product_price"))
    assert [e.node_id for e in _products(out)] == ["BG-CS-TR"]


def test_values_that_do_not_name_products(linker):
    for text, intent in [
        ("is it by dalloway?", "product_details"),  # points back to the product discussed
        ("do you have anything made of cardboard?", "product_recommend"),  # a material many games share
        ("do you have it in plastic", "product_availability"),
        ("which sets come in red?", "product_recommend"),  # a colour: a variant, never a name
    ]:
        assert not _products(linker.link(_understanding(text, intent))), text


def test_the_index_follows_the_catalog_for_the_new_mechanisms(linker, general_store, tmp_path):
    """A series and a designer added later are found incrementally, like any name."""
    directory = tmp_path / "more"
    directory.mkdir()
    (directory / "products.csv").write_text(
        "sku,name,brand,category,price,currency,stock,status,designer,attributes\n"
        'BG-SV,Saltmarsh Voyage,Brightbox Games,Board Games,33.00,EUR,5,active,Pernille Vask,'
        '"{""material"": ""Cardboard""}"\n'
        'BS-LH,Harbour Town Lighthouse,Tidewater Toys,Building Sets,52.00,EUR,5,active,,'
        '"{""series"": ""Harbour Town"", ""colour"": ""White"", ""material"": ""Plastic""}"\n', encoding="utf-8")
    store, settings = general_store
    assert import_path(store, directory, settings=settings, progress=False).ok
    assert linker.refresh(force=True)
    out = linker.link(_understanding("who designed the vask game?", "product_details"))
    assert [e.node_id for e in _products(out)] == ["BG-SV"]
    out = linker.link(_understanding("is the harbour town lighthouse in stock", "product_availability",
                                     ("harbour town", "BRAND")))
    assert [e.node_id for e in _products(out)] == ["BS-LH"]
    series = linker.link_mention("harbour town", "PRODUCT")
    assert "BS-LH" in _ids(series) and len(series.candidates) == 5


# -- with the real understanding model ------------------------------------------------------------------


@pytest.mark.parametrize(("text", "skus", "ambiguous"), [
    ("who designed harbour town police boat?", ["BS-PB"], False),
    ("is castle siege the dragon expansion in stock?", ["BG-CS-DX"], False),
    ("how much is the wild rosehip herbal tea 40 bags?", ["GR-RT-40"], False),
    ("can I return the midnight mint tea?", ["GR-MT"], False),
    ("what does the lotte brandvold game cost", BRANDVOLD, True),
])
def test_the_model_and_the_linker_together(understander, linker, text, skus, ambiguous):
    """Whatever the model makes of these names (on this catalog it reads them as brands, categories and
    values), the message ends up naming the product, and nothing of the name is left as another entity."""
    out = linker.link(understander.understand(text))
    [product] = _products(out)
    assert (_ids(product) if ambiguous else [product.node_id]) == skus and product.ambiguous == ambiguous
    assert all(e.type in ("PRODUCT", "CATEGORY") and (e.node_id or e.candidates) for e in out.entities), out.entities


def test_the_dialogue_answers_about_a_product_the_model_misread(understander, linker, general_store):
    """The whole turn with the real engine: the product found in the message is the one answered about,
    and a designer's several games lead to a clarifying question."""
    from common import bootstrap
    from qa.state import SessionStore
    from qa.templates import TemplateVerbalizer

    store, settings = general_store
    engine = bootstrap.build(settings.model_copy(update={"store_currency": "EUR"}), store=store,
                             sessions=SessionStore(lambda: store.redis, ttl_s=600, prefix=f"unf:{settings.graph_name}:"),
                             understander=understander, linker=linker, encoder_model=linker.encoder.model,
                             verbalizer=TemplateVerbalizer(),
                             examples=None).engine.get()
    r = engine.handle(None, "how much is the wild rosehip herbal tea 40 bags?", None)
    assert r.status == "ok" and "6.99 EUR" in r.answer and "3.99 EUR" not in r.answer
    r = engine.handle(None, "what does the lotte brandvold game cost", None)
    assert r.status == "clarify" and {c.data["node_id"] for c in r.facts} >= set(BRANDVOLD)


# -- a product named by its kind alone -------------------------------------------------------------------
@pytest.mark.parametrize(("text", "intent", "skus", "ambiguous"), [
    ("how much is the hammer?", "product_price", ["TL-CH"], False),  # "Claw Hammer 16 oz": one line
    ("is the drill in stock?", "product_availability", ["TL-CD-B", "TL-CD-N"], True),  # "Cordless Drill 18V"
    ("is the navy blue drill in stock?", "product_availability", ["TL-CD-N"], False),  # a variant word chooses
    ("how much is the tea?", "product_price", ["GR-MT", "GR-RT-20", "GR-RT-40"], True),  # a category's word
    ("who makes the vise?", "out_of_scope", ["TL-VS"], False),  # the model's out-of-scope reading kept apart
])
def test_a_product_named_by_its_kind_alone_names_every_product_of_that_kind(linker, text, intent, skus, ambiguous):
    [product] = _products(linker.link(_understanding(text, intent)))
    got = sorted(c.node_id for c in product.candidates) if product.ambiguous else [product.node_id]
    assert got == skus and product.ambiguous == ambiguous and product.text in text


@pytest.mark.parametrize(("text", "intent"), [
    ("how much are the teas?", "product_price"),  # the category in the plural: the category, not its products
    ("where is the drill I ordered?", "track_order"),  # not a product question
    ("how much is a brightbox?", "product_price"),  # a brand
    ("tell me about the weather", "out_of_scope"),  # no line's kind
])
def test_a_kind_word_names_no_product_outside_a_product_question(linker, text, intent):
    assert not _products(linker.link(_understanding(text, intent)))
