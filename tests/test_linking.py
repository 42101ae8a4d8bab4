"""Entity linking against a real embedded FalkorDB holding the sample store's catalog (imported by
kg/loader.py), with the real sentence encoder: exact names, model numbers in any spacing, typos,
partial names, brands and categories, ambiguity and its resolution by variant words, catalog
changes followed without retraining, order ids and money without the graph, nonsense, and
accuracy on held-out products.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import uuid
from pathlib import Path

import pytest

from common.settings import Settings
from import_scripts.sample_store import generate
from kg.backends.falkordb import FalkorDBStore
from kg.embeddings import fill_embeddings
from kg.loader import import_path
from kg.queries import linking as linking_queries
from kg.queries import q
from kg.schema import ensure_schema
from nlu.linking import EntityLinker, LinkerConfig, normalise_order_id, parse_money, snapshot
from nlu.linking.encoder import TextEncoder
from nlu.linking.evaluation import build_examples, evaluate_linking, examples_from_nlu_eval
from nlu.linking.graph_index import GraphLineIndex
from nlu.linking.index import CappedPosting, name_vector_text
from nlu.types import Entity, IntentScore, Understanding

# Removing a product has no import-file form (the catalog route will do it); until then, a named
# write query here, with the version bump every catalog change makes.
_DELETE = q("test_linking.delete_products", "UNWIND $skus AS s MATCH (p:Product {sku: s}) DETACH DELETE p",
            read_only=False)
_BUMP = q("test_linking.bump_catalog_version",
          "MERGE (m:Meta {key: 'catalog'}) SET m.version = coalesce(m.version, 0) + 1", read_only=False)


def _import(store, settings: Settings, directory: Path, **files: list[dict]) -> None:
    """Write `files` (name -> rows) as import CSVs into `directory` and import them."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        with (directory / f"{name}.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    report = import_path(store, directory, settings=settings, progress=False)
    assert report.ok, report.errors[:5]


def _product(sku: str, name: str, brand: str, category: str, attrs: dict) -> dict:
    return {"sku": sku, "name": name, "brand": brand, "category": category, "price": "99.00", "currency": "USD",
            "stock": "5", "status": "active", "attributes": json.dumps(attrs)}


# -- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder(Settings(_env_file=None).encoder_path)


@pytest.fixture(scope="module")
def shop(falkordb_server, tmp_path_factory):
    """The sample store's catalog (1,000 products) in its own graph, shared by the read-only tests."""
    directory = tmp_path_factory.mktemp("sample_store")
    generate(directory, products=1000, customers=1, orders=0, seed=7, today=dt.date(2026, 3, 15))
    settings = Settings(_env_file=None, graph_url="falkordb://embedded", data_dir=falkordb_server.data_dir,
                        graph_name=f"linking_{uuid.uuid4().hex[:8]}")
    store = FalkorDBStore.from_settings(settings)
    ensure_schema(store)
    report = import_path(store, directory, settings=settings, progress=False)
    assert report.ok and report.version is not None
    yield store
    store.redis.execute_command("GRAPH.DELETE", store.graph_name)
    store.close()


@pytest.fixture(scope="module", params=["memory", "graph"])
def linker(request, shop, encoder) -> EntityLinker:
    """Both kinds of index: held by the worker, and kept in the graph (read entry by entry, names by
    meaning through the graph's vector index)."""
    if request.param == "memory":
        lk = EntityLinker(shop, encoder=encoder, config=LinkerConfig(refresh_interval_s=3600))
    else:
        fill_embeddings(shop, encoder.encode_bulk, encoder.dim, name_vector_text, space=encoder.space)
        lk = EntityLinker(shop, encoder=encoder, config=LinkerConfig(refresh_interval_s=3600, graph_vectors=True),
                          in_graph=True)
    lk.warm()
    assert isinstance(lk._current().lines, GraphLineIndex) == (request.param == "graph")
    return lk


def _ids(entity: Entity) -> list[str]:
    return [c.node_id for c in entity.candidates]


