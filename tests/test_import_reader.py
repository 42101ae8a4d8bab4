"""The import reader and row validation on their own (no graph): physical line numbers, encodings,
quoting, oversized fields, JSON Lines, and the value conversions of DESIGN section 3."""

from __future__ import annotations

import io

import pytest

from kg.catalog.reader import FileProblem, open_reader
from kg.catalog.validation import TYPES, Bad, Validator, applies_to, attributes, date, money

LIMIT = 1024  # a small field limit keeps the oversized cases cheap


def records(data: bytes, fmt: str = "csv", **kw):
    reader = open_reader(io.BytesIO(data), fmt, max_field_bytes=kw.pop("max_field_bytes", LIMIT), **kw)
    return reader, list(reader)


def good(recs):
    return [(r.line, r.values) for r in recs if r.values is not None]


def bad(recs):
    return [(r.line, r.column, r.reason) for r in recs if r.values is None]


def test_physical_lines_count_embedded_newlines_and_blank_lines():
    data = b'a,b\n1,"x\ny\nz"\n\n2,ok\n3,"p\r\nq"\n4,last\n'
    reader, recs = records(data)
    assert reader.columns == ["a", "b"]
    assert good(recs) == [(2, {"a": "1", "b": "x\ny\nz"}), (6, {"a": "2", "b": "ok"}),
                          (7, {"a": "3", "b": "p\r\nq"}), (9, {"a": "4", "b": "last"})]


def test_bom_crlf_and_header_case_and_spaces():
    data = "\ufeff SKU , Name ,PRICE\r\nA1,Caf\u00e9,1.50\r\nA2,Two,2\r\n".encode()
    reader, recs = records(data)
    assert reader.columns == ["sku", "name", "price"]
    assert good(recs) == [(2, {"sku": "A1", "name": "Caf\u00e9", "price": "1.50"}),
                          (3, {"sku": "A2", "name": "Two", "price": "2"})]


def test_latin1_line_is_reported_with_its_line_and_others_still_read():
    data = "sku,name\nA1,plain\nA2,Caf\u00e9\nA3,fine\n".encode("latin-1")
    _, recs = records(data)
    assert good(recs) == [(2, {"sku": "A1", "name": "plain"}), (4, {"sku": "A3", "name": "fine"})]
    [(line, column, reason)] = bad(recs)
    assert line == 3 and column is None
    assert "not valid UTF-8" in reason and "0xe9" in reason and "another encoding" in reason


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_files_are_refused_not_guessed(encoding):
    data = "sku,name\nA1,x\n".encode(encoding)
    with pytest.raises(FileProblem) as exc:
        records(data)
    assert exc.value.line == 1
    assert "UTF-16" in exc.value.reason or "UTF-32" in exc.value.reason
    assert "save it as UTF-8" in exc.value.reason


def test_utf16_without_bom_is_refused():
    data = "sku,name\nA1,x\n".encode("utf-16-le")
    with pytest.raises(FileProblem, match="NUL bytes"):
        records(data)


def test_malformed_quoting_is_reported_and_reading_resumes():
    data = b'a,b\n1,"ok"\n2,"bad"x\n3,fine\n4,"never closed\n'
    _, recs = records(data)
    assert good(recs) == [(2, {"a": "1", "b": "ok"}), (4, {"a": "3", "b": "fine"})]
    assert [(line, reason.split(":")[0]) for line, _, reason in bad(recs)] == [
        (3, "malformed quoting"), (5, "malformed quoting")]
    assert "never closed" in bad(recs)[1][2]


def test_wrong_number_of_fields():
    _, recs = records(b"a,b\n1,2,3\n4\n5,6\n")
    assert good(recs) == [(4, {"a": "5", "b": "6"})]
    assert [(line, reason) for line, _, reason in bad(recs)] == [
        (2, "the row has 3 fields, the header has 2"), (3, "the row has 1 fields, the header has 2")]


