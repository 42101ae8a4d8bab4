"""Wording helpers shared by every reply writer: money, dates, product names, lists, attribute
values, and the `Picker` that varies the phrasing.

Money is shown with two decimals and the currency ("18.00 USD", "1,199.00 USD"); dates as
"17 March 2026". A writer is a function of the `Retrieval` and a `Picker`; it may only use what the
retrieval holds, so a template reply can never contradict or go beyond what the graph said.
"""

from __future__ import annotations

import hashlib
import re
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


_NOT_VARIANT = frozenset({"the", "a", "an", "and", "of", "or", "in", "on", "to", "with", "for", "at", "by"})


def display(name: Any) -> str:
    """A product name as a sentence reads it: "Aurora X2 Headphones, Black" -> "Aurora X2 Headphones (Black)".
    Text after a comma that reads as part of the name ("Thinking, Fast and Slow", a bracket of its
    own) stays as it is."""
    text = str(name or "")
    head, sep, variant = text.partition(", ")
    if not (sep and variant) or "(" in variant or len(variant.split()) > 4 or \
            any(w in _NOT_VARIANT for w in variant.split()):
        return text
    return f"{head} ({variant})"


def named(name: Any, *, capital: bool = False) -> str:
    """A product name as a sentence's subject or object. No article is put in front: catalog names
    read right without one ("Nordic Audio Aurora X2 (Black) is in stock") and titles would read
    wrong with one ("the The Hobbit", "the Gone Girl"). `capital` starts a sentence with it."""
    shown = display(name)
    return shown[:1].upper() + shown[1:] if capital and shown[:1].islower() else shown


# Plural nouns that products are named with ("Wireless Earbuds", "Gel Pens", "Highlighters (6-pack)"):
# word endings, so that titles ending in s ("Great Expectations", "Cosmos") stay singular.
_PLURAL_ENDINGS = (
    "buds", "phones", "pens", "pencils", "crayons", "markers", "highlighters", "cards", "cartridges", "notebooks",
    "bookmarks", "shoes", "boots", "socks", "gloves", "mittens", "glasses", "trousers", "jeans", "shorts", "tights",
    "leggings", "pants", "pyjamas", "pajamas", "slippers", "sandals", "sneakers", "trainers", "earrings", "scissors",
    "pliers", "tongs", "tweezers", "batteries", "speakers", "bulbs", "lights", "screws", "nails", "bolts", "tiles",
    "towels", "pillows", "cups", "mugs", "plates", "bowls", "glasses", "knives", "forks", "spoons", "chopsticks",
    "beans", "oats", "nuts", "chips", "crisps", "biscuits", "cookies", "noodles", "bags", "pads", "wipes", "blocks",
    "bricks", "weights", "dumbbells", "skates", "skis", "binoculars", "goggles", "headphones", "earphones",
    "accessories", "supplies", "tools", "refills", "envelopes", "stickers", "labels", "magnets", "coasters",
)


def is_plural(name: Any) -> bool:
    """Whether a product name reads as plural ("Earbuds", "Highlighters (6-pack)", "Gel Pens") for
    verb agreement: its head word (before a variant or a bracket) is a plural product noun."""
    head = re.split(r"[,(]", str(name or ""))[0].strip()
    words = re.findall(r"[A-Za-z][A-Za-z'\-]*", head)
    return bool(words) and words[-1].lower().endswith(_PLURAL_ENDINGS)


def be(name: Any, present: bool = True) -> str:
    """"is" or "are" (or "was"/"were") for a product name."""
    plural = is_plural(name)
    if present:
        return "are" if plural else "is"
    return "were" if plural else "was"


def has(name: Any) -> str:
    return "have" if is_plural(name) else "has"


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


def attr_value(key: str, value: Any) -> str:
    """An attribute's value as a reply shows it, with the unit its key names: ('battery_life_hours',
    30) -> '30 h', ('weight_kg', 1.5) -> '1.5 kg', ('waterproof', True) -> 'yes'."""
    v = f"{value:g}" if isinstance(value, float) else ("yes" if value is True else "no" if value is False
                                                      else str(value))
    for suffix, unit in _UNITS:
        if key.lower().endswith(suffix) and not isinstance(value, bool):
            return f"{v}{unit}"
    return v


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
