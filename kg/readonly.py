"""A lexical read-only check for Cypher that did not come from us (the analyst route), and the
rule that puts the analyst's row cap inside the query (`bound_rows`).

This is the first of two locks, not the only one: the backends also run such text through their
own read-only path (FalkorDB `GRAPH.RO_QUERY`, Neo4j READ access mode plus an `EXPLAIN` of the
query type). The lexical check exists so both backends refuse the same things with the same
message, including what a server would allow in read mode (`LOAD CSV`, arbitrary procedures).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.errors import QueryError, ReadOnlyViolation

WRITE_KEYWORDS = ("CREATE", "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "DROP", "FOREACH", "LOAD")
FORBIDDEN_PHRASES = (("IN", "TRANSACTIONS"), ("PERIODIC", "COMMIT"))

# Read-only schema and search procedures on either backend; everything else is refused.
ALLOWED_PROCEDURES = frozenset(
    p.lower()
    for p in (
        "db.labels",
        "db.relationshipTypes",
        "db.propertyKeys",
        "db.indexes",
        "db.constraints",
        "db.schema.visualization",
        "db.idx.fulltext.queryNodes",
        "db.index.fulltext.queryNodes",
        "db.idx.vector.queryNodes",
        "db.index.vector.queryNodes",
    )
)

# Standalone calls of these may run without the row cap inside the query: they answer one row per
# label, relationship type, property key, index or constraint, so the schema bounds them.
SCHEMA_PROCEDURES = frozenset(
    p.lower()
    for p in ("db.labels", "db.relationshipTypes", "db.propertyKeys", "db.indexes", "db.constraints",
              "db.schema.visualization")
)

_TOKEN = re.compile(
    r"""
    (?P<comment>//[^\n\r\u2028\u2029\x85]*|/\*.*?\*/)  # a line comment ends at any Cypher line terminator
  | (?P<string>'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")
  | (?P<quoted>`(?:``|[^`])*`)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<other>\S)
    """,
    re.VERBOSE | re.DOTALL,
)


def words(cypher: str) -> list[str]:
    """Keywords and identifiers outside strings, comments and quoted names."""
    out: list[str] = []
    for m in _TOKEN.finditer(cypher):
        if m.lastgroup == "word":
            out.append(re.sub(r"\s+", "", m.group()))
        elif m.lastgroup == "other":
            out.append(m.group())
    return out


def check_read_only(cypher: str) -> None:
    if not cypher or not cypher.strip():
        raise ReadOnlyViolation("the query is empty")
    if "\x00" in cypher:
        raise ReadOnlyViolation("the query contains a NUL character")
    toks = words(cypher)
    upper = [t.upper() for t in toks]
    for i, tok in enumerate(upper):
        if tok in WRITE_KEYWORDS:
            raise ReadOnlyViolation(
                f"{toks[i]} is not allowed: this route is read-only", details={"keyword": toks[i]}
            )
        for first, second in FORBIDDEN_PHRASES:
            if tok == first and i + 1 < len(upper) and upper[i + 1] == second:
                raise ReadOnlyViolation(f"{first} {second} is not allowed on this route")
        if tok == "CALL":
            nxt = toks[i + 1] if i + 1 < len(toks) else ""
            if nxt == "{":
                continue  # a subquery; its own clauses are checked as tokens too
            if nxt.lower() not in ALLOWED_PROCEDURES:
                raise ReadOnlyViolation(
                    f"procedure {nxt or '?'} is not allowed on this route",
                    details={"allowed": sorted(ALLOWED_PROCEDURES)},
                )


# -- the row cap inside the query --------------------------------------------------------------------
# Clauses that may not follow a query's final RETURN at the top level (they would start another part).
_CLAUSES = frozenset({"MATCH", "OPTIONAL", "WITH", "UNWIND", "CALL", "YIELD", "UNION", "WHERE", "CREATE",
                      "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "FOREACH", "LOAD", "USE"})
_OPEN, _CLOSE = {"(": ")", "[": "]", "{": "}"}, {")": "(", "]": "[", "}": "{"}
ROW_VARIABLE = "_kgqa_row"


@dataclass(frozen=True)
class Bounded:
    """What to send for an analyst's query under a row cap of `limit`.

    `wrapped`: the text is `CALL { <query> } RETURN * LIMIT limit+1`, so the server stops after
    limit + 1 rows. `columns`: the query's own column order when it could be read from the final
    RETURN (`RETURN *` outside the subquery lists columns alphabetically); None keeps the server's.
    """

    text: str
    wrapped: bool
    columns: tuple[str, ...] | None = None


def _spans(cypher: str) -> list[tuple[str, str, int, int]]:
    """(kind, text, start, end) of every token outside comments."""
    return [(m.lastgroup or "", m.group(), m.start(), m.end()) for m in _TOKEN.finditer(cypher)
            if m.lastgroup != "comment"]


def bound_rows(cypher: str, limit: int) -> Bounded:
    """The analyst's query with the row cap inside it, by one rule for every query:

    1. A query whose last clause is RETURN (ORDER BY, SKIP, LIMIT and UNION included) runs as
       `CALL {<query>} RETURN * LIMIT limit+1`. FalkorDB reads a WITH at the start of a subquery as
       importing variables, so a query that begins with WITH gets `UNWIND [0] AS _kgqa_row` in
       front, which changes nothing (one row in, as at the start of any query).
    2. A standalone procedure call (no RETURN) of a schema procedure runs as it is: one row per
       label, type, key, index or constraint, so the schema bounds it.
    3. Anything else is refused (QueryError, `details.reason`): a standalone search procedure call
       (write `CALL ... YIELD node, score RETURN node, score`), a query that does not end with
       RETURN, or braces that do not balance (the text could close our subquery early).
    """
    toks = _spans(cypher)
    while toks and toks[-1][1] == ";":  # one statement with a trailing semicolon
        toks.pop()
    if not toks:
        raise QueryError("the query is empty", details={"reason": "syntax_error"})
    body = cypher[: toks[-1][3]]
    depth: list[str] = []
    top: list[int] = []  # indexes of tokens outside any brackets
    for i, (kind, text, _, _) in enumerate(toks):
        if kind == "other" and text in _OPEN:
            depth.append(text)
        elif kind == "other" and text in _CLOSE:
            if not depth or depth[-1] != _CLOSE[text]:
                raise QueryError("syntax error: unbalanced brackets", details={"reason": "syntax_error"})
            depth.pop()
        elif not depth:
            top.append(i)
    if depth:
        raise QueryError("syntax error: unbalanced brackets", details={"reason": "syntax_error"})
    returns = [i for i in top if toks[i][0] == "word" and toks[i][1].upper() == "RETURN"]
    last = returns[-1] if returns else None
    if last is not None and not any(toks[i][0] == "word" and toks[i][1].upper() in _CLAUSES
                                    for i in top if i > last):
        first = toks[0][1].upper()
        prefix = f"UNWIND [0] AS {ROW_VARIABLE} " if toks[0][0] == "word" and first == "WITH" else ""
        text = f"CALL {{\n{prefix}{body}\n}} RETURN * LIMIT {int(limit) + 1}"
        return Bounded(text, True, _return_columns(cypher, toks, top, last))
    if toks[0][0] == "word" and toks[0][1].upper() == "CALL" and len(toks) > 1 and toks[1][0] == "word":
        procedure = re.sub(r"\s+", "", toks[1][1]).lower()
        if procedure in SCHEMA_PROCEDURES:
            return Bounded(body, False)
        raise QueryError(
            "a standalone call of a search procedure is not row-limited: name its columns and return "
            "them, e.g. CALL db.idx.fulltext.queryNodes('Product', 'x') YIELD node, score RETURN node, score",
            details={"reason": "must_end_with_return"})
    raise QueryError("the query must end with RETURN (the row limit is applied to what it returns)",
                     details={"reason": "must_end_with_return"})


def _return_columns(cypher: str, toks: list[tuple[str, str, int, int]], top: list[int],
                    last: int) -> tuple[str, ...] | None:
    """Column names of the final RETURN in order: each item's alias, or its text as written."""
    top_set = set(top)
    end = len(toks)
    for i in top:
        if i > last and toks[i][0] == "word" and toks[i][1].upper() in ("ORDER", "SKIP", "LIMIT"):
            end = i
            break
    start = last + 1
    if start < end and toks[start][0] == "word" and toks[start][1].upper() == "DISTINCT":
        start += 1
    items: list[list[int]] = [[]]
    for i in range(start, end):
        if i in top_set and toks[i][1] == ",":
            items.append([])
        else:
            items[-1].append(i)
    names: list[str] = []
    for item in items:
        if not item:
            return None
        if len(item) == 1 and toks[item[0]][1] == "*":
            return None  # RETURN *: the server's order either way
        if (len(item) >= 3 and toks[item[-2]][0] == "word" and toks[item[-2]][1].upper() == "AS"
                and item[-2] in top_set):
            kind, text = toks[item[-1]][0], toks[item[-1]][1]
            names.append(text[1:-1].replace("``", "`") if kind == "quoted" else text)
        else:
            names.append(cypher[toks[item[0]][2]: toks[item[-1]][3]].strip())
    return tuple(names) if len(set(names)) == len(names) else None
