"""Validated, batched, idempotent upserts of the DESIGN section 3 import files.

The same core serves the CLI (`import_path`, files and directories) and the HTTP import
(`import_files`, uploaded streams). Files are read as streams in dependency order, validated row
by row (kg/catalog/validation.py), checked against the graph and the rest of the import for
the nodes they name, and written in batches of `settings.import_batch_size` rows.

Idempotence comes from a content hash `_h` on every upserted node (and order item): per batch one
read query says which rows are new, which differ and which are unchanged, and only the first two
are written, so a second import of the same files writes nothing and reports every row unchanged.
The hash has a part for the node's own values and one for its relationship targets, so a price
change is a plain SET while a product moved to another category has its old IN_CATEGORY replaced.

Speed: new products are created together with their three relationships in one statement whose
targets are found by node id (resolved once per import) instead of an index look-up per row;
writes run on a writer thread while the main thread parses and validates the next batch, so on a
two-core machine the Python work and the graph server overlap instead of taking turns.

Safety: `strict` validates every file first (a streaming pass that keeps only the key sets that
reference checks need) and writes nothing unless every row is good; `dry_run` never writes. Each
write either runs as one atomic statement or stores `_h` last (kg/queries/loader.py), so a server
killed mid-import leaves rows the next import recognises as unfinished and completes.

Audit: given an `audit` sink (kg/audit.py), every batch that writes is described as `Change`
records (node, created or updated, the old and new values of the fields that changed, file and
line), the old values read with one query per batch of changed rows; the writer thread hands them
to the sink right after the batch's statements succeed. A sink that fails stops the import.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
import queue
import shutil
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from pydantic import BaseModel, Field

from common.errors import ImportError_, QueryError
from common.settings import Settings
from kg.audit import AuditSink, Change
from kg.catalog.reader import FileProblem, header_columns, open_reader
from kg.catalog.validation import (
    FILE_TYPES,
    TYPES,
    Clean,
    FileType,
    Validator,
    file_format,
    file_type,
    type_from_columns,
)
from kg.queries import Query
from kg.queries import loader as Q
from kg.store import GraphStore

log = logging.getLogger(__name__)

MAX_ERRORS = 1000
MAX_WARNINGS = 200
# Loader statements are batches, not interactive questions: allow them far longer than the
# question-path timeout (a loaded machine can take seconds per batch).
WRITE_TIMEOUT_MS = 600_000
# Labels other rows refer to; the import remembers which of their keys exist.
_TRACKED = ("Category", "Brand", "Supplier", "Product", "Customer", "Order")
_WHAT = {"parent": "parent category", "applies_to": None}
_APPLIES_WHAT = {"Category": "category", "Brand": "brand", "Product": "sku"}

Mode = Literal["check", "dry", "write"]
_MISSING_SHOWN = 10  # names listed in the warning about undefined brands or categories
_PLURAL = {"Brand": "brands", "Category": "categories"}
_FILES = {"Brand": "brands", "Category": "categories"}


@dataclass
class _Missing:
    """Rows of one file that name brands (or categories) no file or node defines."""

    rows: int = 0
    names: dict[Any, None] = field(default_factory=dict)  # in order of appearance
    last_line: int = -1


# -- report -------------------------------------------------------------------------------------------
class RowError(BaseModel):
    file: str
    line: int | None = None
    column: str | None = None
    reason: str


class FileReport(BaseModel):
    file: str
    type: str | None = None
    format: str | None = None
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    failed: bool = Field(False, description="The file could not be imported at all (see errors).")


class ImportReport(BaseModel):
    files: list[FileReport] = Field(default_factory=list)
    errors: list[RowError] = Field(default_factory=list)
    errors_omitted: int = Field(0, description=f"Errors beyond the first {MAX_ERRORS}, counted only.")
    warnings: list[str] = Field(default_factory=list)
    warnings_omitted: int = 0
    strict: bool = False
    dry_run: bool = False
    written: bool = Field(False, description="Whether this import changed the graph.")
    version: int | None = Field(None, description="The catalog version after the import.")

    @property
    def error_count(self) -> int:
        return len(self.errors) + self.errors_omitted

    @property
    def failed_files(self) -> list[str]:
        return [f.file for f in self.files if f.failed]

    @property
    def ok(self) -> bool:
        """No file failed and no row was rejected."""
        return self.error_count == 0 and not self.failed_files

    def add_error(self, file: str, line: int | None, column: str | None, reason: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(RowError(file=file, line=line, column=column, reason=reason))
        else:
            self.errors_omitted += 1

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        else:
            self.warnings_omitted += 1


# -- sources --------------------------------------------------------------------------------------------
@dataclass
class Source:
    name: str  # as reported (the file name, or the path given)
    type: str | None
    format: str | None
    open: Callable[[], BinaryIO]
    size: int | None = None
    problem: str | None = None  # why the type could not be determined


def check_type(kind: str) -> str:
    """An explicitly given file type, or ImportError_ naming the valid ones."""
    name = kind.strip().lower()
    if name not in TYPES:
        raise ImportError_(f"unknown file type {kind!r}: expected one of {', '.join(FILE_TYPES)}",
                           details={"type": kind[:60]})
    return name


def _typed(name: str, explicit: str | None) -> tuple[str | None, str]:
    """(type, format) from an explicit type, else the name; a None type is read from the header."""
    if explicit is not None:
        return check_type(explicit), file_format(name)
    kind = file_type(name)
    return (kind[0], kind[1]) if kind else (None, file_format(name))


def detect_type(src: Source, *, delimiter: str, max_field_bytes: int) -> None:
    """Give a source without a type the one its header identifies, or say why there is none."""
    try:
        with src.open() as stream:
            cols = header_columns(stream, src.format or "csv", delimiter=delimiter,
                                  max_field_bytes=max_field_bytes)
    except FileProblem as p:
        src.problem = f"its name names no file type and its header cannot be read ({p.reason})"
        return
    except OSError as exc:
        src.problem = f"cannot open the file: {exc.strerror or exc}"
        return
    kind, why = type_from_columns(cols)
    if kind is None:
        src.problem = f"its name names no file type and {why}"
    src.type = kind


def _order_key(src: Source) -> tuple[int, str]:
    return (FILE_TYPES.index(src.type) if src.type in FILE_TYPES else len(FILE_TYPES), src.name)


def _path_sources(paths: Path | str | Sequence[Path | str], report: ImportReport,
                  explicit: str | None = None) -> list[Source]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(map(Path, paths))
    if explicit is not None:
        _check_explicit(paths, check_type(explicit))
    out: list[Source] = []
    for p in paths:
        if p.is_dir():
            entries = sorted(e for e in p.iterdir() if e.is_file() and not e.name.startswith("."))
            found = [e for e in entries if e.suffix.lower() in (".csv", ".jsonl")]
            for e in entries:
                if e not in found:
                    report.warn(f"{e.name}: not a .csv or .jsonl file; ignored")
            out.extend(_file_source(e, e.name) for e in found)
        elif p.is_file():
            out.append(_file_source(p, p.name, explicit))
        else:
            raise ImportError_(f"{p}: no such file or directory", details={"path": str(p)})
    if not out:
        raise ImportError_("no import files found (expected files such as products.csv or orders.jsonl)")
    return out


def _check_explicit(paths: list[Path], kind: str) -> None:
    """An explicit type applies to every file given: no directories, and no two files whose names
    say different types (one of them would be read as the wrong type)."""
    dirs = [p for p in paths if p.is_dir()]
    if dirs:
        raise ImportError_(f"{dirs[0]}: a type applies to files, not to a directory",
                           details={"path": str(dirs[0])})
    named = {k[0]: p.name for p in paths if (k := file_type(p.name))}
    if len(paths) > 1 and (len(named) > 1 or (named and kind not in named)):
        raise ImportError_(f"the type {kind!r} applies to every file given, but "
                           + ", ".join(f"{n} is named as {t}" for t, n in named.items())
                           + ": import files of different types in separate runs",
                           details={"type": kind, "files": sorted(named.values())})


def _file_source(path: Path, name: str, explicit: str | None = None) -> Source:
    kind, fmt = _typed(name, explicit)
    return Source(name, kind, fmt, lambda: open(path, "rb"), path.stat().st_size)


class _Borrowed(io.RawIOBase):
    """A caller's stream that our `with` blocks may close without closing the caller's file."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self._inner.read(len(b))
        n = len(data)
        b[:n] = data
        return n