AURORA_X2 = ["NA-HP-000001", "NA-HP-000002", "NA-HP-000003", "NA-HP-000004"]  # Black, Silver, Midnight Blue, Sand
NA_700X = ["NA-HP-000007", "NA-HP-000008"]  # Black, White


# -- exact, aliases, model numbers -------------------------------------------------------------------
def test_exact_name_and_sku_link_one_product(linker):
    for mention in ("Nordic Audio Aurora X2 Wireless Headphones, Black", "nordic audio aurora x2 wireless headphones black",
                    "Aurora X2 Wireless Headphones, Black", "NA-HP-000001", "na-hp-000001"):
        e = linker.link_mention(mention, "PRODUCT")
        assert (e.node_id, e.score, e.ambiguous) == ("NA-HP-000001", 1.0, False), mention


@pytest.mark.parametrize("mention", ["NA-700X", "na700x", "NA 700X", "Na-700x", "na-700 x", "nordic audio na700x"])
def test_model_numbers_match_in_any_case_spacing_and_hyphenation(linker, mention):
    e = linker.link_mention(mention, "PRODUCT")
    assert e.ambiguous and sorted(_ids(e)) == NA_700X and e.score == 1.0
    white = linker.link_mention(f"{mention} in white", "PRODUCT")
    assert white.node_id == "NA-HP-000008" and not white.ambiguous


def test_typos_in_product_and_brand_names(linker):
    e = linker.link_mention("auroa x2", "PRODUCT")
    assert e.ambiguous and sorted(_ids(e)) == AURORA_X2  # the headphones, not the travel cases for them
    assert 0.6 <= e.score < 1.0
    assert linker.link_mention("the auroa x2 in midnigth blue", "PRODUCT").node_id == "NA-HP-000003"
    b = linker.link_mention("nordik audio", "BRAND")
    assert b.node_id == "Nordic Audio" and b.score < 1.0
    assert linker.link_mention("stridewel", "BRAND").node_id == "Stridewell"
    assert linker.link_mention("headphnes", "CATEGORY").node_id == "Headphones"


def test_partial_names_with_their_variant_words(linker):
    assert linker.link_mention("aurora x2 headphones sand", "PRODUCT").node_id == "NA-HP-000004"
    assert linker.link_mention("nova 5 smartphone 256gb graphite", "PRODUCT").node_id == "LUM-PH-000011"
    assert linker.link_mention("gale 3 size 9", "PRODUCT").node_id == "SW-RS-000022"
    assert linker.link_mention("kestrel slate 14 32 gb", "PRODUCT").node_id == "KES-LT-000019"
    # a travel case is not the headphones it fits
    case = linker.link_mention("aurora x2 travel case", "PRODUCT")
    assert case.ambiguous and sorted(_ids(case)) == ["NA-HC-000005", "NA-HC-000006"]
    assert linker.link_mention("travel case for the aurora x2 in grey", "PRODUCT").node_id == "NA-HC-000005"


def test_brands_and_categories_in_case_and_number(linker):
    for mention, node in (("lumina", "Lumina"), ("NORDIC AUDIO", "Nordic Audio"), ("driftwood", "Driftwood & Co"),
                          ("Driftwood and Co", "Driftwood & Co")):
        assert linker.link_mention(mention, "BRAND").node_id == node, mention
    for mention, node in (("headphone", "Headphones"), ("HEADPHONES", "Headphones"), ("running shoe", "Running Shoes"),
                          ("smartwatch", "Smartwatches"), ("mouse", "Mice & Keyboards"), ("keyboards", "Mice & Keyboards"),
                          ("phone case", "Phone Cases")):
        e = linker.link_mention(mention, "CATEGORY")
        assert (e.node_id, e.score) == (node, 1.0), mention


# -- ambiguity -------------------------------------------------------------------------------------------
def test_a_model_line_mention_is_ambiguous_with_its_variants_ranked(linker):
    e = linker.link_mention("the Aurora X2", "PRODUCT")
    assert e.ambiguous and e.node_id is None and e.score == 1.0
    assert sorted(_ids(e)) == AURORA_X2
    assert [c.score for c in e.candidates] == sorted((c.score for c in e.candidates), reverse=True)
    assert all(c.label == "Product" and c.name.startswith("Nordic Audio Aurora X2") for c in e.candidates)
    # the same line name from two brands: both brands are offered before more variants of one
    squall = linker.link_mention("squall 2", "PRODUCT")
    assert squall.ambiguous and {c.node_id.split("-")[0] for c in squall.candidates[:2]} == {"DWC", "NWO"}


