"""Product-name vectors kept in the graph (kg/embeddings.py, LINKING_VECTORS=graph): written at
import and on a single-product edit, one per vector text (a line's variants share it), only for
texts without one; searched by the linker through the graph's vector index (nothing catalog-sized
embedded in the worker); a catalog imported before (or with vectors kept per product) is filled by
`kgqa graph embed`, and readiness waits for it. The sentence encoder run by onnxruntime gives the
vectors sentence-transformers gives. A real embedded FalkorDB and the real sentence encoder throughout."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from common import bootstrap
from common.settings import Settings
from kg.catalog.service import NameVectors
from kg.embeddings import fill_embeddings, stale_count, vector_index_status
from kg.loader import import_path
from kg.queries import get
from nlu.linking import LinkerConfig
from nlu.linking.encoder import TextEncoder
from tests.api_support import build_api, drop_api
from tests.test_dialogue_support import encoder  # noqa: F401 - the shared sentence encoder fixture

BRANDS = "name,country\nNordic Audio,SE\nVoltara,DE\nLumen,FR\n"
CATEGORIES = "name,parent,description\nElectronics,,\nHeadphones,Electronics,\nTools,,\nStationery,,\n"
PRODUCTS = """sku,name,brand,category,price,currency,stock,description,warranty_months,rating,status,attributes
NA-1,Nordic Audio Aurora X2 Wireless Headphones,Nordic Audio,Headphones,249.99,EUR,5,,24,4.5,active,
NA-1S,"Aurora X2 Wireless Headphones, Silver",Nordic Audio,Headphones,249.99,EUR,5,,24,4.5,active,"{""color"": ""Silver""}"
NA-2,Nordic Audio Tempo Sport Earbuds,Nordic Audio,Headphones,99.00,EUR,5,,12,4.1,active,
VT-1,Voltara 18V Cordless Drill,Voltara,Tools,129.00,EUR,5,,24,4.4,active,
VT-2,Voltara Orbital Sander,Voltara,Tools,89.00,EUR,5,,24,4.0,active,
LU-1,Lumen Dotted Pocket Notebook,Lumen,Stationery,6.50,EUR,50,,0,4.7,active,
LU-2,Lumen Fountain Pen,Lumen,Stationery,24.00,EUR,20,,0,4.6,active,
"""


def _files(root: Path, products: str = PRODUCTS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "brands.csv").write_text(BRANDS)
    (root / "categories.csv").write_text(CATEGORIES)
    (root / "products.csv").write_text(products)
    return root


@pytest.fixture
def graph_mode(falkordb_server, encoder):  # noqa: F811 - the fixture imported above
    """The composition root in LINKING_VECTORS=graph, with a spy counting the names embedded."""
    settings = Settings(_env_file=None, graph_url="falkordb://embedded", data_dir=falkordb_server.data_dir,
                        graph_name=f"vec_{uuid.uuid4().hex[:10]}", falkordb_appendfsync="always",
                        linking_vectors="graph", llm_backend="none")
    app = bootstrap.build(settings, encoder_model=encoder, linker_config=LinkerConfig(refresh_interval_s=0.0),
                          examples=None)
    embedded: list[str] = []
    assert app.catalog.vectors is not None  # graph mode: the catalog service embeds
    real = app.catalog.vectors

    def counting(names):
        embedded.extend(names)
        return real.embed(names)

    app.catalog.vectors = NameVectors(embed=counting, dimension=real.dimension, text=real.text, space=real.space)
    yield app, embedded
    app.store.redis.execute_command("GRAPH.DELETE", settings.graph_name)
    app.close()


def test_import_embeds_each_name_once_and_an_edit_only_its_own(graph_mode, tmp_path):
    app, embedded = graph_mode
    data = _files(tmp_path / "shop")
    report = app.catalog.import_path(data, progress=False)
    # seven products, six texts: the silver variant shares the headphones' text (brand, no colour)
    assert report.ok and len(embedded) == 6 and "Nordic Audio Aurora X2 Wireless Headphones" in embedded
    store = app.graph()
    assert stale_count(store, app.encoder.space) == 0 and vector_index_status(store) == "OPERATIONAL"
    assert store.run(get("embeddings.count"))[0]["vectors"] == 6
    # an unchanged re-import embeds nothing; a price change embeds nothing either
    app.catalog.import_path(data, progress=False)
    _files(data, PRODUCTS.replace("129.00", "119.00"))
    app.catalog.import_path(data, progress=False)
    assert len(embedded) == 6
    # a rename through the single-product API embeds that name alone, and the search follows it
    app.catalog.patch("LU-2", {"name": "Lumen Calligraphy Fountain Pen"})
    assert embedded[6:] == ["Lumen Calligraphy Fountain Pen"]
    vec = app.encoder.encode(["calligraphy pen"])[0]
    rows = store.run(get("embeddings.similar_products"), {"k": 1, "fetch": 10, "vector": [float(x) for x in vec]})
    assert rows[0]["sku"] == "LU-2" and rows[0]["cosine"] > 0.5
    # the old text's vector went with the last product naming it
    assert store.run(get("embeddings.have"), {"texts": ["Lumen Fountain Pen"]}) == []
    vec = app.encoder.encode(["aurora x2 headphones"])[0]
    rows = store.run(get("embeddings.similar_products"), {"k": 2, "fetch": 10, "vector": [float(x) for x in vec]})
    assert sorted(r["sku"] for r in rows) == ["NA-1", "NA-1S"]  # both variants found by their one vector


def test_the_linker_searches_names_by_meaning_in_the_graph(graph_mode, tmp_path):
    app, _ = graph_mode
    app.catalog.import_path(_files(tmp_path / "shop"), progress=False)
    linker = app.linker
    assert linker is not None and linker.config.graph_vectors
    linker.warm()
    state = linker._current()
    assert state.graph_vectors and len(state.line_emb) == 0  # no catalog vectors in this worker
    idx = state.lines

    def nearest(text: str) -> str:
        lid, _ = linker._nearest_lines(linker._current(), app.encoder.encode_query(text))[0]
        return sorted(idx.lines[lid].skus)[0]

    assert nearest("battery powered screwdriver") == "VT-1"  # no word of any product name
    headphones = linker.link_mention("wireless headphones by nordic")  # the line's two colours: asked back
    assert headphones.ambiguous and sorted(c.node_id for c in headphones.candidates) == ["NA-1", "NA-1S"]
    # a product added after start is found by meaning at once: its vector was written at import
    more = PRODUCTS + "NA-3,Nordic Audio Studio Monitor Speakers,Nordic Audio,Electronics,399.00,EUR,3,,24,4.8,active,\n"
    app.catalog.import_path(_files(tmp_path / "shop", more), progress=False)
    idx = linker._current().lines
    assert nearest("loudspeakers for a recording studio") == "NA-3"
    assert len(linker._current().line_emb) == 0


def test_a_catalog_imported_before_is_filled_by_the_migration_and_readiness_waits(falkordb_server, tmp_path):
    a = build_api(falkordb_server.data_dir, linking_vectors="graph")
    try:
        # imported without vectors (as before this version): not ready, and the report says why
        import_path(a.store, _files(tmp_path / "shop"), settings=a.settings, progress=False)
        # a vector kept per product, as the version before this one did, is replaced
        a.store.redis.execute_command("GRAPH.QUERY", a.settings.graph_name, "CREATE (:NameVector {sku: 'NA-1', "
                                      "name: 'Nordic Audio Aurora X2 Wireless Headphones', embedding: vecf32([0.5])})")
        a.services.engine()
        r = a.client.get("/readyz")
        assert r.status_code == 503
        assert r.get_json()["checks"]["vectors"] == {"ok": False, "to_embed": 7, "hint": "run ./kgqa graph embed"}
        env = {"GRAPH_URL": a.settings.graph_url, "DATA_DIR": str(a.settings.data_dir),
               "GRAPH_NAME": a.settings.graph_name, "LINKING_VECTORS": "graph"}
        from kgqa_cli import main

        result = CliRunner().invoke(main, ["graph", "embed"], env=env, catch_exceptions=False)
        assert result.exit_code == 0 and "6 product names embedded" in result.output, result.output
        again = CliRunner().invoke(main, ["graph", "embed"], env=env, catch_exceptions=False)
        assert "every product name has its vector" in again.output
        assert a.store.run(get("embeddings.count"))[0]["vectors"] == 6  # the per-product vector is gone
        a.services._vectors_checked = None  # the count is cached for a few seconds
        body = a.client.get("/readyz").get_json()
        assert body["checks"]["vectors"] == {"ok": True, "to_embed": 0} and body["status"] == "ready"
        # once none is missing, products are counted again only after the catalog version moved
        services, graph = a.services, a.settings.graph_name
        a.store.redis.execute_command("GRAPH.QUERY", graph, "MATCH (p:Product {sku: 'NA-1'}) SET p.name = 'Aurora X3'")
        services._vectors_checked = services._vectors_checked._replace(at=0.0)  # as if 30 s had passed
        assert services.vectors_to_embed() == 0  # the same catalog version: not counted again
        a.store.redis.execute_command("GRAPH.QUERY", graph, "MATCH (m:Meta {key: 'catalog'}) SET m.version = m.version + 1")
        services._vectors_checked = services._vectors_checked._replace(at=0.0)
        assert services.vectors_to_embed() == 1  # counted again: the renamed product needs its vector
        assert a.client.get("/readyz").status_code == 503
        # the running worker's linker takes the vectors up at its next check (no catalog version moved)
        linker = a.services.container.linker
        assert linker is not None and not linker._current().graph_vectors
        linker.config = linker.config.model_copy(update={"refresh_interval_s": 0.0})
        assert linker.refresh() and linker._current().graph_vectors
    finally:
        drop_api(a)


def test_the_vector_index_is_rebuilt_after_many_renames(graph_mode, tmp_path):
    """FalkorDB keeps an entry for every removed vector among the nearest neighbours: after a
    fifth of the vectors were removed (their texts renamed away) the index is built again, and
    searches return every row."""
    app, embedded = graph_mode
    app.catalog.import_path(_files(tmp_path / "shop"), progress=False)
    store = app.graph()
    vec = [float(x) for x in app.encoder.encode(["headphones"])[0]]
    app.catalog.patch("NA-2", {"name": "Nordic Audio Tempo Run Earbuds"})
    churn = store.run_untrusted_read("MATCH (m:Meta {key: 'name_vectors'}) RETURN m.replaced AS r", None,
                                     row_limit=1, timeout_ms=5000).rows
    assert churn == [{"r": 1}]  # one of six: below the share
    app.catalog.patch("VT-1", {"name": "Voltara 18V Brushless Drill"})  # two of six: rebuilt
    churn = store.run_untrusted_read("MATCH (m:Meta {key: 'name_vectors'}) RETURN m.replaced AS r", None,
                                     row_limit=1, timeout_ms=5000).rows
    assert churn == [{"r": 0}] and vector_index_status(store) == "OPERATIONAL"
    rows = store.run(get("embeddings.similar_products"), {"k": 6, "fetch": 6, "vector": vec})
    assert len(rows) == 6
    assert fill_embeddings(store, app.catalog.vectors.embed, 384, app.catalog.vectors.text,
                           space=app.catalog.vectors.space()) == 0  # nothing stale


def test_vectors_of_another_encoder_are_made_again_and_never_mixed(graph_mode, tmp_path):
    """The graph's vectors are stamped with the encoder that made them: another encoder (another
    model, or int8 weights instead of float32) finds every product stale, makes every vector again,
    and a single-product edit leaves them alone until it has."""
    app, embedded = graph_mode
    app.catalog.import_path(_files(tmp_path / "shop"), progress=False)
    store = app.graph()
    old = app.catalog.vectors
    assert old is not None and stale_count(store, old.space()) == 0
    assert stale_count(store, "another-encoder") == 7  # readiness of a worker with another encoder
    other = NameVectors(embed=old.embed, dimension=old.dimension, text=old.text, space=lambda: "another-encoder")
    app.catalog.vectors = other
    app.catalog.patch("LU-2", {"name": "Lumen Calligraphy Fountain Pen"})  # not now: the vectors are the old encoder's
    assert len(embedded) == 6 and stale_count(store, old.space()) == 1
    assert app.catalog.fill_vectors() == 6  # every text again, in the new space, the old vectors gone
    assert embedded[6:] and "Lumen Calligraphy Fountain Pen" in embedded[6:]
    assert store.run(get("embeddings.count"))[0]["vectors"] == 6
    assert stale_count(store, "another-encoder") == 0 and stale_count(store, old.space()) == 7
    assert vector_index_status(store) == "OPERATIONAL"
    vec = app.encoder.encode(["calligraphy pen"])[0]
    rows = store.run(get("embeddings.similar_products"), {"k": 1, "fetch": 10, "vector": [float(x) for x in vec]})
    assert rows[0]["sku"] == "LU-2"
    assert app.catalog.fill_vectors() == 0  # and once made, nothing more


def test_the_onnx_encoder_gives_the_sentence_transformers_vectors(encoder, tmp_path):  # noqa: F811
    settings = Settings(_env_file=None)
    names = ["Nordic Audio Aurora X2 Wireless Headphones", "18V drill", "a pen", "x" * 3000]  # the last: truncated
    given = TextEncoder(settings.encoder_path, model=encoder)  # sentence-transformers, as given
    onnx = TextEncoder(settings.encoder_path, runtime="onnx", cache_dir=str(tmp_path))
    assert given.runtime == "given" and onnx._onnx_encoder() is not None
    assert np.abs(onnx.encode(names) - given.encode(names)).max() < 1e-4
    # bulk work (an import) runs on every core, in a session of its own: the same numbers
    assert np.abs(onnx.encode_bulk(names * 20)[:4] - given.encode(names)).max() < 1e-4
    assert np.allclose(np.linalg.norm(onnx.encode(names), axis=1), 1.0, atol=1e-5)
    cached = list(tmp_path.glob("sentence-*.onnx"))
    assert len(cached) == 1  # exported once, read by every later load
    again = TextEncoder(settings.encoder_path, runtime="onnx", cache_dir=str(tmp_path))
    assert np.abs(again.encode(names) - onnx.encode(names)).max() < 1e-6
    assert list(tmp_path.glob("sentence-*.onnx")) == cached


def test_int8_weights_keep_the_vectors_close_and_name_their_own_space(encoder, tmp_path):  # noqa: F811
    """ENCODER_PRECISION=int8 (the default): the float32 graph quantised once and cached beside it;
    its vectors stay close to float32's and rank names alike, and its space is not float32's."""
    settings = Settings(_env_file=None)
    names = ["Nordic Audio Aurora X2 Wireless Headphones", "Voltara 18V Cordless Drill", "Lumen Fountain Pen",
             "Lumen Dotted Pocket Notebook", "wireless headphones", "battery powered screwdriver", "a pen to write with"]
    full = TextEncoder(settings.encoder_path, runtime="onnx", cache_dir=str(tmp_path))
    int8 = TextEncoder(settings.encoder_path, runtime="onnx", cache_dir=str(tmp_path), precision="int8")
    a, b = full.encode(names), int8.encode(names)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.97
    assert [int(np.argmax(a[:4] @ q)) for q in a[4:]] == [int(np.argmax(b[:4] @ q)) for q in b[4:]] == [0, 1, 2]
    assert np.abs(int8.encode_bulk(names * 10)[:len(names)] - b).max() < 1e-3  # bulk: the same graph on every core
    assert len(list(tmp_path.glob("sentence-*.onnx"))) == 2  # float32, and int8 made from it
    assert full.space != int8.space and int8.space.split(":")[1] == "int8"
    again = TextEncoder(settings.encoder_path, runtime="onnx", cache_dir=str(tmp_path), precision="int8")
    assert again.space == int8.space and np.abs(again.encode(names) - b).max() < 1e-6


def test_an_encoder_of_another_form_runs_in_sentence_transformers(tmp_path):
    """A sentence-transformers model pooling its CLS token (not the mean) is not exported."""
    src = Path(Settings(_env_file=None).encoder_path)
    other = tmp_path / "cls-encoder"
    (other / "1_Pooling").mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file():
            (other / f.name).symlink_to(f)
    pooling = json.loads((src / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (other / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    enc = TextEncoder(str(other), runtime="onnx", cache_dir=str(tmp_path))
    assert enc._onnx_encoder() is None
    vecs = enc.encode(["a pen", "a drill"])
    assert vecs.shape == (2, 384) and not list(tmp_path.glob("sentence-*.onnx"))