def _stream_sources(files: Mapping[str, BinaryIO], *, types: Mapping[str, str], need_rewind: bool,
                    stack: contextlib.ExitStack) -> list[Source]:
    out: list[Source] = []
    for name, stream in files.items():
        kind, fmt = _typed(name, types.get(name))
        if (need_rewind or kind is None) and not _seekable(stream):
            # Strict mode reads each file twice; spool a one-way stream to disk, not to memory.
            spool = stack.enter_context(tempfile.TemporaryFile())
            shutil.copyfileobj(stream, spool, 1 << 20)
            spool.seek(0)
            stream = spool
        start = stream.tell() if _seekable(stream) else 0

        def opener(s: BinaryIO = stream, at: int = start) -> BinaryIO:
            if _seekable(s):
                s.seek(at)
            return io.BufferedReader(_Borrowed(s), 1 << 16)  # type: ignore[return-value]

        size = None
        if _seekable(stream):
            size = stream.seek(0, os.SEEK_END) - start
            stream.seek(start)
        out.append(Source(name, kind, fmt, opener, size))
    return out


def peek_type(name: str, stream: BinaryIO, *, explicit: str | None = None,
              max_field_bytes: int = 65536) -> str | None:
    """The type an upload will import as (explicit, else its name, else its header row), read from a
    seekable stream without moving or closing it; None when it cannot be told."""
    kind, fmt = _typed(name, explicit)
    if kind is not None or not _seekable(stream):
        return kind
    at = stream.tell()
    src = Source(name, None, fmt, lambda: io.BufferedReader(_Borrowed(stream), 1 << 16))  # type: ignore[arg-type,return-value]
    try:
        detect_type(src, delimiter=",", max_field_bytes=max_field_bytes)
    finally:
        stream.seek(at)
    return src.type