def test_a_variant_word_resolves_the_ambiguity(linker):
    assert linker.link_mention("aurora x2 in black", "PRODUCT").node_id == "NA-HP-000001"
    # the variant word as its own ATTRIBUTE entity in the same message
    text = "is the aurora x2 available in silver?"
    product = Entity(type="PRODUCT", text="aurora x2", start=7, end=16)
    colour = Entity(type="ATTRIBUTE", text="silver", start=30, end=36)
    linked_product, linked_colour = linker.link_entities([product, colour], text)
    assert linked_product.node_id == "NA-HP-000002" and (linked_product.start, linked_product.end) == (7, 16)
    assert linked_colour.node_id == "silver"
    # a clarification answer ("the midnight blue one") is settled by the dialogue's one picking
    # path, qa/context.py `pick_from` (tests/test_dialogue_products.py, tests/test_dialogue_e2e.py)


def test_paraphrases_link_through_embeddings(linker):
    e = linker.link_mention("noise cancelling nordic headphones", "PRODUCT")
    assert e.candidates and e.score >= 0.6
    assert all(c.name.startswith("Nordic Audio") and "Noise Cancelling" in c.name for c in e.candidates)
    assert linker.link_mention("earbuds", "CATEGORY").node_id == "Headphones"  # from the category description


# -- no graph for orders and money ------------------------------------------------------------------------
def test_order_ids_and_money_are_normalised_without_the_graph():
    unreachable = FalkorDBStore(graph_name="nowhere", host="127.0.0.1", port=1, retries=0)
    lk = EntityLinker(unreachable)  # any graph query would raise GraphUnavailable
    for mention in ("#10452", "10452", "order 10452", "Order #10452", "# 10452", "10 452"):
        e = lk.link_mention(mention, "ORDER_ID")
        assert (e.node_id, e.score, e.candidates, e.ambiguous) == ("10452", 1.0, [], False), mention
    # an id that may or may not exist gets the very same treatment: nothing is revealed
    assert lk.link_mention("#99999999", "ORDER_ID").model_dump(exclude={"text"}) == \
        lk.link_mention("#10452", "ORDER_ID").model_dump(exclude={"text"}) | {"node_id": "99999999"}
    assert normalise_order_id("#ORD-7F3A12") == "ORD-7F3A12"
    assert normalise_order_id("no order here") is None
    for text, expected in (("$200", "200.00 USD"), ("200 dollars", "200.00 USD"), ("150 eur", "150.00 EUR"),
                           ("€1.299,00", "1299.00 EUR"), ("1,200.50£", "1200.50 GBP"), ("50 bucks", "50.00 USD"),
                           ("EUR 20", "20.00 EUR"), ("2k", "2000.00 USD"), ("100 zł", "100.00 PLN")):
        assert lk.link_mention(text, "MONEY").node_id == expected, text
    assert str(parse_money("19.99", "eur")) == "19.99 EUR" and parse_money("cheap") is None


def test_attribute_values_normalise_to_the_catalog_spelling(linker):
    for mention, value in (("Midnight Blue", "midnight blue"), ("midnight blu", "midnight blue"), ("128gb", "128 gb"),
                           ("128 GB", "128 gb"), ("US 9", "us 9")):
        assert linker.link_mention(mention, "ATTRIBUTE").node_id == value, mention
    unknown = linker.link_mention("Ultra  Violet", "ATTRIBUTE")
    assert (unknown.node_id, unknown.candidates) == ("ultra violet", [])


