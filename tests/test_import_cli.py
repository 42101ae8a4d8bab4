"""`kgqa import` through click's test runner, against the session's embedded FalkorDB."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from test_import_loader import BASE, NODE_COUNTS, counts, write

from import_scripts.cli import import_command
from kg.backends.falkordb import FalkorDBStore
from nlu.linking import graph_index


@pytest.fixture
def invoke(settings, store):
    """Run the command with the environment pointing at the test graph, as a shell would."""
    env = {"GRAPH_URL": settings.graph_url, "DATA_DIR": str(settings.data_dir), "GRAPH_NAME": settings.graph_name,
           "FALKORDB_APPENDFSYNC": "always"}

    def _invoke(*args: str):
        return CliRunner().invoke(import_command, [*args, "--no-progress"], env=env, catch_exceptions=False)

    return _invoke


def test_import_prints_a_summary_and_exits_0(invoke, store, tmp_path):
    data = write(tmp_path / "d", BASE)
    result = invoke(str(data))
    assert result.exit_code == 0, result.output
    assert "products.csv" in result.output and "Catalog version is now 1" in result.output
    nodes = counts(store)[0]
    assert {k: v for k, v in nodes.items() if not k.startswith("Link")} == NODE_COUNTS
    # the import brought the linking index kept in the graph up to the catalog (LINKING_INDEX=graph)
    meta = graph_index.read_meta(store)
    assert meta is not None and meta.complete and meta.products == NODE_COUNTS["Product"]
    assert nodes["LinkProduct"] == 2 * NODE_COUNTS["Product"]  # its line, its fingerprint
    again = invoke(str(data))
    assert again.exit_code == 0 and "Nothing changed" in again.output


def test_row_errors_are_listed_but_do_not_fail_a_normal_import(invoke, store, tmp_path):
    data = write(tmp_path / "d", BASE | {"brands.csv": "name,country\nAcme,US\n,SE\n"})
    result = invoke(str(data / "brands.csv"))
    assert result.exit_code == 0
    assert "1 error(s)" in result.output and "brands.csv:3 [name]: missing required value" in result.output
    assert counts(store)[0]["Brand"] == 1


def test_strict_refusal_exits_1_and_writes_nothing(invoke, store, tmp_path):
    data = write(tmp_path / "d", BASE | {"faqs.csv": "question,answer\nWhy?,\n"})
    result = invoke(str(data), "--strict")
    assert result.exit_code == 1
    assert "nothing was written" in result.output and "faqs.csv:2 [answer]" in result.output
    assert counts(store) == ({}, {})


def test_a_failed_file_exits_1(invoke, tmp_path):
    data = write(tmp_path / "d", {"brands.csv": BASE["brands.csv"], "inventory.csv": "x\n1\n"})
    result = invoke(str(data))
    assert result.exit_code == 1 and "unknown file type" in result.output


def test_dry_run_and_delimiter_and_graph_name(invoke, store, settings, tmp_path):
    semi = write(tmp_path / "d", {"brands.csv": "name;country\nAcme;US\n"})
    result = invoke(str(semi), "--dry-run", "--delimiter", ";")
    assert result.exit_code == 0 and "dry run" in result.output
    assert counts(store) == ({}, {})
    other = settings.graph_name + "_cli"
    result = invoke(str(semi), "--delimiter", ";", "--graph-name", other)
    assert result.exit_code == 0
    assert counts(store) == ({}, {})  # the named graph got it, not GRAPH_NAME
    named = FalkorDBStore.from_settings(settings.model_copy(update={"graph_name": other}))
    try:
        assert counts(named)[0] == {"Brand": 1, "Meta": 1, "LinkMeta": 1}  # an index of no products
    finally:
        named.redis.execute_command("GRAPH.DELETE", other)
        named.close()


def test_bad_arguments(invoke, tmp_path: Path):
    assert invoke(str(tmp_path / "missing")).exit_code == 2  # click: no such path
    data = write(tmp_path / "d", {"brands.csv": "name\nA\n"})
    result = invoke(str(data), "--delimiter", "ab")
    assert result.exit_code == 1 and "delimiter" in result.output
