"""Shop examples in the graph: reading example files, storing examples, and keeping every worker's
`ExampleIndex` (nlu/shop_examples.py) equal to what is stored.

- `read_examples_file`: a CSV (`text,intent` header, UTF-8 with or without BOM) or JSON Lines
  (`{"text": ..., "intent": ...}`) file into rows and per-row errors (file, physical line with the
  header as line 1, reason), through the importer's own readers (kg/catalog/reader.py).
- `validate_rows`: the per-row rules, shared by files, the API's JSON body and the CLI: a known
  intent (nlu/labels.py), a non-empty text of at most `MAX_TEXT_CHARS` characters, no duplicate of
  an earlier row, and no contradiction (the same normalised text with two different intents:
  every row involved is refused, naming the other intent).
- `ExampleStore`: add (checked against what is stored as well: a text already stored with another
  intent is a contradiction, with the same intent it is unchanged), list, remove, version; every
  write records who made it (`added_by`: an API key id, or "cli") and bumps the version in the
  same statement (kg/queries/shop_examples.py).
- `ExampleSync`: before a message is understood, `refresh()` reads the version (at most every
  `refresh_s` seconds, unless forced) and, when it changed, reloads the examples into the
  understander's index. Vectors are cached by example id (an id's text never changes), so a reload
  encodes only the examples that are new to this worker. It never raises: on a graph or model
  error the old index stays and the error is logged.

Texts are compared (ids, duplicates, contradictions) in a normal form: Unicode NFKC, lower case,
punctuation removed, whitespace collapsed. An example's id is the first 12 hex digits of the
SHA-256 of that form.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import logging
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.errors import ImportError_
from nlu.labels import INTENTS

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 500
MAX_EXAMPLES = 5_000  # per shop; the index is compared with every message
ID_HEX = 12
FORMATS = {".csv": "csv", ".jsonl": "jsonl"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ID_RE = re.compile(rf"^[0-9a-f]{{{ID_HEX}}}$")


# -- text ---------------------------------------------------------------------------------------------
def normalise(text: str) -> str:
    """The form texts are compared in: NFKC, lower case, punctuation removed, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    return " ".join(text.split())


def example_id(text: str) -> str:
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:ID_HEX]


def is_example_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


def _short(text: Any, n: int = 80) -> str | None:
    if not isinstance(text, str):
        return None
    return text if len(text) <= n else text[: n - 1] + "…"


# -- rows and problems --------------------------------------------------------------------------------
@dataclass
class ExampleRow:
    """One labelled message as given: from a file (`file`, `line`) or a request body (`index`)."""

    text: Any
    intent: Any
    file: str | None = None
    line: int | None = None
    index: int | None = None

    @property
    def where(self) -> str:
        if self.file is not None:
            return f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"examples[{self.index}]" if self.index is not None else "example"


@dataclass
class RowError:
    """A row that was refused. `kind`: unreadable | invalid | duplicate | contradiction."""

    reason: str
    kind: str = "invalid"
    file: str | None = None
    line: int | None = None
    index: int | None = None
    text: str | None = None
    intent: str | None = None
    other_intent: str | None = None  # contradictions: the intent the other row (or the store) gives
    other_line: int | None = None
    other_id: str | None = None  # contradiction with a stored example: its id

    @property
    def where(self) -> str:
        return ExampleRow(None, None, self.file, self.line, self.index).where

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.where, "message": self.reason, **asdict(self)}

    def describe(self) -> str:
        return f"{self.where} [{self.kind}]: {self.reason}"

    @classmethod
    def of(cls, row: ExampleRow, reason: str, kind: str = "invalid", **extra: Any) -> RowError:
        return cls(reason=reason, kind=kind, file=row.file, line=row.line, index=row.index, text=_short(row.text),
                   intent=row.intent if isinstance(row.intent, str) else None, **extra)


@dataclass
class ParsedFile:
    file: str
    rows: list[ExampleRow]
    errors: list[RowError]


@dataclass(frozen=True)
class StoredExample:
    id: str
    text: str
    intent: str
    added_at: str | None = None
    added_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AddReport:
    """What an add did. Nothing is written when `strict` and any row was refused."""

    strict: bool = False
    written: bool = False
    rows: int = 0
    added: list[dict[str, Any]] = field(default_factory=list)  # id, text, intent, where
    unchanged: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    contradictions: list[RowError] = field(default_factory=list)
    version: int = 0

    @property
    def problems(self) -> list[RowError]:
        return [*self.errors, *self.contradictions]

    def to_dict(self) -> dict[str, Any]:
        return {"strict": self.strict, "written": self.written, "rows": self.rows, "added": self.added,
                "unchanged": self.unchanged, "errors": [e.to_dict() for e in self.errors],
                "contradictions": [e.to_dict() for e in self.contradictions], "version": self.version}

    def summary(self) -> str:
        return (f"{len(self.added)} added, {len(self.unchanged)} unchanged, {len(self.errors)} error(s), "
                f"{len(self.contradictions)} contradiction(s); shop examples version {self.version}")


