"""How long the embedded graph server takes to load a data directory, and what of it is the
name-vector index. The server answers once it has read its data (`load_s`) and builds its indexes
in the background (DELAY_INDEXING, kg/backends/embedded.py): `indexes_s` is the time from its start
until all are built, the name vectors' HNSW graph being most of it at a million products. Works on
a copy of the directory (the original is left as it is); prints figures, asserts nothing.

    .venv/bin/python bench/bench_graph_load.py DATA_DIR GRAPH                 # as it is, then without the vector index
    .venv/bin/python bench/bench_graph_load.py DATA_DIR GRAPH --ef 64         # and with efConstruction 64
    .venv/bin/python bench/bench_graph_load.py DATA_DIR GRAPH --load-only     # one load as it is

Each case: the server started on the copy and timed until it answers and until its indexes are
built; then the change (the vector index dropped, or made again with the given efConstruction and
timed until searchable), the append-only file rewritten into its base (what an import or `kgqa up`
leaves, `compact`), the server stopped, started again and timed. The first load is also timed after
a rewrite alone, which tells the replay of the append-only file's tail apart from the base's load.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.settings import Settings  # noqa: E402
from kg.backends.embedded import EmbeddedFalkorDB  # noqa: E402
from kg.backends.falkordb import FalkorDBStore  # noqa: E402
from kg.backends.state_server import stop_embedded  # noqa: E402
from kg.queries import embeddings as Q  # noqa: E402
from kg.schema import wait_for_indexes  # noqa: E402


def _start(data_dir: Path, graph: str) -> tuple[float, float, redis.Redis]:
    """(seconds until the server answers, until its indexes are built, a client)."""
    t = time.perf_counter()
    EmbeddedFalkorDB(data_dir).ensure_running()
    took = time.perf_counter() - t
    store = FalkorDBStore.from_settings(Settings(_env_file=None, graph_url="falkordb://embedded",
                                                 data_dir=data_dir, graph_name=graph))
    wait_for_indexes(store, 3600.0, poll_s=0.2)
    return took, time.perf_counter() - t, store.redis


def _case(source: Path, graph: str, ef: int | None, dimension: int) -> dict[str, float | str]:
    with tempfile.TemporaryDirectory(prefix="kgqa-load-") as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(source, data, ignore=shutil.ignore_patterns("server.json", ".server.lock", "linking", "state"))
        try:
            first, built, client = _start(data, graph)
            out: dict[str, float | str] = {"case": "as it is", "load_s": round(first, 1), "indexes_s": round(built, 1)}
            client.execute_command("GRAPH.QUERY", graph, Q.drop_vector_index_statement("falkordb"))
            if ef is not None:
                out["case"] = f"efConstruction {ef}"
                t = time.perf_counter()
                client.execute_command(
                    "GRAPH.QUERY", graph, f"CREATE VECTOR INDEX FOR (v:NameVector) ON (v.embedding) OPTIONS "
                                          f"{{dimension: {dimension}, similarityFunction: 'cosine', efConstruction: {ef}}}")
                while any(row[0] not in (b"OPERATIONAL", "OPERATIONAL") for row in client.execute_command(
                        "GRAPH.QUERY", graph, "CALL db.indexes() YIELD label, status WHERE label = 'NameVector' "
                                              "RETURN status")[1]):
                    time.sleep(0.5)
                out["index_build_s"] = round(time.perf_counter() - t, 1)
            else:
                out["case"] = "no vector index"
            EmbeddedFalkorDB(data).compact(client, min_tail_mb=0, wait=True)  # as an import leaves it
            stop_embedded(data)
            again, built, _ = _start(data, graph)
            out["load_after_s"], out["indexes_after_s"] = round(again, 1), round(built, 1)
            return out
        finally:
            stop_embedded(data)


def _rewritten_only(source: Path, graph: str, *, rewrite: bool = True) -> dict[str, float | str]:
    """The load as it is, then (`rewrite`) again after the append-only file was rewritten into its base."""
    with tempfile.TemporaryDirectory(prefix="kgqa-load-") as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(source, data, ignore=shutil.ignore_patterns("server.json", ".server.lock", "linking", "state"))
        try:
            first, built, client = _start(data, graph)
            out: dict[str, float | str] = {"case": "as it is", "load_s": round(first, 1), "indexes_s": round(built, 1)}
            if not rewrite:
                return out
            EmbeddedFalkorDB(data).compact(client, min_tail_mb=0, wait=True)  # as an import leaves it
            stop_embedded(data)
            again, built, _ = _start(data, graph)
            return {**out, "case": "append-only file rewritten", "load_after_s": round(again, 1),
                    "indexes_after_s": round(built, 1)}
        finally:
            stop_embedded(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", type=Path, help="An embedded server's data directory (not running).")
    ap.add_argument("graph", help="The graph name in it.")
    ap.add_argument("--ef", type=int, default=None, help="Also rebuild the vector index with this efConstruction.")
    ap.add_argument("--dimension", type=int, default=384, help="The name vectors' length.")
    ap.add_argument("--load-only", action="store_true", help="Only time one load of the directory as it is.")
    args = ap.parse_args()
    if args.load_only:
        print(_rewritten_only(args.data_dir, args.graph, rewrite=False), flush=True)
        return
    print(_rewritten_only(args.data_dir, args.graph), flush=True)
    print(_case(args.data_dir, args.graph, None, args.dimension), flush=True)
    if args.ef is not None:
        print(_case(args.data_dir, args.graph, args.ef, args.dimension), flush=True)


if __name__ == "__main__":
    main()
