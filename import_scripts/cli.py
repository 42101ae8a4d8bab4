"""`kgqa import PATH...`: load catalog files (DESIGN section 3) from the command line.

The command is a thin shell around the catalog service (kg/catalog/service.py, the same the HTTP
import uses), taken from the composition root (common/bootstrap.py): it turns the report into a
table and an exit status that scripts can rely on (1 when a strict import was refused or a file
could not be imported at all).
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from common.errors import KGQAError
from common.settings import Settings

FIRST_ERRORS = 20


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--strict", is_flag=True, help="Write nothing unless every row of every file is valid.")
@click.option("--dry-run", is_flag=True, help="Validate and report what would change; write nothing.")
@click.option("--create-missing", is_flag=True,
              help="With --strict: create brands and categories that products name but nothing defines "
                   "(without --strict they are created anyway, with a warning).")
@click.option("--type", "file_type", metavar="TYPE", default=None,
              help="Read every file given as TYPE (products, brands, ...) whatever its name; files only, "
                   "all of one type. Without it, a file's name, else its header row, says its type.")
@click.option("--delimiter", default=",", show_default=True, help="CSV field separator ('\\t' or 'tab' for tabs).")
@click.option("--graph-name", default=None, help="Import into this graph instead of GRAPH_NAME.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bars.")
def import_command(paths: tuple[Path, ...], strict: bool, dry_run: bool, create_missing: bool,
                   file_type: str | None, delimiter: str, graph_name: str | None, no_progress: bool) -> None:
    """Import catalog files or directories (products.csv, orders.jsonl, ...) into the graph.

    A directory imports in dependency order. Re-importing the same files changes nothing. Bad rows
    are reported with file, line, column and reason; the good ones still load unless --strict.
    Every write goes to the audit log (`./kgqa audit`) as cli:<user>.
    """
    from common import bootstrap
    from kg.loader import iter_error_lines

    console = Console()
    err_console = Console(stderr=True)
    settings = Settings()
    if graph_name:
        settings = settings.model_copy(update={"graph_name": graph_name})
    app = bootstrap.build(settings)
    try:
        # Key-less local use: every role, written to the audit log as cli:<user>.
        audit = None if dry_run else app.local_audit()
        report = app.catalog.import_path(list(paths), strict=strict, dry_run=dry_run, create_missing=create_missing,
                                         file_type=file_type, delimiter=delimiter, progress=not no_progress,
                                         audit=audit)
    except KGQAError as exc:
        err_console.print(f"[red]import failed:[/] {exc.message}")
        raise SystemExit(1) from None
    finally:
        app.close()

    title = "Import (dry run: nothing written)" if dry_run else "Import"
    table = Table(title=title)
    table.add_column("file", no_wrap=True)
    table.add_column("type", no_wrap=True)
    for col in ("rows", "created", "updated", "unchanged", "rejected"):
        table.add_column(col, justify="right")
    for f in report.files:
        table.add_row(f.file, f.type or "?", str(f.rows), str(f.created), str(f.updated), str(f.unchanged),
                      f"[red]{f.rejected}[/]" if f.rejected else "0", style="red" if f.failed else None)
    console.print(table)
    for w in report.warnings[:FIRST_ERRORS]:
        console.print(f"[yellow]warning:[/] {w}", markup=True, highlight=False)
    more_warnings = len(report.warnings) - FIRST_ERRORS + report.warnings_omitted
    if more_warnings > 0:
        console.print(f"[yellow]... and {more_warnings} more warnings[/]")
    if report.error_count:
        console.print(f"[red]{report.error_count} error(s)[/]; the first:")
        for line in iter_error_lines(report, FIRST_ERRORS):
            console.print(f"  {line}", markup=False, highlight=False)
    refused = strict and not report.ok
    if refused:
        console.print("[red]--strict: nothing was written.[/]")
    elif report.written:
        console.print(f"Catalog version is now {report.version}.")
    elif not dry_run:
        console.print("Nothing changed.")
    if refused or report.failed_files:
        raise SystemExit(1)
