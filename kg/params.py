"""Query parameters both backends accept: one set of rules, so a value refused on FalkorDB is
refused on Neo4j too, before anything reaches the server.

User text only ever travels as a parameter; these checks keep a parameter from being something the
transport would carry unfaithfully: a NUL (FalkorDB's text header ends a string there), NaN or
infinity (not Cypher values), an integer outside 64 bits (both stores' range), a map key that
could close a backtick, nesting deep enough to exhaust a recursive encoder, or an object of a type
the stores do not hold. Temporal values pass only where the transport carries them typed (Bolt);
FalkorDB's text header would write a date as arithmetic, so there they must be sent as ISO strings
and converted by `date()` in the query.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from datetime import time as dt_time
from typing import Any

from common.errors import QueryError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DEPTH = 64
_TEMPORAL = (date, datetime, dt_time)


def check_params(params: Mapping[str, Any] | None, *, temporal: bool = False) -> bool:
    """Raise `QueryError` (naming the rule) for a value either store would mangle; return whether a
    map occurs anywhere (FalkorDB encodes those differently). Exact types are tested first: the
    importer sends tens of thousands of values per call."""
    if not params:
        return False
    for k in params:
        if not isinstance(k, str) or not k:
            raise QueryError(f"parameter name {k!r} is not allowed")
    return _check_values(params.values(), 0, temporal)


def _check_values(values: Any, depth: int, temporal: bool) -> bool:
    if depth > MAX_DEPTH:
        raise QueryError("parameters are nested too deeply")
    has_map = False
    for v in values:
        t = type(v)
        if t is str:
            if "\x00" in v:
                raise QueryError("a parameter contains a NUL character")
        elif t is int:
            if not INT64_MIN <= v <= INT64_MAX:
                raise QueryError("a parameter is an integer outside the 64-bit range")
        elif t is float:
            if v - v != 0:  # inf - inf and nan - nan are nan
                raise QueryError("a parameter is not a finite number")
        elif t is bool or v is None:
            pass
        elif t is list or t is tuple:
            if _check_values(v, depth + 1, temporal):
                has_map = True
        else:
            has_map = _check_other(v, depth, temporal) or has_map
    return has_map


def _check_other(v: Any, depth: int, temporal: bool) -> bool:
    """Subclasses of the plain types, maps, temporals; anything else is refused."""
    if isinstance(v, bool):
        return False
    if isinstance(v, str):
        if "\x00" in v:
            raise QueryError("a parameter contains a NUL character")
        return False
    if isinstance(v, int):
        if not INT64_MIN <= v <= INT64_MAX:
            raise QueryError("a parameter is an integer outside the 64-bit range")
        return False
    if isinstance(v, float):
        if not math.isfinite(v):
            raise QueryError("a parameter is not a finite number")
        return False
    if isinstance(v, Mapping):
        for k in v:
            if not isinstance(k, str) or not k or "`" in k:
                raise QueryError(f"parameter map key {k!r} is not allowed")
        _check_values(v.values(), depth + 1, temporal)
        return True
    if isinstance(v, (list, tuple)):
        return _check_values(v, depth + 1, temporal)
    if temporal and isinstance(v, _TEMPORAL):
        return False
    raise QueryError(f"a parameter has a type the graph cannot store: {type(v).__name__}")
