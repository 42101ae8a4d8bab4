"""`kgqa nlu ...`: train, evaluate and try the understanding model.

Names come from the graph (through the named `nlu.*` read queries) unless `--catalog-dir` points at
a directory of import files such as the sample store. Evaluation must use the same catalog as
training: its held-out fifth of the products is what the entity figures are measured on.
"""

from __future__ import annotations

import os
from pathlib import Path

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


@nlu.command()
@_catalog_dir
@click.option("--epochs", default=3, show_default=True, type=click.IntRange(1, 50))
@click.option("--seed", default=13, show_default=True, type=int)
@click.option("--per-intent", default=280, show_default=True, type=click.IntRange(10, 100_000),
              help="Filled training examples per intent.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the artefacts go (default: NLU_MODEL_DIR).")
def train(catalog_dir: Path | None, epochs: int, seed: int, per_intent: int, out_dir: Path | None) -> None:
    """Fine-tune the encoder's LoRA adapters and the two heads; print the time it took."""
    from common.errors import KGQAError
    from common.settings import Settings
    from nlu.train import TrainOptions
    from nlu.train import train as run_training

    settings = Settings()
    try:
        catalog = _catalog(catalog_dir)
        click.echo(f"catalog {catalog.source}: {catalog.summary()}")
        report = run_training(catalog, out_dir or settings.nlu_model_dir, settings.encoder_path,
                              TrainOptions(epochs=epochs, seed=seed, per_intent=per_intent), log=click.echo)
    except KGQAError as exc:
        _fail(exc)
        return
    click.echo(f"training time: {report.seconds:.0f} s ({report.seconds / 60:.1f} min)")


@nlu.command()
@_catalog_dir
@click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Artefacts to evaluate (default: NLU_MODEL_DIR).")
@click.option("--fills", default=3, show_default=True, type=click.IntRange(1, 20),
              help="Fills per evaluation phrasing.")
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as JSON here.")
def evaluate(catalog_dir: Path | None, model_dir: Path | None, fills: int, json_out: Path | None) -> None:
    """Score the model on the held-out phrasings filled with held-out names."""
    from common.errors import KGQAError
    from common.settings import Settings
    from nlu.dataset import build_eval_examples, load_phrasings, train_phrasing_files
    from nlu.evaluate import evaluate as run_evaluation
    from nlu.evaluate import format_report, write_json
    from nlu.understand import Understander

    settings = Settings()
    try:
        catalog = _catalog(catalog_dir)
        understander = Understander.load(settings, model_dir=model_dir, num_threads=0)  # batches: all cores
        examples = build_eval_examples(catalog.split()[1], fills=fills)
        seen = {p.lower().strip() for ps in load_phrasings(train_phrasing_files()).values() for p in ps}
        report = run_evaluation(understander, examples, seen_phrasings=seen)
    except KGQAError as exc:
        _fail(exc)
        return
    click.echo(format_report(report))
    if json_out is not None:
        write_json(report, json_out)
        click.echo(f"\nreport written to {json_out}")


@nlu.command()
@click.argument("text")
@click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
def predict(text: str, model_dir: Path | None) -> None:
    """Print the understanding of TEXT as JSON."""
    from common.errors import KGQAError
    from common.settings import Settings
    from nlu.understand import Understander

    try:
        understander = Understander.load(Settings(), model_dir=model_dir)
        result = understander.understand(text)
    except KGQAError as exc:
        _fail(exc)
        return
    click.echo(result.model_dump_json(indent=2))