# -- nonsense and free text -----------------------------------------------------------------------------------
def test_nonsense_links_nothing(linker):
    for mention, typ in (("asdfgh qwerty", "PRODUCT"), ("what is the weather like", "PRODUCT"), ("zzzz", "BRAND"),
                         ("xkcd", "CATEGORY"), ("", "PRODUCT"), ("!!!", "PRODUCT"), ("nova 6", "PRODUCT")):
        e = linker.link_mention(mention, typ)
        assert e.node_id is None and e.candidates == [] and not e.ambiguous, mention
    assert linker.link_text("hello, how are you today?") == []
    assert linker.link_text("asdf qwerty zxcv") == []


def test_link_text_finds_mentions_without_model_spans(linker):
    text = "is the auroa x2 in stock? and do you sell nordic audio headphones? order #10452"
    found = {(e.type, text[e.start:e.end]): e for e in linker.link_text(text)}
    assert set(found) == {("PRODUCT", "auroa x2"), ("BRAND", "nordic audio"), ("CATEGORY", "headphones"),
                          ("ORDER_ID", "order #10452")}
    assert found[("PRODUCT", "auroa x2")].ambiguous and sorted(_ids(found[("PRODUCT", "auroa x2")])) == AURORA_X2
    assert found[("BRAND", "nordic audio")].node_id == "Nordic Audio"
    assert found[("ORDER_ID", "order #10452")].node_id == "10452"
    [e] = linker.link_text("I want the NA 700X in white please")
    assert (e.type, e.node_id, e.text) == ("PRODUCT", "NA-HP-000008", "NA 700X")


def test_link_fills_an_understanding_and_falls_back_to_free_text(linker):
    text = "how much is the nova 5 256gb in graphite"
    u = Understanding(text=text, intent=IntentScore(name="product_price", confidence=0.9),
                      entities=[Entity(type="PRODUCT", text="nova 5 256gb", start=16, end=28),
                                Entity(type="ATTRIBUTE", text="graphite", start=32, end=40)])
    out = linker.link(u)
    assert [e.node_id for e in out.entities] == ["LUM-PH-000011", "graphite"] and out.intent == u.intent
    bare = Understanding(text="is the gale 3 in volt green size 10 in stock", intent=u.intent)
    [e] = linker.link(bare).entities
    assert e.type == "PRODUCT" and e.node_id == "SW-RS-000023" and e.start == 7


def test_a_name_cut_in_two_by_the_model_is_linked_whole(linker):
    """The model may end one product span at "with" and tag the variant after it as a second
    product ("Kestrel Slate 14 with | 16 GB RAM"): linked as one mention it names the 16 GB laptop.
    Two products side by side stay two ("the Aurora X2 with the Nova 5", "Kestrel Slate 14 with
    Nova 5")."""
    intent = IntentScore(name="product_warranty", confidence=0.99)
    text = "what warranty does the Kestrel Slate 14 with 16 GB RAM have?"
    cut = Understanding(text=text, intent=intent, entities=[
        Entity(type="PRODUCT", text="Kestrel Slate 14 with", start=23, end=44),
        Entity(type="PRODUCT", text="16 GB RAM", start=45, end=54)])
    [whole] = linker.link(cut).entities
    assert whole.node_id == "KES-LT-000018" and (whole.start, whole.end) == (23, 54)
    for text, first, second in (("compare the Kestrel Slate 14 with nova 5 256gb", "Kestrel Slate 14", "nova 5 256gb"),
                                ("is the aurora x2 in nova 5 256gb", "aurora x2", "nova 5 256gb")):
        a, b = text.index(first), text.index(second)
        two = Understanding(text=text, intent=intent, entities=[
            Entity(type="PRODUCT", text=first, start=a, end=a + len(first)),
            Entity(type="PRODUCT", text=second, start=b, end=b + len(second))])
        out = linker.link(two).entities
        assert [e.text for e in out if e.type == "PRODUCT"] == [first, second]
        assert "LUM-PH-000011" in _ids(out[1])  # the Nova, on its own (either colour)