def test_oversized_fields_single_line_multiline_and_huge():
    big = b"x" * (LIMIT + 1)
    huge = b"y" * (LIMIT * 200)  # past the record cap: skipped without being held in memory
    data = (b"a,b\n"
            b"1," + big + b"\n"                      # line 2: over the field limit
            b"2,ok\n"                                 # line 3
            b'3,"' + huge[:100] + b"\n" + huge + b'\nend"\n'  # lines 4-6: one quoted record, too long
            b"4,after\n"                              # line 7
            b"5," + huge + b"\n"                      # line 8: one unquoted line, too long
            b"6,last\n")                              # line 9
    _, recs = records(data)
    assert good(recs) == [(3, {"a": "2", "b": "ok"}), (7, {"a": "4", "b": "after"}), (9, {"a": "6", "b": "last"})]
    problems = bad(recs)
    assert [(line, col) for line, col, _ in problems] == [(2, "b"), (4, None), (8, None)]
    assert all(reason.startswith("oversized field") for _, _, reason in problems)


def test_multibyte_field_over_the_byte_limit():
    text = "\u00e9" * (LIMIT // 2 + 1)  # fewer characters than the limit, more bytes
    _, recs = records(f"a,b\n1,{text}\n2,x\n".encode())
    assert bad(recs) == [(2, "b", f"oversized field: longer than {LIMIT} bytes")]


def test_nul_character_is_a_row_error():
    _, recs = records(b"a,b\n1,x\x00y\n2,z\n")
    assert bad(recs) == [(2, "b", "contains a NUL character")]
    assert good(recs) == [(3, {"a": "2", "b": "z"})]


@pytest.mark.parametrize("delim", [";", "\t", "|"])
def test_delimiter(delim):
    d = delim.encode()
    reader, recs = records(b"a" + d + b"b\n1" + d + b'"x' + d + b'y"\n', delimiter=delim)
    assert good(recs) == [(2, {"a": "1", "b": "x" + delim + "y"})]


def test_duplicate_and_missing_header():
    with pytest.raises(FileProblem, match="appears twice"):
        records(b"sku,SKU \n1,2\n")
    with pytest.raises(FileProblem, match="empty"):
        records(b"")


def test_json_lines():
    data = (b'{"sku": "A1", " Name ": "x"}\n'
            b"\n"
            b"   \n"
            b"[1, 2]\n"
            b"{not json}\n"
            b'"just a string"\n'
            b'{"sku": "A2", "name": "y\\u0000"}\n'
            b'{"sku": "A3", "name": "' + b"z" * (LIMIT + 1) + b'"}\n'
            b'\xef\xbb\xbf{"sku": "A4"}\n'
            b'{"sku": "A5", "name": "caf\xe9"}\n'
            b'{"sku": "A6", "attributes": {"colour": "red"}}')
    _, recs = records(data, "jsonl")
    assert good(recs) == [(1, {"sku": "A1", "name": "x"}), (11, {"sku": "A6", "attributes": {"colour": "red"}})]
    reasons = {line: (col, reason) for line, col, reason in bad(recs)}
    assert reasons[4][1] == "not a JSON object (found list)"
    assert reasons[5][1].startswith("invalid JSON")
    assert reasons[6][1] == "not a JSON object (found str)"
    assert reasons[7] == ("name", "contains a NUL character")
    assert reasons[8][0] == "name" and reasons[8][1].startswith("oversized field")
    assert reasons[9][1].startswith("invalid JSON")  # a BOM is only allowed at the start of the file
    assert "not valid UTF-8" in reasons[10][1]
    assert 2 not in reasons and 3 not in reasons  # blank lines are skipped


def test_json_lines_with_bom_and_crlf():
    _, recs = records(b'\xef\xbb\xbf{"a": 1}\r\n{"a": 2}\r\n', "jsonl")
    assert good(recs) == [(1, {"a": 1}), (2, {"a": 2})]


# -- value conversions -----------------------------------------------------------------------------
@pytest.mark.parametrize("raw, expected", [
    ("2026-11-02", "2026-11-02T00:00:00Z"),
    ("2026-11-02T14:05:00Z", "2026-11-02T14:05:00Z"),
    ("2026-11-02T14:05:00z", "2026-11-02T14:05:00Z"),
    ("2026-11-02T14:05:00+02:00", "2026-11-02T12:05:00Z"),
    ("2026-11-02T01:00:00-03:30", "2026-11-02T04:30:00Z"),
    ("2026-11-02 14:05", "2026-11-02T14:05:00Z"),
    ("2026-11-02T14:05:00.123456Z", "2026-11-02T14:05:00Z"),
])
def test_dates_normalise_to_utc(raw, expected):
    assert date(raw) == expected


@pytest.mark.parametrize("raw", ["2026-13-01", "02/11/2026", "yesterday", "2026-11-02T25:00", "2026-02-30"])
def test_bad_dates(raw):
    with pytest.raises(Bad, match="ISO 8601"):
        date(raw)


@pytest.mark.parametrize("raw, expected", [("18", 18.0), ("18.5", 18.5), ("18.005", 18.01), ("2.675", 2.68),
                                           ("0", 0.0), ("1e3", 1000.0), ("0019.90", 19.9)])
def test_money_has_two_decimals_half_up(raw, expected):
    assert money(raw) == expected


@pytest.mark.parametrize("raw, reason", [("abc", "not a number"), ("-1", "negative"), ("NaN", "not a number"),
                                         ("inf", "not a number"), ("1e20", "too large"), ("1,50", "not a number")])
def test_bad_money(raw, reason):
    with pytest.raises(Bad, match=reason):
        money(raw)


def test_attributes_forms():
    assert attributes('{"colour": "Black", "size": 42}') == {"colour": "Black", "size": 42}
    assert attributes("colour = Black; size=M;") == {"colour": "Black", "size": "M"}
    assert attributes("") == {}
    for raw, reason in [("{bad", "invalid JSON"), ("[1]", "not key=value"), ("colour", "not key=value"),
                        ('{"": 1}', "empty"), ('{" ": 1}', "empty"), ("=x", "empty"),
                        ('{"a`b": 1}', "backtick"), ("a`b=1", "backtick"), ('{"a\\u0060b": 1}', "backtick"),
                        ('{"a": "x\\u0000"}', "NUL")]:
        with pytest.raises(Bad, match=reason):
            attributes(raw)


def test_applies_to():
    assert applies_to("") == (None, [])
    assert applies_to("Category:Shoes; brand:Acme;sku:A1;sku:A1") == (
        "Category:Shoes; brand:Acme;sku:A1;sku:A1",
        [("Category", "Shoes", "category"), ("Brand", "Acme", "brand"), ("Product", "A1", "sku")])
    for raw in ["colour:red", "category:", "Shoes"]:
        with pytest.raises(Bad, match="bad applies_to"):
            applies_to(raw)


def test_validator_reports_every_problem_of_a_row():
    v = Validator(TYPES["products"], store_currency="EUR")
    problems = v.validate({"sku": " ", "name": "x", "price": "cheap", "stock": "2.5", "rating": "9",
                           "status": "sold", "currency": "euro", "attributes": "k"})
    assert sorted(c for c, _ in problems) == ["attributes", "currency", "price", "rating", "sku", "status", "stock"]
    row = v.validate({"sku": " A1 ", "name": " Name ", "price": "3", "stock": "4.0", "status": "Active"})
    assert row.key == "A1"
    props = dict(zip(v.props, row.props, strict=True))
    assert props["currency"] == "EUR" and props["stock"] == 4 and props["status"] == "active"
    assert props["attributes"] == "{}" and props["attr_values"] == []
