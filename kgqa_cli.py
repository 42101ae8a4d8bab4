"""The `kgqa` command: one click group composed of the commands that live beside what they manage
(import in import_scripts/, training in nlu/, ...). Run it through the `./kgqa` launcher."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from common.errors import KGQAError
from common.settings import Settings

if TYPE_CHECKING:
    from common.bootstrap import Container
    from kg.store import GraphStore

console = Console()


@click.group()
@click.option("--verbose", "-v", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """Knowledge-graph question answering for e-commerce customer service."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s %(message)s")


def _container(settings: Settings) -> Container:
    """The composition root's collaborators (common/bootstrap.py); nothing connects until used."""
    from common import bootstrap

    return bootstrap.build(settings)


@main.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Load this directory of import files instead of the sample store.")
@click.option("--empty", is_flag=True, help="Import nothing: the graph as DATA_DIR holds it (empty the first time).")
@click.option("--products", default=1000, show_default=True, help="Sample store size.")
@click.option("--serve/--no-serve", default=True, show_default=True, help="Serve the API with gunicorn.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
def up(data_dir: Path | None, empty: bool, products: int, serve: bool, host: str, port: int) -> None:
    """Start the embedded graph, load the sample store (or --data DIR), check the understanding
    model, then serve the API and chat page. Ctrl-C or SIGTERM stops the API and, if this command
    started it, the graph; `./kgqa down` (same DATA_DIR) stops both from another terminal.

    Idempotent: a running server is reused and a re-import changes nothing. A shop's own data
    (--data) is never mixed with the sample store: use its own GRAPH_NAME and DATA_DIR.
    """
    from kg.backends.embedded import EmbeddedFalkorDB

    settings = Settings()
    embedded = settings.graph_url.startswith("falkordb://embedded")
    started_graph = embedded and EmbeddedFalkorDB(settings.data_dir).current() is None
    app = _container(settings)
    state = app.redis
    started_state = state.embedded is not None and state.embedded.current() is None
    store = app.graph()
    if not empty:
        if data_dir is None:
            from import_scripts.sample_store import generate

            data_dir = settings.data_dir.parent / f"sample-{products}"
            if not (data_dir / "products.csv").exists():
                console.print(f"[bold]Generating the sample store[/] in {data_dir}")
                generate(data_dir, products=products, today=dt.date.today())
        console.print(f"[bold]Importing[/] {data_dir}")
        report = app.catalog.import_path(data_dir, progress=True, audit=app.local_audit())
        if report.errors:
            console.print(f"[yellow]{len(report.errors)} rows rejected[/]; first: {report.errors[0]}")
    if settings.linking_vectors == "graph":  # a catalog imported before vectors were kept: fill them now
        _fill_vectors(app)
    if app.linker is not None and app.linker.in_graph:  # a catalog imported before the index was in the graph
        started = time.perf_counter()
        meta = app.linker.sync_graph_index()
        if meta is not None:
            console.print(f"Linking index of {meta.products} products in the graph, version {meta.version} "
                          f"({time.perf_counter() - started:.1f} s)")
    elif app.linker is not None and app.linker.snapshot is not None and not app.linker.snapshot.exists():
        # built once here, loaded by every worker (which catches up with any later change itself)
        started = time.perf_counter()
        app.linker.warm()
        console.print(f"Linking index of {app.linker.stats()['products']} products kept in {app.linker.snapshot} "
                      f"({time.perf_counter() - started:.1f} s)")
    store.compact()  # what was written above, read in one piece at the graph server's next start
    _print_stats(store)
    info = store.embedded.current() if getattr(store, "embedded", None) else None
    if info:
        console.print(f"\nFalkorDB is running on 127.0.0.1:{info.port} (data in {settings.data_dir}).")
    if state.embedded is not None:  # sessions, keys and rate limits: a Redis of their own
        state_info = state.embedded.ensure_running()
        console.print(f"State store (Redis) is running on 127.0.0.1:{state_info.port} (data in {state.embedded.data_dir}).")
    _ensure_nlu_model(settings)
    console.print("Try:  ./kgqa graph query \"MATCH (p:Product)-[:MADE_BY]->(b:Brand) RETURN p.name, b.name LIMIT 5\"")
    console.print("      ./kgqa nlu predict \"is the aurora x2 in stock?\"")
    console.print("Stop: ./kgqa down")
    app.close()
    if serve:
        from api.serve import serve as serve_api

        try:
            code = serve_api(settings, host=host, port=port, dev=True) or 0
        finally:  # stopped by Ctrl-C or SIGTERM: stop what this command started
            if started_graph:
                EmbeddedFalkorDB(settings.data_dir).stop()
            if started_state:
                state.stop()
        sys.exit(code)


def _ensure_nlu_model(settings: Settings) -> None:
    """The trained adapter and heads are committed; rebuild them only if they are missing."""
    if (settings.nlu_model_dir / "nlu_config.json").exists():
        return
    console.print("[bold]Training the understanding model[/] (no artefacts in NLU_MODEL_DIR)")
    from nlu.cli import nlu

    nlu.main(["train"], standalone_mode=False)


@main.command()
def down() -> None:
    """Stop the instance of this DATA_DIR: its API (gunicorn), its embedded graph server and its
    embedded state server (the data stays in DATA_DIR)."""
    from api.serve import stop_gunicorn
    from kg.backends.embedded import EmbeddedFalkorDB
    from kg.backends.state_server import EmbeddedRedis, state_dir

    settings = Settings()
    if stop_gunicorn(settings):
        console.print("API stopped")
    EmbeddedFalkorDB(settings.data_dir).stop()
    console.print("graph stopped")
    EmbeddedRedis(state_dir(settings.data_dir)).stop()
    console.print("state store stopped")


@main.group()
def graph() -> None:
    """Read-only graph access for analysts."""


@graph.command("query")
@click.argument("cypher")
@click.option("--params", default="{}", help="Query parameters as a JSON object.")
@click.option("--limit", type=int, default=None, help="Row cap (default: ANALYST_ROW_LIMIT).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def graph_query(cypher: str, params: str, limit: int | None, as_json: bool) -> None:
    """Run a read-only Cypher query (writes are refused), with a time and row limit."""
    settings = Settings()
    try:
        parsed = json.loads(params)
        if not isinstance(parsed, dict):
            raise ValueError
    except ValueError:
        raise click.BadParameter("--params must be a JSON object") from None
    app = _container(settings)
    try:
        res = app.graph().run_untrusted_read(cypher, parsed, row_limit=limit or settings.analyst_row_limit,
                                             timeout_ms=settings.analyst_timeout_ms)
    finally:
        app.close()
    if as_json:
        click.echo(json.dumps({"columns": res.columns, "rows": res.rows, "truncated": res.truncated}, default=str))
        return
    table = Table(*res.columns)
    for row in res.rows:
        table.add_row(*(str(row.get(c)) for c in res.columns))
    console.print(table)
    if res.truncated:
        console.print(f"[yellow]truncated at {len(res.rows)} rows[/]")


@graph.command("embed")
def graph_embed() -> None:
    """Compute the product-name vectors entity linking searches (LINKING_VECTORS=graph): those of a
    catalog imported before vectors were kept (or kept per product), or left over by an interrupted
    import. Only products changed since their vector text was worked out are looked at, and only texts
    without a vector are embedded; safe to stop and run again. `kgqa up` runs it too."""
    settings = Settings()
    if settings.linking_vectors != "graph":
        raise click.ClickException("LINKING_VECTORS is not 'graph': linking keeps its vectors in each worker")
    app = _container(settings)
    try:
        _fill_vectors(app)
        app.graph().compact()
    finally:
        app.close()


@graph.command("link-index")
@click.option("--rebuild", is_flag=True, help="Delete the index and build it from nothing (after a crash in the "
                                              "middle of a large change, or to compact it).")
def graph_link_index(rebuild: bool) -> None:
    """Bring the entity-linking index kept in the graph (LINKING_INDEX=graph) up to the catalog: build it for
    a catalog imported before it was kept there, or catch up with what changed. Imports, edits and `kgqa up`
    do this themselves; any worker that sees the catalog move does too."""
    settings = Settings()
    if settings.linking_index != "graph":
        raise click.ClickException("LINKING_INDEX is not 'graph': each worker holds its own linking index")
    app = _container(settings)
    try:
        if app.linker is None:
            raise click.ClickException("entity linking is off")
        started = time.perf_counter()
        if rebuild:
            from nlu.linking import graph_index

            console.print(f"{graph_index.clear(app.graph())} index nodes deleted")
        meta = app.linker.sync_graph_index()
        if meta is None:
            raise click.ClickException("the index could not be written (another process kept writing first)")
        console.print(f"Linking index of {meta.products} products and {meta.lines} lines in the graph, version "
                      f"{meta.version}, catalog version {meta.catalog} ({time.perf_counter() - started:.1f} s)")
        app.graph().compact()
    finally:
        app.close()


def _fill_vectors(app: Container) -> None:
    """Make the name vectors of stale products current (embedding texts that have none), with a progress bar."""
    from tqdm import tqdm

    bar = None

    def step(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="product name vectors", unit="product")
        bar.update(done - bar.n)

    try:
        written = app.catalog.fill_vectors(progress=step)
    finally:
        if bar is not None:
            bar.close()
    console.print(f"{written} product names embedded" if written else "every product name has its vector")


@graph.command("stats")
def graph_stats() -> None:
    """Node and relationship counts."""
    app = _container(Settings())
    try:
        _print_stats(app.graph())
    finally:
        app.close()


def _print_stats(store: GraphStore) -> None:
    from kg.queries import get

    table = Table("label", "nodes")
    for row in store.run(get("system.count_by_label")):
        table.add_row(str(row["label"]), str(row["count"]))
    rels = Table("relationship", "count")
    for row in store.run(get("system.count_relationships")):
        rels.add_row(str(row["type"]), str(row["count"]))
    console.print(table, rels)


def _register_optional() -> None:
    """Attach the commands that live beside what they manage."""
    from import_scripts.cli import import_command
    from import_scripts.sample_store import generate_sample_command

    main.add_command(import_command, "import")
    from api.cli import audit_command, keys_command

    main.add_command(keys_command, "keys")
    main.add_command(audit_command, "audit")
    main.add_command(generate_sample_command, "sample")
    from nlu.cli import nlu

    main.add_command(nlu, "nlu")
    main.add_command(qa_group, "qa")


@click.group("qa")
def qa_group() -> None:
    """The dialogue engine: end-to-end evaluation."""


@qa_group.command("evaluate", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def qa_evaluate(args: tuple[str, ...]) -> None:
    """Run the dialogue evaluation set (qa/data/eval_dialogues.jsonl) against the engine on the
    configured graph: intent accuracy, answer correctness, guard fallback rate, hallucinations.
    Options: --data FILE, --today YYYY-MM-DD (the date the sample store was generated for),
    --json FILE, --no-progress. With --set DIR: another shop's import files, questions and
    computed gold answers (qa/shop_eval.py, e.g. eval/shops/bookshop), in a throwaway graph."""
    from qa.evaluate import main as evaluate_main

    sys.exit(evaluate_main(list(args)))


_register_optional()


def run() -> None:
    try:
        main(standalone_mode=True)
    except KGQAError as exc:
        console.print(f"[red]error:[/] {exc.message}")
        sys.exit(2)


if __name__ == "__main__":
    run()