# -- reading files ------------------------------------------------------------------------------------
def read_examples_file(data: bytes | str | Path, filename: str | None = None) -> ParsedFile:
    """Rows and per-row errors of one CSV or JSON Lines file (bytes, or a path to read).

    Raises `ImportError_` when the file cannot be read at all (unknown extension, another
    encoding, no header, no `text` or `intent` column)."""
    from kg.catalog.reader import FileProblem, open_reader

    if isinstance(data, (str, Path)):
        path = Path(data)
        filename = filename or path.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImportError_(f"{filename}: cannot be read ({exc.strerror or exc})") from None
    name = (filename or "examples.csv").replace("\\", "/").rsplit("/", 1)[-1]
    fmt = FORMATS.get(Path(name.lower()).suffix)
    if fmt is None:
        raise ImportError_(f"{name}: shop examples are a .csv or .jsonl file")
    try:
        reader = open_reader(io.BytesIO(data), fmt)  # type: ignore[arg-type]
        if fmt == "csv":
            missing = [c for c in ("text", "intent") if c not in (reader.columns or [])]
            if missing:
                raise FileProblem(f"the header must name the columns text and intent (missing: {', '.join(missing)})")
        rows: list[ExampleRow] = []
        errors: list[RowError] = []
        for rec in reader:
            if rec.values is None:
                errors.append(RowError(reason=rec.reason or "unreadable row", kind="unreadable", file=name,
                                       line=rec.line))
                continue
            rows.append(ExampleRow(rec.values.get("text"), rec.values.get("intent"), file=name, line=rec.line))
    except FileProblem as exc:
        raise ImportError_(f"{name}:{exc.line or 1}: {exc.reason}", details={"file": name, "line": exc.line}) from None
    good, problems = validate_rows(rows)
    return ParsedFile(name, good, sorted(errors + problems, key=_order))


