"""A lexical read-only check for Cypher that did not come from us (the analyst route).

This is the first of two locks, not the only one: the backends also run such text through their
own read-only path (FalkorDB `GRAPH.RO_QUERY`, Neo4j READ access mode plus an `EXPLAIN` of the
query type). The lexical check exists so both backends refuse the same things with the same
message, including what a server would allow in read mode (`LOAD CSV`, arbitrary procedures).
"""

from __future__ import annotations

import re

from common.errors import ReadOnlyViolation

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