# -- following the catalog -------------------------------------------------------------------------------------
@pytest.fixture
def small_shop(store, settings, tmp_path):
    _import(store, settings, tmp_path / "v1",
            categories=[{"name": "Headphones", "parent": "", "description": "Headphones and earbuds."}],
            brands=[{"name": "Nordic Audio", "country": "Sweden"}, {"name": "Pulsewave", "country": "USA"}],
            products=[
                _product("NA-1", "Nordic Audio Aurora X2 Wireless Headphones, Black", "Nordic Audio", "Headphones",
                         {"model_line": "Aurora X2", "colour": "Black"}),
                _product("NA-2", "Nordic Audio Aurora X2 Wireless Headphones, Silver", "Nordic Audio", "Headphones",
                         {"model_line": "Aurora X2", "colour": "Silver"}),
                _product("PW-1", "Pulsewave Drift 2 Wireless Headphones, Black", "Pulsewave", "Headphones",
                         {"model_line": "Drift 2", "colour": "Black"}),
            ])
    return store


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_product_added_after_the_index_was_built_is_linked(small_shop, encoder, settings, tmp_path):
    clock = _Clock()
    lk = EntityLinker(small_shop, encoder=encoder, config=LinkerConfig(refresh_interval_s=30), clock=clock)
    lk.warm()
    assert lk.link_mention("zephyr q9", "PRODUCT").node_id is None
    _import(small_shop, settings, tmp_path / "v2", products=[
        _product("NA-9", "Nordic Audio Zephyr Q9 Sport Earbuds, Black", "Nordic Audio", "Headphones",
                 {"model_line": "Zephyr Q9", "colour": "Black"})])
    # Before the next version check the index does not know it; the graph's full-text search does.
    e = lk.link_mention("zephyr q9 earbuds", "PRODUCT")
    assert e.node_id == "NA-9" and lk.stats()["products"] == 3
    clock.t = 31  # the version check is due: the new product is indexed, incrementally
    e = lk.link_mention("zephyr q9", "PRODUCT")
    assert (e.node_id, e.score) == ("NA-9", 1.0) and lk.stats()["products"] == 4
    assert lk.link_mention("nordic audio zq9", "PRODUCT").node_id is None  # no such model number
    assert lk.link_mention("NA 9", "PRODUCT").node_id == "NA-9"  # the sku, in shopper spelling


def test_a_renamed_product_is_found_under_its_new_name(small_shop, encoder, settings, tmp_path):
    clock = _Clock()
    lk = EntityLinker(small_shop, encoder=encoder, config=LinkerConfig(refresh_interval_s=5), clock=clock)
    assert lk.link_mention("drift 2", "PRODUCT").node_id == "PW-1"
    _import(small_shop, settings, tmp_path / "v2", products=[
        _product("PW-1", "Pulsewave Tempest 7 Wireless Headphones, Black", "Pulsewave", "Headphones",
                 {"model_line": "Tempest 7", "colour": "Black"})])
    clock.t = 2
    assert lk.link_mention("drift 2", "PRODUCT").node_id == "PW-1"  # not checked yet: at most every 5 s
    clock.t = 6
    assert lk.link_mention("pulsewave tempest 7", "PRODUCT").node_id == "PW-1"
    assert lk.link_mention("drift 2", "PRODUCT").node_id is None
    assert lk.refresh(force=False) is False  # nothing changed since
    small_shop.run(_DELETE, {"skus": ["NA-2"]})
    small_shop.run(_BUMP)
    assert lk.refresh(force=True) is True
    assert lk.link_mention("aurora x2", "PRODUCT").node_id == "NA-1"  # one variant left: no longer ambiguous


class _Reads:
    """The real store, noting the name of every query run through it."""

    def __init__(self, store) -> None:
        self.store, self.names = store, []

    def __getattr__(self, name):
        return getattr(self.store, name)

    def run(self, query, *args, **kwargs):
        self.names.append(query.name)
        return self.store.run(query, *args, **kwargs)


