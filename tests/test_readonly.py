"""The analyst route's lexical read-only check (kg/readonly.py), table-driven over the comment and
string forms Cypher knows. The backends' own read-only paths are tested in test_api_graph.py."""

from __future__ import annotations

import pytest

from common.errors import ReadOnlyViolation
from kg.readonly import check_read_only, words

LOAD = "LOAD CSV FROM 'http://127.0.0.1:9/x.csv' AS row RETURN row"

REFUSED = [
    # a line comment ends at every line terminator Cypher knows; what follows is a clause
    *(pytest.param(f"WITH 1 AS x //{eol}{LOAD}", id=f"line-comment-then-{name}")
      for name, eol in (("lf", "\n"), ("cr", "\r"), ("crlf", "\r\n"), ("ls", "\u2028"), ("ps", "\u2029"),
                        ("nel", "\x85"))),
    pytest.param(f"/* block */ {LOAD}", id="after-block-comment"),
    pytest.param(f"/* unterminated {LOAD}", id="unterminated-block-comment"),
    pytest.param("MATCH (n) RETURN n /* a */ ; CREATE (m)", id="second-statement"),
    pytest.param("MATCH (n) SET n.x = 1", id="set"),
    pytest.param("MATCH (n) DETACH DELETE n", id="detach-delete"),
    pytest.param("merge (n:Product {sku: 'x'})", id="lower-case"),
    pytest.param("MATCH (n) CALL { CREATE (m) } RETURN n", id="write-in-subquery"),
    pytest.param("CALL db.idx.fulltext.createNodeIndex('Product', 'name')", id="write-procedure"),
    pytest.param("CALL  db . labels  ( ) YIELD label CREATE (x)", id="spaced-procedure-then-create"),
    pytest.param("RETURN 'unterminated \\' CREATE (n)", id="unterminated-string"),
    pytest.param("UNWIND range(1, 10) AS i CALL { WITH i RETURN i } IN TRANSACTIONS RETURN i", id="in-transactions"),
    pytest.param("USING PERIODIC COMMIT LOAD CSV FROM 'file:///x' AS r RETURN r", id="periodic-commit"),
    pytest.param("", id="empty"),
    pytest.param("RETURN 1\x00", id="nul"),
]

ALLOWED = [
    pytest.param("MATCH (p:Product) RETURN p.name // CREATE is only a comment here", id="line-comment"),
    pytest.param("MATCH (p:Product) /* DELETE */ RETURN p", id="block-comment"),
    pytest.param("MATCH (p:Product {name: 'CREATE // not a comment'}) RETURN p", id="single-quoted"),
    pytest.param('MATCH (p:Product) WHERE p.name = "SET \\" MERGE" RETURN p', id="double-quoted-escape"),
    pytest.param("MATCH (p:`LOAD CSV`) RETURN p", id="backquoted-name"),
    pytest.param("CALL db.labels() YIELD label RETURN label", id="schema-procedure"),
    pytest.param("CALL db.idx.fulltext.queryNodes('Product', 'aurora') YIELD node RETURN node.name",
                 id="search-procedure"),
    pytest.param("MATCH (n) CALL { WITH n RETURN n.sku AS s } RETURN s", id="read-subquery"),
]


@pytest.mark.parametrize("cypher", REFUSED)
def test_refused(cypher: str):
    with pytest.raises(ReadOnlyViolation):
        check_read_only(cypher)


@pytest.mark.parametrize("cypher", ALLOWED)
def test_allowed(cypher: str):
    check_read_only(cypher)


def test_words_skip_comments_strings_and_quoted_names():
    assert words("MATCH (n) // CREATE\rRETURN 'MERGE' /* SET */ `DELETE`") == ["MATCH", "(", "n", ")", "RETURN"]


# -- the row cap inside the query (kg/readonly.py `bound_rows`) --------------------------------------
from common.errors import QueryError  # noqa: E402
from kg.readonly import bound_rows  # noqa: E402

WRAPPED = [  # (query, the columns in the query's own order)
    ("MATCH (a:P),(b:P) RETURN a, b", ("a", "b")),
    ("MATCH (p:P) RETURN p.sku AS sku, p.name AS brand ORDER BY sku DESC LIMIT 5", ("sku", "brand")),
    ("MATCH (p:P) RETURN p.i AS i SKIP 3", ("i",)),
    ("MATCH (a:P) WHERE a.i < 3 RETURN a.i AS i UNION MATCH (a:P) WHERE a.i > 8 RETURN a.i AS i", ("i",)),
    ("MATCH (a:P) RETURN DISTINCT a.name, count(a) AS `n x`", ("a.name", "n x")),
    ("CALL db.labels() YIELD label RETURN label", ("label",)),
    ("MATCH (n) CALL { WITH n RETURN n.i AS j } RETURN j // trailing comment }", ("j",)),
    ("RETURN {a: 1, b: [1, 2]} AS m, 'RETURN } x' AS s;", ("m", "s")),
    ("MATCH (p:P) RETURN *", None),
]


@pytest.mark.parametrize("cypher,columns", WRAPPED)
def test_queries_ending_in_return_are_wrapped(cypher: str, columns):
    plan = bound_rows(cypher, 10)
    assert plan.wrapped and plan.text.startswith("CALL {\n") and plan.text.endswith("\n} RETURN * LIMIT 11")
    assert plan.columns == columns
    assert "trailing comment" not in plan.text and not plan.text.rstrip().endswith(";")


def test_a_leading_with_runs_after_one_neutral_row():
    plan = bound_rows("WITH 1 AS x RETURN x", 5)
    assert plan.text == "CALL {\nUNWIND [0] AS _kgqa_row WITH 1 AS x RETURN x\n} RETURN * LIMIT 6"


def test_a_standalone_schema_procedure_runs_as_it_is():
    plan = bound_rows("CALL db.labels()", 10)
    assert (plan.wrapped, plan.text) == (False, "CALL db.labels()")
    assert bound_rows("CALL db.propertyKeys() YIELD propertyKey", 3).wrapped is False


@pytest.mark.parametrize("cypher,reason", [
    ("CALL db.idx.fulltext.queryNodes('P', 'x')", "must_end_with_return"),
    ("CALL db.idx.fulltext.queryNodes('P', 'x') YIELD node", "must_end_with_return"),
    ("MATCH (n)", "must_end_with_return"),
    ("MATCH (n) RETURN n.i AS i WITH i MATCH (m)", "must_end_with_return"),
    # text that would close the subquery early and run unbounded after it
    ("MATCH (a),(b) RETURN a } RETURN a UNION ALL CALL { RETURN 1 AS a", "syntax_error"),
    ("RETURN 1 }", "syntax_error"),
    ("MATCH (n RETURN n", "syntax_error"),
])
def test_queries_that_cannot_be_bounded_are_refused(cypher: str, reason: str):
    with pytest.raises(QueryError) as info:
        bound_rows(cypher, 10)
    assert info.value.details["reason"] == reason
