"""Product-name vectors kept in the graph (kg/embeddings.py, LINKING_VECTORS=graph): written at
import and on a single-product edit, only for names without one; searched by the linker through
the graph's vector index (nothing catalog-sized embedded in the worker); a catalog imported
before is filled by `kgqa graph embed`, and readiness waits for it. A real embedded FalkorDB and
the real sentence encoder throughout."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from common import bootstrap
from common.settings import Settings
from kg.catalog.service import NameVectors
from kg.embeddings import fill_embeddings, stale_count, vector_index_status
from kg.loader import import_path
from kg.queries import get
from nlu.linking import LinkerConfig
from tests.api_support import build_api, drop_api
from tests.test_dialogue_support import encoder  # noqa: F401 - the shared sentence encoder fixture

BRANDS = "name,country\nNordic Audio,SE\nVoltara,DE\nLumen,FR\n"
CATEGORIES = "name,parent,description\nElectronics,,\nHeadphones,Electronics,\nTools,,\nStationery,,\n"
PRODUCTS = """sku,name,brand,category,price,currency,stock,description,warranty_months,rating,status,attributes
NA-1,Nordic Audio Aurora X2 Wireless Headphones,Nordic Audio,Headphones,249.99,EUR,5,,24,4.5,active,
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

    app.catalog.vectors = NameVectors(embed=counting, dimension=real.dimension)
    yield app, embedded
    app.store.redis.execute_command("GRAPH.DELETE", settings.graph_name)
    app.close()


def test_import_embeds_each_name_once_and_an_edit_only_its_own(graph_mode, tmp_path):
    app, embedded = graph_mode
    data = _files(tmp_path / "shop")
    report = app.catalog.import_path(data, progress=False)
    assert report.ok and len(embedded) == 6
    store = app.graph()
    assert stale_count(store) == 0 and vector_index_status(store) == "OPERATIONAL"
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
        return sorted(s for s, line in idx.line_of.items() if line == lid)[0]

    assert nearest("battery powered screwdriver") == "VT-1"  # no word of any product name
    assert linker.link_mention("wireless headphones by nordic").node_id == "NA-1"
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
        a.services.engine()
        r = a.client.get("/readyz")
        assert r.status_code == 503
        assert r.get_json()["checks"]["vectors"] == {"ok": False, "to_embed": 6, "hint": "run ./kgqa graph embed"}
        env = {"GRAPH_URL": a.settings.graph_url, "DATA_DIR": str(a.settings.data_dir),
               "GRAPH_NAME": a.settings.graph_name, "LINKING_VECTORS": "graph"}
        from kgqa_cli import main

        result = CliRunner().invoke(main, ["graph", "embed"], env=env, catch_exceptions=False)
        assert result.exit_code == 0 and "6 product names embedded" in result.output, result.output
        again = CliRunner().invoke(main, ["graph", "embed"], env=env, catch_exceptions=False)
        assert "every product name has its vector" in again.output
        a.services._vectors_checked = None  # the count is cached for a few seconds
        body = a.client.get("/readyz").get_json()
        assert body["checks"]["vectors"] == {"ok": True, "to_embed": 0} and body["status"] == "ready"
        # the running worker's linker takes the vectors up at its next check (no catalog version moved)
        linker = a.services.container.linker
        assert linker is not None and not linker._current().graph_vectors
        linker.config = linker.config.model_copy(update={"refresh_interval_s": 0.0})
        assert linker.refresh() and linker._current().graph_vectors
    finally:
        drop_api(a)


def test_the_vector_index_is_rebuilt_after_many_renames(graph_mode, tmp_path):
    """FalkorDB keeps an entry for every replaced vector among the nearest neighbours: after a
    fifth of the vectors were replaced the index is built again, and searches return every row."""
    app, embedded = graph_mode
    app.catalog.import_path(_files(tmp_path / "shop"), progress=False)
    store = app.graph()
    vec = [float(x) for x in app.encoder.encode(["headphones"])[0]]
    app.catalog.patch("NA-1", {"name": "Nordic Audio Aurora X3 Wireless Headphones"})
    churn = store.run_untrusted_read("MATCH (m:Meta {key: 'name_vectors'}) RETURN m.replaced AS r", None,
                                     row_limit=1, timeout_ms=5000).rows
    assert churn == [{"r": 1}]  # one of six: below the share
    app.catalog.patch("VT-1", {"name": "Voltara 18V Brushless Drill"})  # two of six: rebuilt
    churn = store.run_untrusted_read("MATCH (m:Meta {key: 'name_vectors'}) RETURN m.replaced AS r", None,
                                     row_limit=1, timeout_ms=5000).rows
    assert churn == [{"r": 0}] and vector_index_status(store) == "OPERATIONAL"
    rows = store.run(get("embeddings.similar_products"), {"k": 6, "fetch": 6, "vector": vec})
    assert len(rows) == 6
    assert fill_embeddings(store, app.catalog.vectors.embed, 384) == 0  # nothing stale: nothing embedded