def test_the_index_kept_on_disk_is_loaded_by_the_next_start_and_caught_up(small_shop, encoder, settings, tmp_path,
                                                                           caplog):
    path = tmp_path / "linking" / "shop.index"
    first = EntityLinker(small_shop, encoder=encoder, snapshot=path)
    first.warm()
    assert path.is_file() and first.link_mention("drift 2", "PRODUCT").node_id == "PW-1"
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    # the next start (another worker, a restart) loads it: no product is read from the graph
    second_reads = _Reads(small_shop)
    second = EntityLinker(second_reads, encoder=encoder, snapshot=path)
    second.warm()
    assert "linking.products_page" not in second_reads.names and "linking.product_fingerprints" not in \
        second_reads.names
    assert second.link_mention("drift 2", "PRODUCT").node_id == "PW-1" and second.stats()["products"] == 3
    # a catalog changed since: the start compares fingerprints, reads only what changed, and keeps the result
    _import(small_shop, settings, tmp_path / "v2", products=[
        _product("NA-9", "Nordic Audio Zephyr Q9 Sport Earbuds, Black", "Nordic Audio", "Headphones",
                 {"model_line": "Zephyr Q9", "colour": "Black"})])
    written = path.stat().st_mtime_ns
    third_reads = _Reads(small_shop)
    third = EntityLinker(third_reads, encoder=encoder, snapshot=path)
    third.warm()
    assert "linking.product_fingerprints" in third_reads.names and "linking.products_page" not in third_reads.names
    assert third.link_mention("zephyr q9", "PRODUCT").node_id == "NA-9" and third.stats()["products"] == 4
    assert path.stat().st_mtime_ns != written  # caught up once, kept for the next start
    # a damaged file, or one written by other code, is rebuilt from the graph (and replaced), never served
    for damage in (b"kgqa-linking-index\nnot-this-code\n", b"kgqa-linking-index\n" + snapshot.LAYOUT + b"\ngarbage"):
        path.write_bytes(damage)
        reads = _Reads(small_shop)
        fresh = EntityLinker(reads, encoder=encoder, snapshot=path)
        fresh.warm()
        assert "linking.products_page" in reads.names and fresh.link_mention("zephyr q9", "PRODUCT").node_id == "NA-9"
        assert snapshot.load(path) is not None
    assert any("unreadable" in r.getMessage() for r in caplog.records)


