"""Output filter applied to every reply, template and LLM alike.

Two jobs:

1. Personal data that is not the asking customer's is masked: e-mail addresses, phone numbers
   and street addresses in a reply must appear in facts the shopper may see. Those are facts
   of a public kind (product, supplier, policy, FAQ, shipping method: a store's or supplier's
   contact line is business data) and personal facts (an ``OwnedFact`` of qa/facts.py:
   customer, order, order item, invoice) that carry ``customer_id`` equal to the signed-in
   customer's. A personal fact without a ``customer_id`` is not trusted: its data is masked
   (fail safe: a visibly masked own address is a bug report, a leaked one is an incident).
   Anything else (an address the model made up, another customer's e-mail a template bug let
   through) becomes ``[email removed]``, ``[phone removed]`` or ``[address removed]``.
2. Words from the configured block list (setting ``BLOCKED_WORDS``, comma-separated; matched
   whole-word, case-insensitive; phrases allowed) are starred out. The LLM verbalizer treats a
   blocked word in a model reply as a failed reply and uses the template instead.

Phone numbers are recognised by shape (7 to 15 digits written with a leading + or with
separators, or any such digit run right after "phone", "call", "tel", ...), so order ids,
tracking numbers, dates and amounts are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from qa.facts import Fact, OwnedFact
from qa.types import Retrieval

_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE_RE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d\s().-]{5,}\d(?![\w])")
_PHONE_CONTEXT_RE = re.compile(
    r"\b(?:phone|call|tel|telephone|mobile|cell|whatsapp|sms|fax)\b[^.!?\n]{0,16}$", re.I
)
_ISO_DATE_RE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")
_STREET_TYPES = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Way|Court|Ct|Place|Pl|Square|Sq|"
    r"Terrace|Parkway|Pkwy|Highway|Hwy|Close|Crescent|Row|Alley|Circle|Cir"
)
_ADDRESS_RES = [
    # 12 Baker Street, 221B Baker St., 1600 Pennsylvania Avenue NW, Apt 4
    re.compile(
        rf"\b\d{{1,5}}[A-Za-z]?\s+(?:[A-Z][\w'.-]*\s+){{1,4}}(?:{_STREET_TYPES})\b"
        r"(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?(?:,?\s*(?:Apt|Apartment|Suite|Unit|Flat|Fl|Floor)\.?\s*#?\w+)?"
    ),
    # Hauptstraße 5, Lindenweg 12a, Kirchgasse 3
    re.compile(r"\b[A-ZÄÖÜ][\w-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm)\s+\d{1,5}[a-z]?\b"),
    # Rue de Rivoli 10 / 10 rue de Rivoli / Via Roma 5 / Calle Mayor 3
    re.compile(
        r"\b(?:\d{1,5},?\s+)?(?:Rue|Via|Calle|Avenida|Rua)\s+(?:(?:de|du|des|la|le|del|della|di|da|do|dos|das)\s+)*"
        r"[A-ZÀ-Ý][\w'-]*(?:\s+[A-ZÀ-Ý][\w'-]*){0,2}(?:\s+\d{1,5}\b)?"
    ),
]
_ABBREV = {
    "st": "street", "ave": "avenue", "rd": "road", "blvd": "boulevard", "ln": "lane", "dr": "drive",
    "ct": "court", "pl": "place", "sq": "square", "pkwy": "parkway", "hwy": "highway", "cir": "circle",
    "apt": "apartment", "str": "strasse", "straße": "strasse",
}  # fmt: skip


@dataclass
class SafetyResult:
    text: str
    redactions: list[str] = field(default_factory=list)  # "email", "phone", "address" (one per mask)
    blocked: list[str] = field(default_factory=list)  # block-list entries found

    @property
    def changed(self) -> bool:
        return bool(self.redactions or self.blocked)


def _norm_address(text: str) -> str:
    words = re.findall(r"[^\W_]+", text.lower())
    return " ".join(_ABBREV.get(w, w) for w in words).replace("straße", "strasse")


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple | set):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)


class _Allowed:
    def __init__(self, facts: Iterable[Fact], customer_id: str | None) -> None:
        texts: list[str] = []
        for fact in facts:
            if isinstance(fact, OwnedFact):
                owner = fact.customer_id
                if customer_id is None or owner is None or str(owner) != customer_id:
                    continue
            texts.extend(_strings(fact.data))
        self.emails = {m.group().lower() for t in texts for m in _EMAIL_RE.finditer(t)}
        self.phones = {d for t in texts for m in _PHONE_RE.finditer(t) if len(d := _digits(m.group())) >= 7}
        self.phones |= {
            d for t in texts if 7 <= len(d := _digits(t)) <= 15 and re.fullmatch(r"[\d\s()+.-]+", t)
        }
        self.address_text = " | ".join(_norm_address(t) for t in texts)

    def phone_ok(self, digits: str) -> bool:
        return any(
            p.endswith(digits) or digits.endswith(p) for p in self.phones if min(len(p), len(digits)) >= 7
        )

    def address_ok(self, text: str) -> bool:
        norm = _norm_address(text)
        return bool(norm) and norm in self.address_text


class SafetyFilter:
    """Masks other people's personal data and stars out blocked words. Stateless per call."""

    def __init__(self, blocked_words: Iterable[str] = ()) -> None:
        words = sorted({w.strip() for w in blocked_words if w and w.strip()}, key=len, reverse=True)
        self.blocked_words = words
        self._blocked_re = (
            re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.I)
            if words
            else None
        )

    @classmethod
    def from_settings(cls, settings: Any) -> SafetyFilter:
        raw = getattr(settings, "blocked_words", "") or ""
        return cls(raw.split(","))

    def blocked_in(self, text: str) -> list[str]:
        if self._blocked_re is None:
            return []
        return sorted({m.group().lower() for m in self._blocked_re.finditer(text)})

    def apply(
        self, text: str, retrieval: Retrieval | None = None, *, customer_id: str | None = None
    ) -> SafetyResult:
        allowed = _Allowed(retrieval.facts if retrieval is not None else (), customer_id)
        redactions: list[str] = []
        spans: list[tuple[int, int, str]] = []

        def overlaps(a: int, b: int) -> bool:
            return any(a < e and s < b for s, e, _ in spans)

        for m in _EMAIL_RE.finditer(text):
            if m.group().lower() not in allowed.emails:
                spans.append((m.start(), m.end(), "email"))
        for rx in _ADDRESS_RES:
            for m in rx.finditer(text):
                if not overlaps(m.start(), m.end()) and not allowed.address_ok(m.group()):
                    spans.append((m.start(), m.end(), "address"))
        for m in _PHONE_RE.finditer(text):
            raw = m.group().strip(" .-")
            start = m.start() + (len(m.group()) - len(m.group().lstrip(" .-")))
            end = start + len(raw)
            if overlaps(start, end) or not self._phone_like(text, start, raw):
                continue
            if not allowed.phone_ok(_digits(raw)):
                spans.append((start, end, "phone"))
        out = text
        for start, end, kind in sorted(spans, reverse=True):
            out = out[:start] + f"[{kind} removed]" + out[end:]
            redactions.append(kind)
        redactions.reverse()
        blocked = self.blocked_in(out)
        if blocked and self._blocked_re is not None:
            out = self._blocked_re.sub(lambda m: "*" * len(m.group()), out)
        return SafetyResult(out, redactions, blocked)

    @staticmethod
    def _phone_like(text: str, start: int, raw: str) -> bool:
        digits = _digits(raw)
        if not 7 <= len(digits) <= 15 or _ISO_DATE_RE.fullmatch(raw.strip("()")):
            return False
        if re.search(r"\d\.\d{2}$", raw) and not re.search(r"\d[\s-]", raw):
            return False  # an amount like 1234567.89
        formatted = raw.startswith(("+", "00", "(")) or bool(re.search(r"\d[\s().-]+\d", raw))
        return formatted or bool(_PHONE_CONTEXT_RE.search(text[max(0, start - 30) : start]))
