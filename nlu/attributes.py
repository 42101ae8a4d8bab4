"""Product attributes as the catalog stores them, read one way for training data and linking.

The graph keeps `attributes` as a JSON object string; import files may give `key=value;key=value`;
code may hold a mapping. Only scalar values a shopper could type are kept (no booleans, nulls,
lists or nested objects; nothing longer than the caller's limit).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def parse_attributes(raw: Any, *, max_value_chars: int) -> tuple[tuple[str, str], ...]:
    """(key, value) pairs in the order given; () for anything unreadable (never an error: one
    damaged product must not stop a catalog from loading)."""
    if raw is None or raw == "":
        return ()
    obj: Any = raw
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                return ()
        else:
            obj = dict(part.split("=", 1) for part in text.split(";") if "=" in part)
    if not isinstance(obj, Mapping):
        return ()
    out = []
    for k, v in obj.items():
        if isinstance(v, bool) or v is None or isinstance(v, Mapping | list | tuple):
            continue
        value = str(v).strip()
        if value and len(value) <= max_value_chars:
            out.append((str(k).strip(), value))
    return tuple(out)
