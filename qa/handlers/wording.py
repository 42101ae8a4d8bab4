"""Wording helpers shared by every reply writer: money, dates, product names, lists, attribute
values, and the `Picker` that varies the phrasing.

Money is shown with two decimals and the currency ("18.00 USD", "1,199.00 USD"); dates as
"17 March 2026". A writer is a function of the `Retrieval` and a `Picker`; it may only use what the
retrieval holds, so a template reply can never contradict or go beyond what the graph said.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qa.types import Retrieval


def money(value: Any, currency: str | None) -> str:
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{amount:,.2f} {currency or ''}".strip()


def day(value: Any) -> str:
    """'2026-03-17' or '2026-03-17T10:00:00Z' -> '17 March 2026' (the text itself when unparsable)."""
    if not value:
        return ""
    text = str(value)
    try:
        d = date.fromisoformat(text[:10])
    except ValueError:
        return text
    return f"{d.day} {d.strftime('%B')} {d.year}"


def display(name: Any) -> str:
    """A product name as a sentence reads it: "Aurora X2 Headphones, Black" -> "Aurora X2 Headphones (Black)"."""
    text = str(name or "")
    head, sep, variant = text.partition(", ")
    return f"{head} ({variant})" if sep and variant else text


def percent(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if 0 < f < 1:
        f *= 100
    return f"{f:g}%"


def join(items: Sequence[str], conj: str = "and") -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {conj} " + items[-1]


_UNITS = (("_hours", " h"), ("_mah", " mAh"), ("_mp", " MP"), ("_mm", " mm"), ("_cm", " cm"), ("_kg", " kg"),
          ("_g", " g"), ("_in", "-inch"), ("_w", " W"), ("_k", " K"), ("_l", " l"), ("_m", " m"))


def attr_text(key: str, value: Any) -> str:
    """'battery_life_hours', 30 -> 'battery life: 30 h'."""
    v = f"{value:g}" if isinstance(value, float) else ("yes" if value is True else "no" if value is False
                                                      else str(value))
    for suffix, unit in _UNITS:
        if key.endswith(suffix) and not isinstance(value, bool):
            return f"{key[: -len(suffix)].replace('_', ' ')}: {v}{unit}"
    return f"{key.replace('_', ' ')}: {v}"


class Picker:
    """Chooses one of several phrasings by a hash of the retrieval's variant seed and a slot name:
    the same question in two sessions may read differently, a replay reads identically."""

    def __init__(self, seed: str) -> None:
        self.seed = seed

    def __call__(self, slot: str, options: Sequence[str]) -> str:
        h = int(hashlib.sha1(f"{self.seed}|{slot}".encode()).hexdigest()[:8], 16)
        return options[h % len(options)]


# A reply writer: the retrieval and a picker in, the reply's text out.
Writer = Callable[["Retrieval", Picker], str]