def _seekable(s: Any) -> bool:
    try:
        return bool(s.seekable())
    except (AttributeError, ValueError, OSError):
        return False


# -- writer thread --------------------------------------------------------------------------------------
# (statement, parameters, fallback): the fallback builds MERGE statements for a CREATE that met
# the unique constraint; built only when needed, since it doubles the work of preparing a batch.
Op = tuple[Query, dict[str, Any], "Callable[[], list[Op]] | None"]


class _Writer:
    """Runs a batch's statements in order on its own thread so parsing overlaps the server's work.

    At most two batches wait; the first error stops the writing and is raised to the importer at
    its next submit or drain.
    """

    def __init__(self, store: GraphStore) -> None:
        self.store = store
        self._q: queue.Queue[tuple[list[Op], Callable[[], Callable[[], None]] | None] | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="kg-import-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._q.get()
            try:
                if job is None:
                    return
                ops, audit = job
                if self._error is None:
                    # The audit record is prepared (old values read) before the batch is written
                    # and stored once it is: here, so the reading overlaps the next batch's parsing.
                    store_record = audit() if audit is not None else None
                    for query, params, fallback in ops:
                        self._run(query, params, fallback)
                    if store_record is not None:
                        store_record()
            except BaseException as exc:  # noqa: BLE001 - handed to the importer's thread
                self._error = exc
            finally:
                self._q.task_done()

    def _run(self, query: Query, params: dict[str, Any], fallback) -> None:
        try:
            self.store.run(query, params, timeout_ms=WRITE_TIMEOUT_MS)
        except QueryError as exc:
            # A CREATE retried after the server died having applied it (or a concurrent import)
            # meets the unique constraint: the rows exist, so MERGE them instead.
            text = str(exc).lower()
            if fallback is None or not ("unique constraint" in text or "already exists" in text):
                raise  # FalkorDB says "unique constraint violation", Neo4j "... already exists with label"
            log.info("create batch met existing rows; merging instead", extra={"query": query.name})
            for q2, p2, _ in fallback():
                self.store.run(q2, p2, timeout_ms=WRITE_TIMEOUT_MS)

    def submit(self, ops: list[Op], audit: Callable[[], Callable[[], None]] | None = None) -> None:
        """Queue a batch's statements; `audit()`, called before they run, returns what stores the
        batch's audit record after they succeed."""
        self._check()
        if ops:
            self._q.put((ops, audit))

    def drain(self) -> None:
        self._q.join()
        self._check()

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error  # kept: nothing more is written after a failure


# -- one pass over the files ------------------------------------------------------------------------------
class _Pass:
    def __init__(self, store: GraphStore, settings: Settings, report: ImportReport, *, mode: Mode,
                 delimiter: str, progress: bool, audit: AuditSink | None = None,
                 refuse_missing: bool = False) -> None:
        self.store = store
        # Brands and categories that products name but nothing defines: created, or (strict without
        # create_missing) rejected. `missing` counts, per file, the rows naming them.
        self.refuse_missing = refuse_missing
        self.implicit: dict[str, set[Any]] = defaultdict(set)
        self.missing: dict[str, _Missing] = {}
        self.audit = audit if mode == "write" else None
        self.settings = settings
        self.report = report
        self.mode = mode
        self.delimiter = delimiter
        self.progress = progress
        self.batch_size = settings.import_batch_size
        self.known: dict[str, dict[Any, int | None]] = {label: {} for label in _TRACKED}
        self.now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.changed = False
        self.writer: _Writer | None = None

    # -- driving ------------------------------------------------------------------------------------
    def run(self, sources: list[Source]) -> None:
        if self.mode == "write":
            self.writer = _Writer(self.store)
        try:
            for src in sources:
                self._file(src)
                if self.writer is not None:
                    self.writer.drain()  # a later file may refer to anything this one wrote
        finally:
            if self.writer is not None:
                self.writer.close()

    def _file(self, src: Source) -> None:
        fr = FileReport(file=src.name, type=src.type, format=src.format)
        self.report.files.append(fr)
        if src.type is None:
            fr.failed = True
            self.report.add_error(src.name, None, None, f"unknown file type: {src.problem}; name it after its "
                                  "type (products.csv, orders.jsonl, ...) or give the type (--type, or the "
                                  "`type` field over HTTP)")
            return
        ft = TYPES[src.type]
        try:
            stream = src.open()
        except OSError as exc:
            fr.failed = True
            self.report.add_error(src.name, None, None, f"cannot open the file: {exc.strerror or exc}")
            return
        with stream:
            try:
                reader = open_reader(stream, src.format or "csv", delimiter=self.delimiter,
                                     max_field_bytes=self.settings.import_max_field_bytes)
            except FileProblem as p:
                fr.failed = True
                self.report.add_error(src.name, p.line, p.column, p.reason)
                return
            extras: tuple[str, ...] | None = None
            if reader.columns is not None:
                missing = [c for c in ft.required if c not in reader.columns]
                if missing:
                    fr.failed = True
                    for c in missing:
                        self.report.add_error(src.name, 1, c, "missing required column")
                    return
                unknown = [c for c in reader.columns if c not in ft.columns]
                extras = tuple(c for c in unknown if c)
                self._warn_unknown(src.name, ft, unknown)
            validator = Validator(ft, store_currency=self.settings.store_currency,
                                  extra_columns=extras if extras is not None else ())
            self.missing = {}
            self._rows(src, ft, fr, reader, validator, dynamic_extras=extras is None)
            self._warn_missing(src.name)

    def _warn_missing(self, name: str) -> None:
        """One warning per file and label: how many rows name how many undefined nodes."""
        if self.refuse_missing:
            outcome = "not created (--strict without --create-missing); the rows are rejected"
        else:
            outcome = "created them" if self.mode == "write" else "they would be created"
        for label, m in self.missing.items():
            names = list(m.names)
            shown = ", ".join(map(repr, names[:_MISSING_SHOWN])) + (", ..." if len(names) > _MISSING_SHOWN else "")
            rows = f"{m.rows} rows name" if m.rows != 1 else "1 row names"
            what = f"{len(names)} {_PLURAL[label]} that do" if len(names) != 1 else f"1 {label.lower()} that does"
            self.report.warn(f"{name}: {rows} {what} not exist: {shown}; {outcome}")

    def _warn_unknown(self, name: str, ft: FileType, unknown: list[str]) -> None:
        if not unknown:
            return
        named = [c for c in unknown if c]
        if "" in unknown:
            self.report.warn(f"{name}: a column without a name is ignored")
        if named and not ft.extra_to_attributes:
            self.report.warn(f"{name}: unknown columns ignored: {', '.join(named)}")
        elif named:
            log.info("extra product columns kept as attributes", extra={"file": name, "columns": named})

    def _rows(self, src: Source, ft: FileType, fr: FileReport, reader, validator: Validator, *,
              dynamic_extras: bool) -> None:
        seen: dict[Any, int] = {}
        batch: list[Clean] = []
        report, name = self.report, src.name
        known_cols = set(ft.columns)
        warned_unknown = False
        bar = _progress(self.progress, src, self.mode)
        done = n_rows = n_rejected = 0  # local counters: a pydantic attribute write costs microseconds
        try:
            for rec in reader:
                n_rows += 1
                if rec.values is None:
                    n_rejected += 1
                    report.add_error(name, rec.line, rec.column, rec.reason or "unreadable row")
                    continue
                values = rec.values
                if dynamic_extras:
                    extra = tuple(k for k in values if k not in known_cols)
                    if extra:
                        if ft.extra_to_attributes:
                            validator.extra = tuple(k for k in extra if k)
                        elif not warned_unknown:
                            warned_unknown = True
                            self._warn_unknown(name, ft, list(extra))
                    elif ft.extra_to_attributes:
                        validator.extra = ()
                res = validator.validate(values)
                if type(res) is list:
                    n_rejected += 1
                    for col, reason in res:
                        report.add_error(name, rec.line, col, reason)
                    continue
                first = seen.get(res.key)
                if first is not None:
                    n_rejected += 1
                    report.add_error(name, rec.line, _key_column(ft),
                                     f"duplicate {_key_name(ft)} {_show_key(res.key)} (first on line {first})")
                    continue
                seen[res.key] = rec.line
                res.line = rec.line
                batch.append(res)
                if len(batch) >= self.batch_size:
                    self._flush(src, ft, fr, batch)
                    batch = []
                    if bar is not None:
                        bar.update(reader.bytes_read - done)
                        done = reader.bytes_read
            if batch:
                self._flush(src, ft, fr, batch)
            if bar is not None:
                bar.update(reader.bytes_read - done)
        finally:
            fr.rows += n_rows
            fr.rejected += n_rejected
            if bar is not None:
                bar.close()

    # -- one batch ----------------------------------------------------------------------------------
    def _flush(self, src: Source, ft: FileType, fr: FileReport, batch: list[Clean]) -> None:
        rows = self._check_refs(src, ft, fr, batch)
        if self.mode == "check" or not rows:
            return
        created, props_changed, relinked, unchanged = self._classify(ft, rows)
        fr.created += len(created)
        fr.updated += len(props_changed) + len(relinked)
        fr.unchanged += len(unchanged)
        if self.mode == "write" and (created or props_changed or relinked):
            self.changed = True
            assert self.writer is not None
            audit = None
            if self.audit is not None:
                sink = self.audit
                changed = [*props_changed, *relinked]

                def audit() -> Callable[[], None]:
                    changes = self._changes(src, ft, created, changed)
                    return lambda: sink(changes)

            self.writer.submit(self._ops(ft, created, props_changed, relinked), audit)

    def _check_refs(self, src: Source, ft: FileType, fr: FileReport, batch: list[Clean]) -> list[Clean]:
        known = self.known
        need: dict[str, set[Any]] = defaultdict(set)
        for row in batch:
            for _col, label, key, _mode in row.refs:
                if key not in known[label]:
                    need[label].add(key)
        for label, keys in need.items():
            known[label].update(self._existing(label, keys))
        implicit: dict[str, list[str]] = defaultdict(list)
        first_line: dict[tuple[str, Any], int] = {}  # the row that named an implicit node first
        own = known.get(ft.label or "")
        accepted: list[Clean] = []
        for row in batch:
            bad: list[tuple[str, str]] | None = None
            for col, label, key, mode in row.refs:
                if mode == "implicit" and (key in self.implicit[label] or key not in known[label]):
                    self._note_missing(label, key, row.line)
                    if self.refuse_missing:
                        bad = bad or []
                        bad.append((col, f"unknown {col} {key!r}: no {_FILES[label]} row or graph node defines "
                                         "it (--create-missing or create_missing=true creates it)"))
                        continue
                if key in known[label]:
                    continue
                if mode == "implicit":
                    known[label][key] = None
                    self.implicit[label].add(key)
                    implicit[label].append(key)
                    first_line.setdefault((label, key), row.line)
                    continue
                what = _APPLIES_WHAT[label] if col == "applies_to" else _WHAT.get(col, col)
                bad = bad or []
                bad.append((col, f"unknown {what} {key!r}"))
            if bad:
                fr.rejected += 1
                for col, reason in bad:
                    self.report.add_error(src.name, row.line, col, reason)
                continue
            accepted.append(row)
            if own is not None and row.key not in own:
                own[row.key] = None
        if implicit and self.mode == "write":
            self.changed = True
            for label, names in implicit.items():
                rows = self.store.run(Q.ENSURE[label], {"keys": names}, timeout_ms=WRITE_TIMEOUT_MS)
                for k, node_id in rows[0]["found"] if rows else []:
                    known[label][k] = node_id
            if self.audit is not None:
                self.audit([Change(label, str(k), "created", None, {"name": k}, src.name, first_line.get((label, k)))
                            for label, names in implicit.items() for k in names])
        return accepted

    def _note_missing(self, label: str, key: Any, line: int) -> None:
        m = self.missing.get(label)
        if m is None:
            m = self.missing[label] = _Missing()
        if m.last_line != line:
            m.rows += 1
            m.last_line = line
        m.names[key] = None

    # -- audit ----------------------------------------------------------------------------------------
    def _changes(self, src: Source, ft: FileType, created: list[Clean], changed: list[Clean]) -> list[Change]:
        """Change records for a batch: new values of created rows; old and new values of the fields
        that differ for changed rows (their old values read in one query)."""
        label = ft.label or "OrderItem"
        out = [Change(label, _audit_key(r.key), "created", None, _values(ft, r), src.name, r.line) for r in created]
        if not changed:
            return out
        old = self._snapshot(ft, changed)
        for r in changed:
            before = old.get(r.key)
            after = _values(ft, r)
            if before is None:  # gone since it was classified: write it as new
                out.append(Change(label, _audit_key(r.key), "created", None, after, src.name, r.line))
                continue
            fields = [f for f in after if not _same(before.get(f), after[f])]
            if fields:
                out.append(Change(label, _audit_key(r.key), "updated", {f: before.get(f) for f in fields},
                                  {f: after[f] for f in fields}, src.name, r.line))
        return out

    def _snapshot(self, ft: FileType, rows: list[Clean]) -> dict[Any, dict[str, Any]]:
        if ft.label is None:
            res = self.store.run(Q.CONTAINS_SNAPSHOT, {"rows": [[r.key[0], r.key[1]] for r in rows]},
                                 timeout_ms=WRITE_TIMEOUT_MS)
            return {(x["order_id"], x["sku"]): {k: x.get(k) for k in CONTAINS_FIELDS} for x in res}
        res = self.store.run(Q.SNAPSHOT[ft.label], {"keys": [r.key for r in rows]}, timeout_ms=WRITE_TIMEOUT_MS)
        names = Q.NODES[ft.label].props
        out: dict[Any, dict[str, Any]] = {}
        for x in res:
            values = dict(zip(names, x.get("props") or (), strict=False))
            values.update({k: v for k, v in x.items() if k not in ("key", "props")})
            out[x["key"]] = values
        return out

    def _existing(self, label: str, keys: set[Any]) -> dict[Any, None]:
        """Which of `keys` exist in the graph (node ids not yet known)."""
        items = list(keys)
        out: dict[Any, None] = {}
        for i in range(0, len(items), self.batch_size):
            chunk = items[i : i + self.batch_size]
            rows = self.store.run(Q.MISSING[label], {"keys": chunk}, timeout_ms=WRITE_TIMEOUT_MS)
            missing = set(rows[0]["missing"]) if rows else set()
            out.update((k, None) for k in chunk if k not in missing)
        return out

    def _ids(self, label: str, keys: set[Any]) -> dict[Any, int]:
        """Node ids for the product fast path, which links by id rather than by an index look-up."""
        items = list(keys)
        out: dict[Any, int] = {}
        for i in range(0, len(items), self.batch_size):
            rows = self.store.run(Q.IDS[label], {"keys": items[i : i + self.batch_size]}, timeout_ms=WRITE_TIMEOUT_MS)
            if rows:
                out.update((k, node_id) for k, node_id in rows[0]["found"])
        return out

    def _classify(self, ft: FileType, rows: list[Clean]):
        if ft.label is None:
            params = [[r.key[0], r.key[1], r.h, i] for i, r in enumerate(rows)]
            query, absent_query = Q.CONTAINS_CLASSIFY, Q.CONTAINS_ABSENT
        else:
            params = [[r.key, r.h, i] for i, r in enumerate(rows)]
            query, absent_query = Q.CLASSIFY[ft.label], Q.ABSENT[ft.label]
        res = self.store.run(query, {"rows": params}, timeout_ms=WRITE_TIMEOUT_MS)
        matched = res[0]["matched"] if res else 0
        changed = res[0]["changed"] if res else []
        kind = [-1] * len(rows)  # -1 new, 0 unchanged, 1 properties changed, 2 relationships changed
        for c in changed:
            kind[c >> 2] = c & 3
        if matched > len(changed):  # some rows exist unchanged: which are they?
            if matched == len(rows):
                kind = [0 if k == -1 else k for k in kind]
            else:
                rest = [[*p[:-2], p[-1]] for p, k in zip(params, kind, strict=True) if k == -1]
                res = self.store.run(absent_query, {"rows": rest}, timeout_ms=WRITE_TIMEOUT_MS)
                absent = set(res[0]["absent"]) if res else set()
                kind = [0 if k == -1 and i not in absent else k for i, k in enumerate(kind)]
        created, props_changed, relinked, unchanged = [], [], [], []
        has_rels = ft.label is not None and bool(Q.NODES[ft.label].rels)
        for r, k in zip(rows, kind, strict=True):
            if k == -1:
                created.append(r)
            elif k == 0:
                unchanged.append(r)
            elif k == 1 or not has_rels:
                props_changed.append(r)
            else:
                relinked.append(r)
        return created, props_changed, relinked, unchanged

    # -- statements ------------------------------------------------------------------------------------
    def _ops(self, ft: FileType, created: list[Clean], props_changed: list[Clean],
             relinked: list[Clean]) -> list[Op]:
        if ft.label is None:
            rows = [[r.key[0], r.key[1], *r.props, r.h] for r in (*created, *props_changed, *relinked)]
            return [(Q.CONTAINS_UPSERT, {"rows": rows}, None)]
        ops: list[Op] = []
        if ft.label == "Product" and created:
            ops.extend(self._product_creates(created))
            created = []
        ops.extend(self._generic(ft.label, created, props_changed, relinked))
        return ops

    def _generic(self, label: str, created: list[Clean], props_changed: list[Clean],
                 relinked: list[Clean]) -> list[Op]:
        spec = Q.NODES[label]
        extra = {"now": self.now} if spec.stamped else {}
        seal_later = bool(spec.rels)
        up = [[r.key, *r.props, r.h] for r in props_changed]
        up += [[r.key, *r.props, None if seal_later else r.h] for r in (*created, *relinked)]
        ops: list[Op] = []
        if up:
            ops.append((Q.UPSERT[label], {"rows": up, **extra}, None))
        if not seal_later or not (created or relinked):
            return ops
        if relinked:
            keys = [r.key for r in relinked]
            ops.extend((uq, {"keys": keys}, None) for uq in Q.UNLINK[label])
        ops.extend(self._links(label, (*created, *relinked)))
        ops.append((Q.SEAL[label], {"rows": [[r.key, r.h] for r in (*created, *relinked)]}, None))
        return ops

    def _links(self, label: str, rows: Sequence[Clean]) -> list[Op]:
        spec = Q.NODES[label]
        ops: list[Op] = []
        for rel in spec.rels:
            if rel.column == "applies_to":
                pairs = [[r.key, k] for r in rows for t_label, k in r.links.get("applies_to", ()) if t_label == rel.target]
            else:
                pairs = [[r.key, r.links[rel.column]] for r in rows if r.links.get(rel.column) is not None]
            if pairs:
                ops.append((Q.LINK[(label, rel.type, rel.target)], {"rows": pairs}, None))
        return ops

    def _product_creates(self, rows: list[Clean]) -> list[Op]:
        spec = Q.NODES["Product"]
        known = self.known
        missing: dict[str, set[Any]] = defaultdict(set)
        for r in rows:
            for rel in spec.rels:
                k = r.links.get(rel.column)
                if k is not None and known[rel.target].get(k) is None:
                    missing[rel.target].add(k)
        for label, keys in missing.items():
            known[label].update(self._ids(label, keys))
        groups: dict[str, tuple[list[list[Any]], list[Clean]]] = {}
        leftovers: list[Clean] = []
        targets = [(rel.column, known[rel.target]) for rel in spec.rels]
        for r in rows:
            links, ids, mask = r.links, [], ""
            for column, ids_by_key in targets:
                k = links.get(column)
                if k is None:
                    ids.append(None)
                    mask += "0"
                    continue
                node_id = ids_by_key.get(k)
                if node_id is None:
                    break  # a target vanished since the check: take the MERGE path
                ids.append(node_id)
                mask += "1"
            else:
                group = groups.get(mask)
                if group is None:
                    group = groups[mask] = ([], [])
                group[0].append([r.key, *r.props, r.h, *ids])
                group[1].append(r)
                continue
            leftovers.append(r)
        ops: list[Op] = []
        for mask, (params, clean) in groups.items():
            ops.append((Q.PRODUCT_CREATE[mask], {"rows": params, "now": self.now},
                        # The rows exist after all (a retried CREATE, or a concurrent import):
                        # replace their links as for a move, so no old link survives.
                        lambda clean=clean: self._generic("Product", [], [], clean)))
        if leftovers:
            ops.extend(self._generic("Product", leftovers, [], []))
        return ops

    def finish(self) -> None:
        if self.mode == "write" and self.changed:
            rows = self.store.run(Q.BUMP_VERSION, {"now": self.now}, timeout_ms=WRITE_TIMEOUT_MS)
            self.report.version = rows[0]["version"] if rows else None
            self.report.written = True
        else:
            rows = self.store.run(Q.CATALOG_VERSION, {})
            self.report.version = rows[0]["version"] if rows else None


CONTAINS_FIELDS = ("quantity", "unit_price", "discount")
_NOT_AUDITED = frozenset({"attr_values"})  # derived from attributes


def _values(ft: FileType, row: Clean) -> dict[str, Any]:
    """A row's values as the audit log shows them: its properties and the keys it links to."""
    if ft.label is None:
        return dict(zip(CONTAINS_FIELDS, row.props, strict=False))
    spec = Q.NODES[ft.label]
    out = {p: v for p, v in zip(spec.props, row.props, strict=False) if p not in _NOT_AUDITED}
    for rel in spec.rels:
        if rel.column != "applies_to":
            out[rel.column] = row.links.get(rel.column)
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return False
    return bool(a == b)


def _audit_key(key: Any) -> str:
    return "/".join(map(str, key)) if isinstance(key, tuple) else str(key)


def _key_column(ft: FileType) -> str:
    return "question" if ft.name == "faqs" else (ft.key if isinstance(ft.key, str) else "sku")


def _key_name(ft: FileType) -> str:
    return {"faqs": "question", "order_items": "order item"}.get(ft.name, _key_column(ft))


def _show_key(key: Any) -> str:
    if isinstance(key, tuple):
        return f"(order {key[0]!r}, sku {key[1]!r})"
    return repr(key)


def _progress(enabled: bool, src: Source, mode: Mode):
    if not enabled:
        return None
    from tqdm import tqdm

    desc = src.name if mode != "check" else f"checking {src.name}"
    return tqdm(total=src.size, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=True)


# -- entry points -----------------------------------------------------------------------------------------
def normalise_delimiter(delimiter: str) -> str:
    d = {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(delimiter, delimiter)
    if len(d) != 1 or d in '"\r\n' or ord(d) > 127:
        raise ImportError_(f"the delimiter must be one ASCII character other than a quote or newline: {delimiter!r}")
    return d


def _run(store: GraphStore, sources: list[Source], report: ImportReport, *, settings: Settings,
         strict: bool, dry_run: bool, create_missing: bool, delimiter: str, progress: bool,
         audit: AuditSink | None) -> ImportReport:
    for src in sources:
        if src.type is None:
            detect_type(src, delimiter=delimiter, max_field_bytes=settings.import_max_field_bytes)
    sources = sorted(sources, key=_order_key)
    report.strict, report.dry_run = strict, dry_run
    opts: dict[str, Any] = {"delimiter": delimiter, "progress": progress,
                            "refuse_missing": strict and not create_missing}
    if dry_run:
        p = _Pass(store, settings, report, mode="dry", **opts)
        p.run(sources)
        p.finish()
        return report
    if strict:
        check = report.model_copy(deep=True)
        _Pass(store, settings, check, mode="check", **opts).run(sources)
        if not check.ok:
            rows = store.run(Q.CATALOG_VERSION, {})
            check.version = rows[0]["version"] if rows else None
            return check
    p = _Pass(store, settings, report, mode="write", audit=audit, **opts)
    try:
        p.run(sources)
    except BaseException:
        if p.changed:
            # A failed import may have written some batches: caches must still see a new version.
            with contextlib.suppress(Exception):
                p.finish()
        raise
    p.finish()
    return report


def import_path(store: GraphStore, paths: Path | str | Sequence[Path | str], *, settings: Settings,
                strict: bool = False, dry_run: bool = False, create_missing: bool = False,
                file_type: str | None = None, delimiter: str = ",", progress: bool = True,
                audit: AuditSink | None = None) -> ImportReport:
    """Import files and directories of DESIGN section 3 files (a directory in dependency order).
    `audit` receives a description of every write (kg/audit.py). Brands and categories that
    products name but nothing defines are created, except under `strict` without `create_missing`.
    `file_type` reads every file given (no directories) as that type, whatever its name; without
    it a file's name, else its header row, says its type."""
    delimiter = normalise_delimiter(delimiter)
    report = ImportReport()
    sources = _path_sources(paths, report, file_type)
    return _run(store, sources, report, settings=settings, strict=strict, dry_run=dry_run,
                create_missing=create_missing, delimiter=delimiter, progress=progress, audit=audit)


def import_files(store: GraphStore, files: Mapping[str, BinaryIO], *, settings: Settings,
                 strict: bool = False, dry_run: bool = False, create_missing: bool = False,
                 types: Mapping[str, str] | None = None, delimiter: str = ",", progress: bool = False,
                 audit: AuditSink | None = None) -> ImportReport:
    """Import uploaded streams keyed by file name (`products.csv`, ...), as the HTTP layer has them.
    `types` gives some files' types explicitly (by name); the others' come from their names, else
    their header rows.

    Streams are read, never closed; strict mode reads each twice, spooling one-way streams to a
    temporary file first.
    """
    delimiter = normalise_delimiter(delimiter)
    if not files:
        raise ImportError_("no files to import")
    report = ImportReport()
    with contextlib.ExitStack() as stack:
        sources = _stream_sources(files, types=types or {}, need_rewind=strict and not dry_run, stack=stack)
        return _run(store, sources, report, settings=settings, strict=strict, dry_run=dry_run,
                    create_missing=create_missing, delimiter=delimiter, progress=progress, audit=audit)


def iter_error_lines(report: ImportReport, limit: int = 20) -> Iterator[str]:
    """The first errors as 'file:line: column: reason' lines, for terminals and logs."""
    for e in report.errors[:limit]:
        where = f"{e.file}:{e.line}" if e.line is not None else e.file
        col = f" [{e.column}]" if e.column else ""
        yield f"{where}{col}: {e.reason}"
