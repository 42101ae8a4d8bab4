"""Streaming readers for the import files of DESIGN section 3 (CSV and JSON Lines).

Why a reader of our own around `csv`: the contract asks for things the module alone does not do.
Reports name *physical* lines (a quoted field with embedded newlines spans several; a record is
reported on the line it starts), so the line source counts lines itself. Another encoding must
be reported rather than guessed, so bytes are decoded line by line and an undecodable line marks
its record bad instead of aborting the file. Memory must stay flat whatever the input, so no line
or record may grow without bound: a line source with a byte cap cuts off an oversized record and
skips to its end by tracking the quote state itself (the csv module, once it has raised, would
resume in the middle of the quoted field and report garbage for every line of it).

A record comes back as a `Record`: its starting line and either its values (header name, lower
cased and stripped, to raw value) or the reason it could not be read. Problems that make the whole
file unreadable (UTF-16, no header, duplicate columns) raise `FileProblem`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

import orjson

Format = Literal["csv", "jsonl"]

_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
)
_UTF8_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 16


class FileProblem(Exception):
    """The file cannot be read at all; `line` is where that became clear."""

    def __init__(self, reason: str, line: int | None = 1, column: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.column = column


@dataclass(slots=True)
class Record:
    line: int
    values: dict[str, Any] | None
    column: str | None = None
    reason: str | None = None  # set when the record could not be read; `values` is then None


def normalise_header(name: str) -> str:
    return name.strip().lower()


def encoding_reason(raw: bytes, exc: UnicodeDecodeError) -> str:
    byte = raw[exc.start : exc.start + 1].hex()
    return (
        f"not valid UTF-8 (byte 0x{byte} at position {exc.start + 1} of the line): the file seems to "
        "use another encoding; save it as UTF-8"
    )


def _sniff(head: bytes, name: str) -> None:
    for bom, enc in _BOMS:
        if head.startswith(bom) and not head.startswith(_UTF8_BOM):
            raise FileProblem(f"{name} is {enc}-encoded; save it as UTF-8", 1)
    first = head.split(b"\n", 1)[0]
    if b"\x00" in first:
        raise FileProblem(f"{name} contains NUL bytes in its first line (UTF-16 without a BOM?); save it as UTF-8", 1)


class _Lines:
    """Physical lines of a binary stream as text, with line numbers, a byte cap and quote tracking.

    An iterator class rather than a generator: the csv reader calls `next` on it, and raising
    `_Oversized` out of a generator would end it, while this object carries on after the skip.
    """

    def __init__(self, stream: BinaryIO, *, cap: int, quote: str = '"', delimiter: str = ",") -> None:
        self._stream = stream
        self.cap = cap
        self.line = 0  # physical lines consumed so far
        self.bytes_read = 0
        self.record_start = 1
        self._record_bytes = 0
        self.bad: tuple[int, str] | None = None  # first undecodable line of the current record
        self.nul = False
        self._quote_bytes = quote.encode()
        self._qb = self._quote_bytes[0]
        self._db = delimiter.encode()[0]
        self._special = re.compile(b"[" + re.escape(delimiter.encode()) + b"\n]")
        self._first = True

    @property
    def record_bytes(self) -> int:
        return self._record_bytes

    def start_record(self) -> None:
        self.record_start = self.line + 1
        self._record_bytes = 0
        self.bad = None
        self.nul = False  # the graph store refuses NUL characters; found per line, not per field

    def __iter__(self) -> _Lines:
        return self

    def _read(self) -> bytes:
        raw = self._stream.readline(self.cap + 1)
        if self._first:
            self._first = False
            _sniff(raw[:4096], "the file")
            if raw.startswith(_UTF8_BOM):
                raw = raw[3:]
                self.bytes_read += 3
        self.bytes_read += len(raw)
        return raw

    def __next__(self) -> str:
        raw = self._read()
        if not raw:
            raise StopIteration
        self.line += 1
        continuation = self._record_bytes > 0
        self._record_bytes += len(raw)
        if self._record_bytes > self.cap:
            # The record is too long to hold: skip to its end, then let the caller report it.
            self._skip(raw, in_quotes=continuation)
            raise _Oversized
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if self.bad is None:
                self.bad = (self.line, encoding_reason(raw, exc))
            text = raw.decode("utf-8", "replace")
        if "\x00" in text:
            self.nul = True
        return text

    def _skip(self, chunk: bytes, *, in_quotes: bool) -> None:
        """Consume the rest of an oversized record, following CSV quoting so we stop at its end.

        Only this error path scans bytes in Python, jumping from one quote, delimiter or newline to
        the next. `readline` chunks end at a newline, so a newline is the last byte of a chunk and
        each chunk after one starts a physical line.
        """
        q, d, nl = self._qb, self._db, 10
        special = self._special
        state = _QUOTED if in_quotes else _START
        while chunk:
            i, n = 0, len(chunk)
            while i < n:
                if state == _QUOTED:
                    j = chunk.find(self._quote_bytes, i)
                    if j < 0:
                        break
                    state, i = _QUOTE_IN_QUOTED, j + 1
                    continue
                if state == _FIELD:
                    m = special.search(chunk, i)
                    if m is None:
                        break
                    i = m.start()
                c = chunk[i]
                if c == nl:
                    return  # a newline outside quotes ends the record
                if state == _FIELD:
                    if c == d:
                        state = _START
                else:  # _START or _QUOTE_IN_QUOTED: both may open (or re-open) a quoted run
                    state = _QUOTED if c == q else (_START if c == d else _FIELD)
                i += 1
            ended_line = chunk.endswith(b"\n")
            chunk = self._stream.readline(_CHUNK)
            self.bytes_read += len(chunk)
            if chunk and ended_line:
                self.line += 1


_START, _FIELD, _QUOTED, _QUOTE_IN_QUOTED = range(4)


class _Oversized(Exception):
    pass


class CsvReader:
    def __init__(self, stream: BinaryIO, *, delimiter: str, max_field_bytes: int) -> None:
        self.max_field_bytes = max_field_bytes
        self._quarter = max_field_bytes // 4
        # Quote doubling can make a field twice its size on disk; allow every column one full field.
        self._lines = _Lines(stream, cap=max_field_bytes * 64 + 65536, delimiter=delimiter)
        # Records are capped by `_Lines`, so the csv module's own (global) field limit must never be
        # the one that trips: it raises mid-record and loses its place in a quoted field.
        if csv.field_size_limit() < self._lines.cap * 2:
            csv.field_size_limit(self._lines.cap * 2)
        self._reader = csv.reader(self._lines, delimiter=delimiter, strict=True)
        self.columns: list[str] = self._header()
        self._lines.cap = max(2 * max_field_bytes * len(self.columns) + 4096, max_field_bytes + 4096)

    @property
    def bytes_read(self) -> int:
        return self._lines.bytes_read

    def _header(self) -> list[str]:
        lines = self._lines
        while True:
            lines.start_record()
            try:
                row = next(self._reader)
            except StopIteration:
                raise FileProblem("the file is empty (no header row)", 1) from None
            except _Oversized:
                raise FileProblem("the header row is too long", lines.record_start) from None
            except csv.Error as exc:
                raise FileProblem(f"the header row is malformed: {exc}", lines.record_start) from None
            if lines.bad:
                raise FileProblem(lines.bad[1], lines.bad[0])
            if row and any(c.strip() for c in row):
                break
        cols = [normalise_header(c) for c in row]
        seen: set[str] = set()
        for c in cols:
            if c and c in seen:
                raise FileProblem(f"column {c!r} appears twice in the header", lines.record_start, c)
            seen.add(c)
        return cols

    def __iter__(self) -> Iterator[Record]:
        lines, reader, cols = self._lines, self._reader, self.columns
        ncols = len(cols)
        limit, quarter = self.max_field_bytes, self._quarter
        while True:
            lines.start_record()
            try:
                row = next(reader)
            except StopIteration:
                return
            except _Oversized:
                yield Record(lines.record_start, None, None, f"oversized field: the record is longer than "
                             f"{lines.cap} bytes (a field may hold at most {limit} bytes)")
                continue
            except csv.Error as exc:
                msg = str(exc)
                if "unexpected end of data" in msg:
                    msg = "a quoted field is never closed"
                yield Record(lines.record_start, None, None, f"malformed quoting: {msg}")
                continue
            start = lines.record_start
            if lines.bad:
                yield Record(start, None, None, lines.bad[1])
                continue
            if len(row) != ncols:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # a blank line
                yield Record(start, None, None, f"the row has {len(row)} fields, the header has {ncols}")
                continue
            if lines.nul:
                col = next((c for c, v in zip(cols, row, strict=True) if "\x00" in v), None)
                yield Record(start, None, col, "contains a NUL character")
                continue
            if lines.record_bytes > quarter:
                bad = _oversized_column(row, cols, limit, quarter)
                if bad is not None:
                    yield Record(start, None, bad, f"oversized field: longer than {limit} bytes")
                    continue
            yield Record(start, dict(zip(cols, row, strict=True)))


def _oversized_column(row: list[str], cols: list[str], limit: int, quarter: int) -> str | None:
    for col, v in zip(cols, row, strict=True):
        if len(v) > quarter and len(v.encode("utf-8")) > limit:
            return col
    return None


class JsonLinesReader:
    def __init__(self, stream: BinaryIO, *, max_field_bytes: int) -> None:
        self.max_field_bytes = max_field_bytes
        self._lines = _Lines(stream, cap=max_field_bytes * 64 + 65536)
        self.columns: list[str] | None = None

    @property
    def bytes_read(self) -> int:
        return self._lines.bytes_read

    def __iter__(self) -> Iterator[Record]:
        lines, limit = self._lines, self.max_field_bytes
        stream = lines._stream
        while True:
            lines.start_record()
            raw = lines._read()
            if not raw:
                return
            lines.line += 1
            line = lines.line
            if len(raw) > lines.cap:
                while raw and not raw.endswith(b"\n"):
                    raw = stream.readline(_CHUNK)
                    lines.bytes_read += len(raw)
                yield Record(line, None, None, f"oversized field: the line is longer than {lines.cap} bytes")
                continue
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as uexc:
                    yield Record(line, None, None, encoding_reason(raw, uexc))
                    continue
                yield Record(line, None, None, f"invalid JSON: {exc}")
                continue
            if not isinstance(obj, dict):
                yield Record(line, None, None, f"not a JSON object (found {type(obj).__name__})")
                continue
            if b"\\u0000" in raw:
                col = next((k for k, v in obj.items() if has_nul(k) or has_nul(v)), None)
                if col is not None:
                    yield Record(line, None, normalise_header(col), "contains a NUL character")
                    continue
            values: dict[str, Any] = {}
            bad = None
            for k, v in obj.items():
                col = normalise_header(k)
                if isinstance(v, str) and len(v) > limit // 4 and len(v.encode("utf-8")) > limit:
                    bad = col
                values[col] = v
            if bad is not None:
                yield Record(line, None, bad, f"oversized field: longer than {limit} bytes")
                continue
            yield Record(line, values)


def has_nul(obj: Any) -> bool:
    if isinstance(obj, str):
        return "\x00" in obj
    if isinstance(obj, dict):
        return any(has_nul(k) or has_nul(v) for k, v in obj.items())
    if isinstance(obj, list):
        return any(has_nul(x) for x in obj)
    return False


def open_reader(stream: BinaryIO, fmt: Format, *, delimiter: str = ",",
                max_field_bytes: int = 65536) -> CsvReader | JsonLinesReader:
    """A record iterator for one file; raises `FileProblem` if the file cannot be read at all."""
    if fmt == "csv":
        return CsvReader(stream, delimiter=delimiter, max_field_bytes=max_field_bytes)
    return JsonLinesReader(stream, max_field_bytes=max_field_bytes)


def header_columns(stream: BinaryIO, fmt: Format, *, delimiter: str = ",",
                   max_field_bytes: int = 65536) -> list[str]:
    """The normalised column names of a file: the CSV header, or the keys of the first JSON Lines
    object. Raises `FileProblem` when there are none to read."""
    reader = open_reader(stream, fmt, delimiter=delimiter, max_field_bytes=max_field_bytes)
    if reader.columns is not None:
        return [c for c in reader.columns if c]
    for rec in reader:
        if rec.values is None:
            raise FileProblem(f"the first record cannot be read: {rec.reason}", rec.line, rec.column)
        return [c for c in rec.values if c]
    raise FileProblem("the file is empty (no record to read its keys from)", 1)