# -- the rules ----------------------------------------------------------------------------------------
def _clean(row: ExampleRow) -> tuple[ExampleRow | None, RowError | None]:
    text, intent = row.text, row.intent
    if text is None or (isinstance(text, str) and not text.strip()):
        return None, RowError.of(row, "empty text")
    if not isinstance(text, str):
        return None, RowError.of(row, f"the text must be a string, not {type(text).__name__}")
    if _CONTROL.search(text):
        return None, RowError.of(row, "the text contains control characters")
    text = " ".join(text.split())
    if len(text) > MAX_TEXT_CHARS:
        return None, RowError.of(row, f"text too long ({len(text)} characters; at most {MAX_TEXT_CHARS})")
    if not normalise(text):
        return None, RowError.of(row, "the text has no words (only punctuation)")
    if intent is None or (isinstance(intent, str) and not intent.strip()):
        return None, RowError.of(row, "missing intent")
    if not isinstance(intent, str):
        return None, RowError.of(row, f"the intent must be a string, not {type(intent).__name__}")
    name = intent.strip().lower()
    if name not in INTENTS:
        close = difflib.get_close_matches(name, INTENTS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return None, RowError.of(row, f"unknown intent {_short(intent.strip(), 60)!r}{hint}")
    return ExampleRow(text, name, row.file, row.line, row.index), None


def validate_rows(rows: Iterable[ExampleRow]) -> tuple[list[ExampleRow], list[RowError]]:
    """(rows that pass, refused rows): per-row checks, then duplicates and contradictions within
    the batch. A text given with two different intents refuses every row that gives it."""
    errors: list[RowError] = []
    groups: dict[str, list[ExampleRow]] = {}
    for row in rows:
        clean, err = _clean(row)
        if err is not None:
            errors.append(err)
        else:
            assert clean is not None
            groups.setdefault(example_id(clean.text), []).append(clean)
    good: list[ExampleRow] = []
    for group in groups.values():
        intents = {r.intent for r in group}
        if len(intents) > 1:
            for r in group:
                other = next(o for o in group if o.intent != r.intent)
                errors.append(RowError.of(
                    r, f"contradiction: {other.where} gives the same text the intent {other.intent!r}",
                    "contradiction", other_intent=other.intent, other_line=other.line))
            continue
        good.append(group[0])
        for r in group[1:]:
            errors.append(RowError.of(r, f"duplicate of {group[0].where}", "duplicate", other_line=group[0].line))
    good.sort(key=_order)
    errors.sort(key=_order)
    return good, errors


def _order(r: ExampleRow | RowError) -> tuple[str, int, int]:
    return (r.file or "", r.line if r.line is not None else -1, r.index if r.index is not None else -1)


def rows_from_dicts(items: Iterable[Mapping[str, Any]]) -> list[ExampleRow]:
    """Rows of a request body (`[{"text", "intent"}]`), numbered by their index."""
    return [ExampleRow(item.get("text"), item.get("intent"), index=i) for i, item in enumerate(items)]


# -- the store ----------------------------------------------------------------------------------------
def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ExampleStore:
    """Shop examples in the graph through the named queries of kg/queries/shop_examples.py."""

    def __init__(self, store: Any, *, max_examples: int = MAX_EXAMPLES) -> None:
        self.store = store
        self.max_examples = max_examples

    def _q(self, name: str) -> Any:
        from kg.queries import get

        return get(f"shop_examples.{name}")

    def add(self, rows: Iterable[ExampleRow | Mapping[str, Any]], key_id: str, *, strict: bool = False,
            errors: Sequence[RowError] = ()) -> AddReport:
        """Check `rows` (and `errors` found while reading them) and store the good ones, recording
        `key_id` as `added_by`. With `strict`, nothing is written if any row was refused."""
        given = [r if isinstance(r, ExampleRow) else ExampleRow(r.get("text"), r.get("intent"), index=i)
                 for i, r in enumerate(rows)]
        report = AddReport(strict=strict, rows=len(given) + len(errors))
        good, problems = validate_rows(given)
        for e in [*errors, *problems]:
            (report.contradictions if e.kind == "contradiction" else report.errors).append(e)
        stored = {e.id: e for e in self.by_ids([example_id(r.text) for r in good])}
        todo: list[tuple[str, ExampleRow]] = []
        for r in good:
            eid = example_id(r.text)
            old = stored.get(eid)
            if old is None:
                todo.append((eid, r))
            elif old.intent == r.intent:
                report.unchanged.append(_entry(eid, r.text, r.intent, r))
            else:
                report.contradictions.append(RowError.of(
                    r, f"contradiction: the stored example {eid} ({_short(old.text, 60)!r}) has the intent "
                       f"{old.intent!r}; remove it first to relabel it", "contradiction",
                    other_intent=old.intent, other_id=eid))
        room = self.max_examples - self.count()
        if len(todo) > room:
            for _, r in todo[max(room, 0):]:
                report.errors.append(RowError.of(
                    r, f"the shop already has the most examples allowed ({self.max_examples})", "invalid"))
            todo = todo[: max(room, 0)]
        report.errors.sort(key=_order)
        report.contradictions.sort(key=_order)
        if strict and report.problems:
            report.version = self.version()
            return report
        if not todo:
            report.version = self.version()
            return report
        params = {"rows": [{"id": eid, "text": r.text, "intent": r.intent, "pos": i} for i, (eid, r) in enumerate(todo)],
                  "now": _now_iso(), "added_by": key_id, "epoch": secrets.token_hex(6)}
        res = self.store.run(self._q("add"), params)
        row = res[0] if res else {}
        outcome = {eid: (fresh, intent) for eid, fresh, intent in
                   zip(row.get("ids") or [], row.get("fresh") or [], row.get("intents") or [], strict=False)}
        for eid, r in todo:
            fresh, intent = outcome.get(eid, (False, r.intent))
            if fresh:
                report.added.append(_entry(eid, r.text, r.intent, r))
            elif intent == r.intent:  # written meanwhile by someone else, the same way
                report.unchanged.append(_entry(eid, r.text, r.intent, r))
            else:
                report.contradictions.append(RowError.of(
                    r, f"contradiction: the example {eid} was just stored with the intent {intent!r}",
                    "contradiction", other_intent=intent, other_id=eid))
        report.written = bool(report.added)
        report.version = int(row.get("version") or 0)
        if report.added:
            log.info("shop examples added", extra={"added": len(report.added), "by": key_id,
                                                   "version": report.version})
        return report

    def by_ids(self, ids: Sequence[str]) -> list[StoredExample]:
        if not ids:
            return []
        return [_stored(r) for r in self.store.run(self._q("by_ids"), {"ids": list(dict.fromkeys(ids))})]

    def list(self) -> list[StoredExample]:
        return [_stored(r) for r in self.store.run(self._q("list"))]

    def count(self) -> int:
        rows = self.store.run(self._q("count"))
        return int(rows[0]["n"]) if rows else 0

    def remove(self, ids: Iterable[str], key_id: str = "cli") -> int:
        """Remove the examples with these ids; returns how many there were."""
        wanted = [i.strip().lower() for i in ids if isinstance(i, str)]
        wanted = [i for i in dict.fromkeys(wanted) if is_example_id(i)]
        if not wanted:
            return 0
        rows = self.store.run(self._q("remove"), {"ids": wanted, "now": _now_iso(), "epoch": secrets.token_hex(6)})
        removed = int(rows[0]["removed"]) if rows else 0
        if removed:
            log.info("shop examples removed", extra={"removed": removed, "by": key_id})
        return removed

    def _state(self) -> tuple[int, str | None]:
        rows = self.store.run(self._q("version"))
        if not rows:
            return 0, None
        return int(rows[0].get("version") or 0), rows[0].get("epoch")

    def version(self) -> int:
        """The examples' version: 0 before the first write, then bumped by every change."""
        return self._state()[0]

    def stamp(self) -> str | None:
        """Version and epoch together (a dropped and rebuilt graph never looks unchanged)."""
        version, epoch = self._state()
        return None if epoch is None else f"{epoch}:{version}"


def _stored(r: Mapping[str, Any]) -> StoredExample:
    return StoredExample(id=r["id"], text=r["text"], intent=r["intent"], added_at=r.get("added_at"),
                         added_by=r.get("added_by"))


def _entry(eid: str, text: str, intent: str, row: ExampleRow) -> dict[str, Any]:
    return {"id": eid, "text": text, "intent": intent, "field": row.where, "file": row.file, "line": row.line,
            "index": row.index}


# -- keeping a worker's index current ----------------------------------------------------------------
_NEVER = object()


class ExampleSync:
    """Keeps `understander.examples` equal to the stored examples; safe from any number of threads.

    `refresh()` costs nothing between checks, one small read per `refresh_s`, and a reload only
    when the version changed. While one thread reloads, the others carry on with the old index
    rather than wait (a forced refresh waits, so it sees the write that asked for it)."""

    def __init__(self, store: ExampleStore | Any, understander: Any, refresh_s: float = 5.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store if isinstance(store, ExampleStore) else ExampleStore(store)
        self.understander = understander
        self.refresh_s = float(refresh_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp: object = _NEVER
        self._checked_at: float | None = None
        self._vectors: dict[str, Any] = {}  # example id -> vector (an id's text never changes)
        self.last_error: str | None = None

    @property
    def loaded_stamp(self) -> str | None:
        return None if self._stamp is _NEVER else self._stamp  # type: ignore[return-value]

    def _due(self) -> bool:
        return self._checked_at is None or self._clock() - self._checked_at >= self.refresh_s

    def refresh(self, force: bool = False) -> bool:
        """Reload when the stored version changed (checked at most every `refresh_s` seconds unless
        `force`). True when the index was replaced; never raises."""
        if not force and not self._due():
            return False
        if force:
            self._lock.acquire()
        elif not self._lock.acquire(blocking=False):
            return False  # another thread is refreshing; this message uses the current index
        try:
            if not force and not self._due():
                return False
            return self._reload()
        except Exception as exc:  # noqa: BLE001 - a chat turn must never fail because of this
            self.last_error = f"{type(exc).__name__}: {getattr(exc, 'message', str(exc))}"[:300]
            log.warning("shop examples not refreshed; keeping the current ones",
                        extra={"error": type(exc).__name__}, exc_info=log.isEnabledFor(logging.DEBUG))
            return False
        finally:
            self._checked_at = self._clock()  # after a failure too: retry in refresh_s, not every turn
            self._lock.release()

    def _reload(self) -> bool:
        import torch

        stamp = self.store.stamp()  # read before the examples: a write in between reloads next time
        if stamp == self._stamp:
            self.last_error = None
            return False
        examples = self.store.list()
        new = [e for e in examples if e.id not in self._vectors]
        vectors = dict(self._vectors)
        if new:
            for e, v in zip(new, self.understander.vectors([e.text for e in new]), strict=True):
                if v is not None:
                    vectors[e.id] = v
                else:
                    log.info("a shop example has nothing the model can read; skipped", extra={"id": e.id})
        keep = [e for e in examples if e.id in vectors]
        matrix = torch.stack([vectors[e.id] for e in keep]) if keep else torch.zeros(0, 0)
        self.understander.examples.replace(matrix, [e.intent for e in keep], version=stamp)
        self._vectors = {e.id: vectors[e.id] for e in keep}
        self._stamp = stamp
        self.last_error = None
        log.info("shop examples loaded", extra={"examples": len(keep), "version": stamp})
        return True
