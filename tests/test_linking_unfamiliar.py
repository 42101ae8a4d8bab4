"""Linking on a catalog unlike the one the understanding model was trained on (issue 11): a general
store selling board games and building sets (in series, by designers, in editions), groceries
(names with a subtitle, pack sizes) and tools (colours whose names contain each other). Real
embedded FalkorDB, the real sentence encoder and, where a test says so, the real understanding model.

Each mechanism has its test:
- lines by title: products of one series (a `series` or `model_line` attribute) with different
  names are different lines, the series name still names them all, and a title named exactly wins
  over a series of the same words;
- a name's head before a subtitle is a name of its own ("golden crunch");
- between two variant values named in full, the longer wins ("navy blue" over "blue").
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
