"""The linking index kept in the graph (nlu/linking/graph_index.py, kg/queries/link_index.py): kept
up to date by whichever process sees the catalog move, shared by every worker, equal to an index
built from nothing after any sequence of changes, and never written over by a writer that read an
older version. Real embedded FalkorDB, real encoder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from test_linking import _BUMP, _DELETE, _Clock, _import, _Reads

from common.settings import Settings
from kg.queries import q
from kg.schema import wait_for_indexes
from nlu.linking import EntityLinker, LinkerConfig
from nlu.linking import graph_index as G
from nlu.linking.encoder import TextEncoder
from nlu.linking.index import LineIndex, ProductRecord, unpack_line

_ENTRIES = q("test_graph_index.entries",
             "MATCH (e) WHERE e:LinkKey OR e:LinkValue OR e:LinkStat OR e:LinkWord OR e:LinkTerm OR e:LinkProduct "
             "RETURN labels(e)[0] AS label, e.k AS k, e.v AS v")
_LINES = q("test_graph_index.lines", "MATCH (e:LinkLine) RETURN e.k AS k, e.v AS v, e.dead AS dead")
_ALL = q("test_graph_index.all_products", "MATCH (p:Product) RETURN p.sku AS sku")


def _product(sku: str, name: str, brand: str, attrs: dict) -> dict:
    return {"sku": sku, "name": name, "brand": brand, "category": "Headphones", "price": "99.00",
            "currency": "USD", "stock": "5", "status": "active", "attributes": json.dumps(attrs)}


V1 = [
    _product("NA-1", "Nordic Audio Aurora X2 Wireless Headphones, Black", "Nordic Audio",
             {"model_line": "Aurora X2", "colour": "Black", "maker": "Nordic Works"}),
    _product("NA-2", "Nordic Audio Aurora X2 Wireless Headphones, Silver", "Nordic Audio",
             {"model_line": "Aurora X2", "colour": "Silver", "maker": "Nordic Works"}),
    _product("PW-1", "Pulsewave Drift 2 Wireless Headphones, Black", "Pulsewave",
             {"model_line": "Drift 2", "colour": "Black", "maker": "Wave Labs"}),
]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder(Settings(_env_file=None).encoder_path)


@pytest.fixture
def shop(store, settings, tmp_path):
    _import(store, settings, tmp_path / "v1", products=V1,
            categories=[{"name": "Headphones", "parent": "", "description": "Headphones and earbuds."}],
            brands=[{"name": "Nordic Audio", "country": "Sweden"}, {"name": "Pulsewave", "country": "USA"}])
    return store


def _worker(store, encoder, clock, tmp_path: Path, **config) -> EntityLinker:
    return EntityLinker(store, encoder=encoder, clock=clock, in_graph=True, snapshot=tmp_path / "linking" / "g.index",
                        config=LinkerConfig(refresh_interval_s=5, use_embeddings=False, **config))


def _graph_entries(store) -> dict:
    """What the graph's index says, with line ids replaced by the lines' keys (ids differ between builds)."""
    lines = {r["k"]: unpack_line(G._blob_in(r["v"])) for r in store.run(_LINES) if r["dead"] is None}
    key_of = {int(k.split(":", 1)[1]): line.key for k, line in lines.items()}
    out: dict = {}
    for r in store.run(_ENTRIES):
        code, _, key = r["k"].partition(":")
        v = r["v"]
        if code in ("t", "ti", "cv"):
            v = sorted(key_of[lid] for lid in v)
        elif code in ("o", "k"):
            v = key_of[int(v)]
        elif isinstance(v, list):
            v = sorted(v)
        out[(code, key)] = v
    return out


def _built_entries(store, linker: EntityLinker) -> dict:
    """The same for an index built in memory from the catalog as it is now."""
    built = LineIndex().apply({r.sku: r for r in linker._all_products()})
    key_of = {lid: built.lines[lid].key for lid in built.lines}
    out: dict = {}
    delta = G.full_delta(built)
    for name, entries in delta.maps.items():
        if name == "lines":
            continue
        spec = G.SPECS[name]
        for key, v in entries.items():
            if name in ("postings", "by_title", "common_values"):
                v = sorted(key_of[lid] for lid in v)
            elif name in ("line_of", "by_key"):
                v = key_of[v]
            elif isinstance(v, tuple):
                v = sorted(v)
            out[(spec.code, spec.key(key))] = v
    return out


def test_two_workers_share_one_index_that_follows_the_catalog(shop, encoder, settings, tmp_path):
    clock = _Clock()
    reads_a, reads_b = _Reads(shop), _Reads(shop)
    a, b = _worker(reads_a, encoder, clock, tmp_path), _worker(reads_b, encoder, clock, tmp_path)
    a.warm()
    assert "link_index.create" in reads_a.names  # the first one builds it
    assert "system.indexes_building" in reads_a.names and wait_for_indexes(shop, 5.0) == {}  # after the graph's indexes
    b.warm()
    assert not {"link_index.create", "link_index.write", "linking.products_page"} & set(reads_b.names)  # the next reads it
    assert b.link_mention("aurora x2 silver", "PRODUCT").node_id == "NA-2"
    assert a.stats()["products"] == b.stats()["products"] == 3

    _import(shop, settings, tmp_path / "v2", products=[
        _product("NA-9", "Nordic Audio Zephyr Q9 Sport Earbuds, Black", "Nordic Audio",
                 {"model_line": "Zephyr Q9", "colour": "Black", "maker": "Nordic Works"})])
    clock.t = 6  # both check the catalog: one writes the change, the other finds it written
    reads_a.names.clear()
    reads_b.names.clear()
    assert (a.link_mention("zephyr q9", "PRODUCT").node_id, b.link_mention("zephyr q9", "PRODUCT").node_id) == \
        ("NA-9", "NA-9")
    assert reads_a.names.count("link_index.write") == 1 and "link_index.write" not in reads_b.names
    assert "linking.products_page" not in reads_a.names + reads_b.names  # no full read of the catalog
    assert G.read_meta(shop).products == 4 and a.stats()["products"] == b.stats()["products"] == 4


def test_after_any_changes_the_index_equals_one_built_from_nothing(shop, encoder, settings, tmp_path):
    clock = _Clock()
    lk = _worker(shop, encoder, clock, tmp_path)
    lk.warm()
    assert _graph_entries(shop) == _built_entries(shop, lk)
    # a rename that moves a product to another line, a new variant, a changed attribute, a removal
    _import(shop, settings, tmp_path / "v2", products=[
        _product("PW-1", "Pulsewave Tempest 7 Wireless Headphones, Black", "Pulsewave",
                 {"model_line": "Tempest 7", "colour": "Black", "maker": "Wave Labs"}),
        _product("NA-3", "Nordic Audio Aurora X2 Wireless Headphones, Sand", "Nordic Audio",
                 {"model_line": "Aurora X2", "colour": "Sand", "maker": "Nordic Works"}),
        _product("NA-1", "Nordic Audio Aurora X2 Wireless Headphones, Black", "Nordic Audio",
                 {"model_line": "Aurora X2", "colour": "Black", "maker": "Fjord Acoustics"})])
    clock.t = 6
    assert lk.link_mention("pulsewave tempest 7", "PRODUCT").node_id == "PW-1"
    assert lk.link_mention("drift 2", "PRODUCT").node_id is None
    assert _graph_entries(shop) == _built_entries(shop, lk)
    shop.run(_DELETE, {"skus": ["NA-2", "NA-3"]})
    shop.run(_BUMP)
    assert lk.refresh(force=True) is True
    assert lk.link_mention("aurora x2", "PRODUCT").node_id == "NA-1"  # one variant left: no longer ambiguous
    assert _graph_entries(shop) == _built_entries(shop, lk)
    assert G.read_meta(shop).products == 2 == len(shop.run(_ALL))
    # lines taken out stay readable a while (readers holding older postings), then go
    dead = [r for r in shop.run(_LINES) if r["dead"] is not None]
    assert dead and G.purge_dead(shop) == 0
    assert G.purge_dead(shop, now=time.time() + G.DEAD_KEPT_S + 1) == len(dead)
    assert all(r["dead"] is None for r in shop.run(_LINES))


def test_a_write_from_an_older_version_is_refused_and_changes_nothing(shop, encoder, tmp_path):
    lk = _worker(shop, encoder, _Clock(), tmp_path)
    lk.warm()
    meta = G.read_meta(shop)
    base = G.open_index(shop, meta, cap=None, bound=None)
    renamed = ProductRecord(sku="PW-1", name="Pulsewave Gale 3 Headphones", brand="Pulsewave", category="Headphones",
                            h="changed")
    delta = base.delta({"PW-1": renamed}, lk._products_by_skus)
    before = _graph_entries(shop)
    assert G.write_delta(shop, meta.version - 1, delta, base, catalog=meta.catalog, stamp=meta.stamp,
                         watermark=meta.watermark) is None
    assert _graph_entries(shop) == before and G.read_meta(shop) == meta
    assert G.write_delta(shop, meta.version, delta, base, catalog=meta.catalog, stamp=meta.stamp,
                         watermark=meta.watermark) == meta.version + 1
    assert _graph_entries(shop) != before


def test_a_worker_holds_bounded_caches_and_never_the_whole_index(shop, encoder, tmp_path):
    lk = _worker(shop, encoder, _Clock(), tmp_path, graph_cache_entries=100)
    lk.warm()
    idx = lk._current().lines
    assert isinstance(idx, G.GraphLineIndex)
    for mention in ("aurora x2", "drift 2 black", "nordic audio", "pulsewave drift", "aurora silver", "NA 1"):
        lk.link_mention(mention, "PRODUCT")
    assert all(len(m.memo) <= 100 for m in idx.maps.values())
    assert G.round_trips(idx) > 0
    for name in ("postings", "exact", "lines", "line_of"):
        with pytest.raises(TypeError, match="kept in the graph"):
            iter(idx.maps[name])
    with pytest.raises(TypeError, match="kept in the graph"):
        list(idx.lines.iter_lines())


def test_a_build_cut_short_is_started_again(shop, encoder, tmp_path):
    """A first build that died after writing part of the index (its meta never completed): the next
    process waits for it to move, finds it does not, and builds from nothing."""
    meta = G.start(shop)
    assert not meta.complete
    lk = _worker(shop, encoder, _Clock(), tmp_path, graph_build_stall_s=0.6)
    lk.warm()
    now = G.read_meta(shop)
    assert now.complete and now.products == 3
    assert lk.link_mention("drift 2", "PRODUCT").node_id == "PW-1"


class _DiesOnWrite:
    """The real store, failing the `n`th write of the index (a process killed half-way through a change)."""

    def __init__(self, store, n: int) -> None:
        self.store, self.n = store, n

    def __getattr__(self, name):
        return getattr(self.store, name)

    def run(self, query, *args, **kwargs):
        if query.name in ("link_index.write", "link_index.create"):
            self.n -= 1
            if self.n == 0:
                raise ConnectionError("killed")
        return self.store.run(query, *args, **kwargs)


def test_a_change_cut_short_is_never_read_half_written(shop, encoder, settings, tmp_path, monkeypatch):
    """A change written in several chunks marks the index incomplete until its last: a writer that dies
    half-way leaves it so, and the next process rebuilds it from nothing instead of reading half a change."""
    lk = _worker(shop, encoder, _Clock(), tmp_path)
    lk.warm()
    _import(shop, settings, tmp_path / "v2", products=[
        _product("PW-1", "Pulsewave Tempest 7 Wireless Headphones, Black", "Pulsewave",
                 {"model_line": "Tempest 7", "colour": "Black", "maker": "Wave Labs"}),
        _product("NA-3", "Nordic Audio Aurora X2 Wireless Headphones, Sand", "Nordic Audio",
                 {"model_line": "Aurora X2", "colour": "Sand", "maker": "Nordic Works"})])
    monkeypatch.setattr(G, "CHUNK", 4)  # this change takes several writes
    dying = _worker(_DiesOnWrite(shop, 3), encoder, _Clock(), tmp_path)
    with pytest.raises(ConnectionError):
        dying.sync_graph_index()
    assert not G.read_meta(shop).complete  # two chunks of the change landed, the rest did not
    fresh = _worker(shop, encoder, _Clock(), tmp_path, graph_build_stall_s=0.6)
    fresh.warm()
    assert G.read_meta(shop).complete and _graph_entries(shop) == _built_entries(shop, fresh)
    assert fresh.link_mention("pulsewave tempest 7", "PRODUCT").node_id == "PW-1"