def test_workers_starting_together_build_the_index_once(small_shop, encoder, tmp_path):
    import threading

    path = tmp_path / "linking" / "shop.index"
    reads = [_Reads(small_shop) for _ in range(3)]
    linkers = [EntityLinker(r, encoder=encoder, snapshot=path) for r in reads]
    threads = [threading.Thread(target=lk.warm) for lk in linkers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum("linking.products_page" in r.names for r in reads) == 1  # the first built it, the others loaded
    assert all(lk.link_mention("drift 2", "PRODUCT").node_id == "PW-1" for lk in linkers)


def test_lines_are_kept_packed_and_read_back_whole(tmp_path):
    """The index keeps its lines as bytes (LineStore) and gives back what make_line made, field for
    field; an update leaves the snapshot before it readable (copy-on-write) and a full pass
    (iter_lines) reads every line."""
    import dataclasses

    from nlu.linking.index import LineIndex, ProductRecord, make_line

    generate(tmp_path, products=300, customers=1, orders=0, today=dt.date(2026, 12, 7))
    with (tmp_path / "products.csv").open(encoding="utf-8") as fh:
        recs = {r["sku"]: ProductRecord.from_row({**r, "h": "1"}) for r in csv.DictReader(fh)}
    idx = LineIndex().apply(recs)
    fields = [f.name for f in dataclasses.fields(make_line(0, [next(iter(recs.values()))]))]
    assert len(idx.lines) > 50 and all(isinstance(b, bytes) for b in idx.lines.blobs.values())
    for lid in idx.lines:
        line = idx.lines[lid]
        fresh = make_line(lid, [recs[s] for s in line.skus])
        assert [getattr(line, f) for f in fields] == [getattr(fresh, f) for f in fields]
    lid = idx.line_of["NA-HP-000001"]
    assert idx.lines[lid] is idx.lines[lid]  # decoded once, then from the LRU
    assert sorted(line.lid for line in idx.lines.iter_lines()) == sorted(idx.lines)
    renamed = dataclasses.replace(recs["NA-HP-000001"], name="Nordic Audio Borealis Studio Headphones",
                                  attributes=(("model_line", "Borealis Studio"),), h="2")
    after = idx.apply({"NA-HP-000001": renamed}, fetch=lambda skus: [recs[s] for s in skus])
    assert "NA-HP-000001" in idx.lines[lid].skus  # the old snapshot still reads its line
    moved = after.lines[after.line_of["NA-HP-000001"]]
    assert moved.name == "Borealis Studio" and moved.skus == ("NA-HP-000001",)
    assert "NA-HP-000001" not in after.lines[after.line_of["NA-HP-000002"]].skus
    assert len(after.lines) == len(idx.lines) + 1


def test_fulltext_search_terms_cannot_carry_search_syntax():
    assert linking_queries.fulltext_terms(["aurora", "x2", "na700x"], "falkordb") == "%aurora%|x2|na700x"
    assert linking_queries.fulltext_terms(["aurora", "x2"], "neo4j") == "aurora~1 x2"
    assert linking_queries.fulltext_terms(["a|b", "@name:x", "%", "*", "ok"], "falkordb") == "ok"
    assert linking_queries.fulltext_terms([], "falkordb") == ""
    assert linking_queries.FULLTEXT_PRODUCTS.read_only and "neo4j" in linking_queries.FULLTEXT_PRODUCTS.variants


# -- accuracy ------------------------------------------------------------------------------------------------
def test_linking_accuracy_on_held_out_products(linker):
    records, brands, categories = linker.indexed()
    examples = build_examples(records, brands=brands, categories=categories, per_product=2)
    report = evaluate_linking(linker, examples)
    assert report.n >= 300 and report.n_ambiguous >= 100
    assert report.accuracy >= 0.95, report.errors[:10]
    assert report.ambiguity_detection is not None and report.ambiguity_detection >= 0.95
    assert report.brand_accuracy == 1.0 and report.category_accuracy is not None and report.category_accuracy >= 0.95


def test_linking_accuracy_on_the_understanding_models_held_out_set(shop, linker):
    """The same on gold spans of nlu/dataset.py's held-out evaluation set: another generator's
    shopper-style names (its own shortenings, casing and typos), in whole messages."""
    examples = examples_from_nlu_eval(shop, fills=1)
    report = evaluate_linking(linker, examples)
    assert report.n >= 50 and report.n_ambiguous >= 50
    assert report.accuracy >= 0.95, report.errors[:10]
    assert report.ambiguity_detection is not None and report.ambiguity_detection >= 0.95
    assert all(v >= 0.95 for v in report.type_accuracy.values()), report.type_accuracy


# -- another shop's catalog: names unlike the training data ------------------------------------------
OTHER_SHOP = {
    "brands.csv": "name,country\nMüller & Söhne,Germany\n3M,United States\nLEGO,Denmark\n",
    "categories.csv": "name,parent,description\nToys,,\nBuilding Sets,Toys,\nKitchen,,\n",
    "products.csv": (
        "sku,name,brand,category,price,currency,stock,status,attributes\n"
        "LEGO-42115,LEGO Technic Lamborghini Sián FKP 37,LEGO,Building Sets,379.99,EUR,4,active,\n"
        "LEGO-10497,LEGO Icons Galaxy Explorer,LEGO,Building Sets,99.99,EUR,0,active,\n"
        "MS-PAN-28,Müller & Söhne Bratpfanne 28 cm,Müller & Söhne,Kitchen,49.5,EUR,12,active,size=28 cm\n"
        "MS-PAN-24,Müller & Söhne Bratpfanne 24 cm,Müller & Söhne,Kitchen,39.5,EUR,3,active,size=24 cm\n"
        "3M-8210,3M 8210 Respirator (20 pack),3M,Kitchen,24.0,EUR,100,active,\n"),
}


@pytest.fixture(scope="module")
def other_linker(falkordb_server, tmp_path_factory, encoder):
    directory = tmp_path_factory.mktemp("other_shop")
    for name, text in OTHER_SHOP.items():
        (directory / name).write_text(text, encoding="utf-8")
    settings = Settings(_env_file=None, graph_url="falkordb://embedded", data_dir=falkordb_server.data_dir,
                        graph_name=f"other_{uuid.uuid4().hex[:8]}")
    store = FalkorDBStore.from_settings(settings)
    ensure_schema(store)
    assert import_path(store, directory, settings=settings, progress=False).ok
    yield EntityLinker(store, encoder=encoder, currency="EUR")
    store.redis.execute_command("GRAPH.DELETE", store.graph_name)
    store.close()


def test_a_distinctive_word_links_a_product_of_another_catalog(other_linker):
    """One or two words that occur in the names of only a few model lines ("the lamborghini")."""
    for mention, sku in [("the lamborghini", "LEGO-42115"), ("sian", "LEGO-42115"), ("galaxy", "LEGO-10497"),
                         ("lego lamborghini", "LEGO-42115")]:
        assert other_linker.link_mention(mention, "PRODUCT").node_id == sku, mention
    lego = other_linker.link_mention("lego", "PRODUCT")  # in both LEGO lines: ask which
    assert lego.ambiguous and set(_ids(lego)) == {"LEGO-42115", "LEGO-10497"}
    assert other_linker.link_mention("pan", "PRODUCT").node_id is None  # too short to tell anything
    assert not other_linker.link_mention("unicorn", "PRODUCT").candidates


def test_a_product_tagged_as_something_else_is_linked_as_a_product(other_linker):
    def understanding(intent: str, *spans: tuple[str, str], text: str) -> Understanding:
        ents = [Entity(type=t, text=m, start=text.index(m), end=text.index(m) + len(m)) for m, t in spans]
        return Understanding(text=text, intent=IntentScore(name=intent, confidence=0.9), entities=ents)

    text = "price of 3m 8210"
    out = other_linker.link(understanding("product_price", ("3m 8210", "ORDER_ID"), text=text))
    assert [(e.type, e.node_id, e.start, e.end) for e in out.entities] == [("PRODUCT", "3M-8210", 9, 16)]
    text = "how much is the lamborghini lego?"
    out = other_linker.link(understanding("product_price", ("lamborghini", "BRAND"), ("lego", "CATEGORY"), text=text))
    assert "LEGO-42115" in [e.node_id for e in out.entities if e.type == "PRODUCT"]
    # an order question keeps its order id; a product question with a linked product is left alone
    text = "where is order 3m 8210"
    out = other_linker.link(understanding("track_order", ("3m 8210", "ORDER_ID"), text=text))
    assert [e.type for e in out.entities] == ["ORDER_ID"]
    text = "is the galaxy explorer from 3M?"
    out = other_linker.link(understanding("product_availability", ("galaxy explorer", "PRODUCT"), ("3M", "BRAND"),
                                          text=text))
    assert [(e.type, e.node_id) for e in out.entities] == [("PRODUCT", "LEGO-10497"), ("BRAND", "3M")]


def test_an_index_in_the_graph_links_as_one_in_memory_with_common_words_capped(shop, encoder):
    """Postings of a word in more lines than `posting_cap` come back from the graph as their length alone
    (`CappedPosting`); linking must not change for it: held-out mentions linked both ways, same answers."""
    config = LinkerConfig(refresh_interval_s=3600, posting_cap=10, use_embeddings=False)
    memory = EntityLinker(shop, encoder=encoder, config=config)
    graph = EntityLinker(shop, encoder=encoder, config=config, in_graph=True)
    graph.warm()
    capped = [w for w in ("wireless", "headphones", "black", "usb") if
              isinstance(graph._current().lines.postings.get(w), CappedPosting)]
    assert capped  # the sample store has words in more than 10 lines
    records, brands, categories = memory.indexed()
    examples = build_examples(records, brands=brands, categories=categories, per_product=1)[:300]
    for ex in examples:
        a, b = memory.link_mention(ex.mention, ex.type), graph.link_mention(ex.mention, ex.type)
        assert (a.node_id, a.ambiguous, [c.node_id for c in a.candidates]) == \
            (b.node_id, b.ambiguous, [c.node_id for c in b.candidates]), ex.mention
