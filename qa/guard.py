"""Grounding guard: is every checkable claim in an LLM reply supported by the retrieved facts?

The small model invents prices, dates and product names with confidence, so an LLM reply is
only sent when everything in it that can be checked is found in the facts (or in the template
writer's draft, which is built from the facts alone, or in the retrieval's prompt). What is
checked, in this order (each span is consumed by the first rule that claims it):

- e-mail addresses and URLs: must appear in the facts;
- catalogue names (products, brands, categories: the list given to the guard): a name from the
  catalogue that the facts do not mention is a fabrication (the model talking about another
  product), even if it is a real product; the longest name wins ("Aurora X2 Pro" is not
  "Aurora X2"); a name inside a name the facts give is supported ("Aurora X2" when the facts
  name "Nordic Audio Aurora X2 Wireless Headphones, Black"). The names follow the catalogue when
  the guard is given a source (`GroundingGuard.follow`; the engine passes the entity linker's);
- dates: ISO (2026-03-03, with or without a time), written ("March 3", "Mar 3rd, 2026",
  "3 March 2026", "the 3rd of March"), numeric (03/03/2026: either reading may match), month and
  year, weekday names (must be the weekday of some date in the facts); "tomorrow"/"yesterday"
  cannot be checked and are refused;
- clock times (14:30): must appear in the facts;
- money ("$18", "18 USD", "USD 18.00", "18,50 EUR", "1,299.99 dollars", "50 cents"): the amount
  must equal (as a decimal: 18 == 18.00, thousands separators ignored) a money value in the facts
  (a field named like price/total/fee/cost/amount, or an amount written with a currency in a
  fact's text) and a stated currency must be one the facts use;
- percentages ("15%", "15 percent"): 15 or 0.15 must be a number in the facts;
- identifiers (order ids, tracking numbers, SKUs, model numbers, "128GB"): any token mixing
  letters and digits, or digits joined by - / _; must match a token (or adjacent tokens run
  together) of the facts, case and separators ignored; digit ranges ("2-5") pass when each
  number does;
- plain numbers ("3", "1,299", "4.5", "2nd") and number words ("two" ... "ninety"; not "one");
- capitalised words in mid-sentence, and acronyms or CamelCase words anywhere ("DHA",
  "SpaceX"), that are not in the facts (an invented brand, carrier or place): refused unless they
  are everyday words of a customer-service reply (a short allow list);
- claimed actions: "I have cancelled ...", "your refund has been issued", "I'll change your
  address": only when the retrieval says the action was done (status ``action_done``, and the
  verb fits the intent), promises only while an action is proposed or done; a passive statement
  of a state the facts show ("your order was cancelled" when the order's status is cancelled)
  is a fact, not a claim.

What it does not do: it checks support, not attribution (a supported number attached to the
wrong field passes: "costs 30 USD" is refused only because 30 is not a money value, but "ships
in 30 days" passes if 30 is the return window), and it does not judge negations or tone. The
template fallback is always faithful; the guard only decides whether the LLM's wording may
replace it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from qa.registry import spec_for
from qa.types import Retrieval

log = logging.getLogger(__name__)


class GuardResult(NamedTuple):
    ok: bool
    reasons: list[str]


# -- lexical material ----------------------------------------------------------------------------
_MONTHS: dict[str, int] = {}
for _i in range(1, 13):
    _MONTHS[calendar.month_name[_i].lower()] = _i
    _MONTHS[calendar.month_abbr[_i].lower()] = _i
_MONTHS["sept"] = 9
_WEEKDAYS = {calendar.day_name[i].lower(): i for i in range(7)}
_WEEKDAYS.update({calendar.day_abbr[i].lower(): i for i in range(7)})

_MONTH_RE = r"(?:January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)"
_WEEKDAY_RE = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"

_CURRENCY_CODES = {
    "USD", "EUR", "GBP", "JPY", "CNY", "RMB", "INR", "CAD", "AUD", "NZD", "CHF", "SEK", "NOK", "DKK",
    "PLN", "CZK", "HUF", "SGD", "HKD", "KRW", "MXN", "BRL", "ZAR", "TRY", "AED", "SAR", "ILS", "THB",
}  # fmt: skip
_SYMBOLS = {
    "$": {"USD", "CAD", "AUD", "NZD", "SGD", "HKD", "MXN"},
    "US$": {"USD"},
    "€": {"EUR"},
    "£": {"GBP"},
    "¥": {"JPY", "CNY", "RMB"},
    "₹": {"INR"},
    "₩": {"KRW"},
    "CHF": {"CHF"},
}
_CURRENCY_WORDS = {
    "dollar": _SYMBOLS["$"], "dollars": _SYMBOLS["$"], "bucks": _SYMBOLS["$"],
    "euro": {"EUR"}, "euros": {"EUR"}, "yen": {"JPY"}, "yuan": {"CNY", "RMB"}, "rupees": {"INR"},
}  # fmt: skip

_NUMBER_WORDS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip

# Capitalised words a customer-service reply uses without naming anything.
_COMMON_CAPITALISED = {
    "i", "i'm", "i'll", "i've", "i'd", "ok", "okay", "hi", "hello", "hey", "dear", "thanks", "thank",
    "please", "sorry", "yes", "no", "mr", "mrs", "ms", "dr", "am", "pm", "utc", "gmt", "faq", "faqs",
    "sku", "id", "customer", "customers", "service", "support", "team", "store", "shop", "order",
    "orders", "account", "help", "center", "centre", "care", "agent", "policy", "returns", "refund",
    "refunds", "shipping", "delivery", "standard", "express", "premium", "business", "days",
    "assistant", "online", "chat", "email", "e-mail", "phone", "note", "unfortunately", "however",
    "also", "great", "good", "best", "regards", "welcome", "happy", "glad", "certainly", "sure",
    "of", "course", "the", "a", "an", "your", "our", "we", "you", "it", "this", "that", "here",
    "there", "is", "are", "was", "if", "to", "and", "or", "in", "on", "for", "with",
}  # fmt: skip
_COMMON_CAPITALISED.update(_MONTHS)
_COMMON_CAPITALISED.update(_WEEKDAYS)
_COMMON_CAPITALISED.update(c.lower() for c in _CURRENCY_CODES)

_MONEY_KEY = re.compile(r"price|total|fee|cost|amount|free_over|balance|charge|refund|subtotal|paid", re.I)

# Claimed actions: stem -> inflected forms.
_ACTION_FORMS: dict[str, tuple[str, ...]] = {
    "cancel": ("cancel", "cancels", "cancelled", "canceled", "cancelling", "canceling"),
    "refund": ("refund", "refunds", "refunded"),
    "change": ("change", "changes", "changed"),
    "update": ("update", "updates", "updated"),
    "modify": ("modify", "modifies", "modified"),
    "issue": ("issue", "issues", "issued"),
    "process": ("process", "processes", "processed"),
    "submit": ("submit", "submits", "submitted"),
    "place": ("place", "places", "placed"),
    "delete": ("delete", "deletes", "deleted"),
    "remove": ("remove", "removes", "removed"),
    "create": ("create", "creates", "created"),
    "add": ("add", "adds", "added"),
    "subscribe": ("subscribe", "subscribes", "subscribed"),
    "unsubscribe": ("unsubscribe", "unsubscribes", "unsubscribed"),
    "reset": ("reset", "resets"),
    "send": ("send", "sends", "sent"),
    "email": ("email", "emails", "emailed"),
    "initiate": ("initiate", "initiates", "initiated"),
    "arrange": ("arrange", "arranges", "arranged"),
    "schedule": ("schedule", "schedules", "scheduled"),
    "escalate": ("escalate", "escalates", "escalated"),
    "credit": ("credit", "credits", "credited"),
    "reverse": ("reverse", "reverses", "reversed"),
    "approve": ("approve", "approves", "approved"),
    "book": ("book", "books", "booked"),
}
_FORM_TO_STEM = {form: stem for stem, forms in _ACTION_FORMS.items() for form in forms}
_PAST_FORMS = sorted(
    {f for forms in _ACTION_FORMS.values() for f in forms if f.endswith(("ed", "sent", "reset"))}
)
_BASE_FORMS = sorted(_ACTION_FORMS)
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_NUM_RE = re.compile(rf"(?<![\w.,])(?:{_NUM})(?![\w]|[.,]\d)")
_MONEY_NUM = rf"\d+,\d{{1,2}}(?!\d)|{_NUM}"
_CODES_RE = "|".join(sorted(_CURRENCY_CODES))
_SYM_RE = r"US\$|[$€£¥₹₩]"
_MONEY_RES = [
    re.compile(rf"(?P<sym>{_SYM_RE})\s?(?P<num>{_MONEY_NUM})(?![\w]|[.,]\d)"),
    re.compile(rf"\b(?P<code>{_CODES_RE})\s?(?P<num>{_MONEY_NUM})(?![\w]|[.,]\d)"),
    re.compile(rf"(?<![\w.,])(?P<num>{_MONEY_NUM})\s?(?P<code>{_CODES_RE})\b"),
    re.compile(rf"(?<![\w.,])(?P<num>{_MONEY_NUM})\s?(?P<sym>[€£$¥₹₩])"),
    re.compile(
        rf"(?<![\w.,])(?P<num>{_MONEY_NUM})\s?(?P<word>dollars?|euros?|bucks|yen|yuan|rupees)\b", re.I
    ),
    re.compile(rf"(?<![\w.,])(?P<num>{_MONEY_NUM})\s?(?P<cents>cents?)\b", re.I),
]
_PERCENT_RE = re.compile(rf"(?<![\w.,])(?P<num>{_NUM})\s?(?:%|percent\b|per cent\b)", re.I)
_ISO_RE = re.compile(
    r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:[T ](?P<time>\d{1,2}:\d{2})(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?(?!\d)"
)
_ORD = r"(?:st|nd|rd|th)?"
_DATE_RES = [
    _ISO_RE,
    re.compile(
        rf"\b(?:(?P<wd>{_WEEKDAY_RE}),?\s+)?(?P<mon>{_MONTH_RE})\.?\s+(?:the\s+)?(?P<d>\d{{1,2}}){_ORD}\b"
        rf"(?:,?\s+(?P<y>\d{{4}})\b)?",
        re.I,
    ),
    re.compile(
        rf"\b(?:(?P<wd>{_WEEKDAY_RE}),?\s+)?(?:the\s+)?(?P<d>\d{{1,2}}){_ORD}(?:\s+of)?\s+(?P<mon>{_MONTH_RE})\b\.?"
        rf"(?:,?\s+(?P<y>\d{{4}})\b)?",
        re.I,
    ),
    re.compile(rf"\b(?P<mon>{_MONTH_RE})\.?,?\s+(?P<y>\d{{4}})\b", re.I),
    re.compile(r"\b(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})\b"),
    re.compile(r"(?<![\d/.])(?P<a>\d{1,2})[/.](?P<b>\d{1,2})[/.](?P<y>\d{4}|\d{2})(?![\d/.]|\.\d)"),
]
_WEEKDAY_ONLY_RE = re.compile(rf"\b(?P<wd>{_WEEKDAY_RE})s?\b", re.I)
_RELATIVE_RE = re.compile(r"\b(tomorrow|yesterday|tonight|day after tomorrow)\b", re.I)
_TIME_RE = re.compile(r"(?<![\d:])(?P<h>\d{1,2}):(?P<m>\d{2})(?:\s?(?P<ap>[ap]\.?m\.?))?(?![\d:])", re.I)
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL_RE = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+", re.I)
_IDENT_RE = re.compile(r"(?<![\w#])#?[A-Za-z0-9]+(?:[-_/][A-Za-z0-9]+)*(?![\w])")
_ORDINAL_RE = re.compile(r"^(\d+)(?:st|nd|rd|th)$", re.I)
_UNIT_RE = re.compile(r"^(\d+(?:\.\d+)?)([a-z]{1,3})$", re.I)
_KNOWN_UNITS = {
    "gb", "tb", "mb", "kb", "mah", "kg", "g", "mg", "lb", "lbs", "oz", "mm", "cm", "m", "km", "in",
    "ft", "w", "kw", "v", "hz", "ghz", "mhz", "ml", "l", "h", "hr", "hrs", "min", "s", "ms", "x", "mp",
}  # fmt: skip
_WORD_NUM_RE = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.I)
_CAP_RE = re.compile(r"(?<![\w'’-])[A-Z][\w'’&-]*[A-Za-z0-9]|(?<![\w'’-])[A-Z](?![\w'’-])")
_TOKEN_RE = re.compile(r"[^\W_]+")

_NEG = r"(?:not|never|n't|n’t|cannot|can't|can’t|unable to|won't|won’t)"
_CLAIM_FIRST_PAST = re.compile(
    r"\b(?P<subj>I|we)(?P<mid>(?:\s+|'|’)(?:have|'ve|’ve|ve|had|just|already|now|successfully|went ahead and|gone ahead and)){0,3}"
    rf"\s+(?P<verb>{'|'.join(_PAST_FORMS)})\b",
    re.I,
)
_CLAIM_PASSIVE = re.compile(
    r"\b(?P<aux>has|have|had|was|were|is|are|'s|’s)\s+(?:now\s+|just\s+|already\s+|successfully\s+)*"
    rf"(?:been\s+)?(?:now\s+|just\s+|successfully\s+)?(?P<verb>{'|'.join(_PAST_FORMS)})\b",
    re.I,
)
_CLAIM_FUTURE = re.compile(
    r"\b(?P<subj>I|we)\s*(?:will|'ll|’ll|shall|am going to|are going to)\s+(?:now\s+|go ahead and\s+|immediately\s+)?"
    rf"(?P<verb>{'|'.join(_BASE_FORMS)})\b",
    re.I,
)


def _dec(text: str) -> Decimal | None:
    s = text.strip()
    if re.fullmatch(r"\d+,\d{1,2}", s):  # decimal comma (money only)
        s = s.replace(",", ".")
    else:
        s = s.replace(",", "")
    try:
        return Decimal(s).normalize()
    except InvalidOperation:
        return None


def _norm_token(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _year(y: str | None) -> int | None:
    if y is None:
        return None
    n = int(y)
    return n + 2000 if n < 100 else n


class _Date(NamedTuple):
    y: int | None
    m: int
    d: int | None


def _iter_dates(text: str) -> Iterator[tuple[re.Match[str], list[_Date], int | None]]:
    """(match, candidate readings, weekday named with it) for every date in ``text``."""
    for i, rx in enumerate(_DATE_RES):
        for m in rx.finditer(text):
            g = m.groupdict()
            wd = _WEEKDAYS.get((g.get("wd") or "").lower())
            try:
                if i == len(_DATE_RES) - 1:  # a/b/y: either order
                    a, b, y = int(g["a"]), int(g["b"]), _year(g["y"])
                    cands = [
                        c
                        for c in (_Date(y, b, a), _Date(y, a, b))
                        if 1 <= c.m <= 12 and 1 <= (c.d or 1) <= 31
                    ]
                elif g.get("mon"):
                    mon = _MONTHS[g["mon"].lower().rstrip(".")]
                    d = int(g["d"]) if g.get("d") else None
                    cands = [_Date(_year(g.get("y")), mon, d)] if d is None or 1 <= d <= 31 else []
                else:
                    cands = [_Date(int(g["y"]), int(g["m"]), int(g["d"]))]
                    if not (1 <= cands[0].m <= 12 and 1 <= (cands[0].d or 1) <= 31):
                        cands = []
            except (KeyError, ValueError):
                cands = []
            if cands:
                yield m, cands, wd


def _ngrams(tokens: list[str], n: int = 4) -> Iterator[str]:
    for i in range(len(tokens)):
        for j in range(i + 1, min(len(tokens), i + n) + 1):
            yield "".join(tokens[i:j])


class _NameIndex:
    """Catalogue names by their lower-cased word tuple, matched longest-first. A one-word name
    made only of letters (a brand like "Apple") matches only when written capitalised, so an
    ordinary word in a reply is not taken for it."""

    def __init__(self, names: Iterable[str]) -> None:
        self.keys: dict[tuple[str, ...], str] = {}
        for name in names:
            toks = tuple(t.lower() for t in _TOKEN_RE.findall(str(name)))
            if toks:
                self.keys.setdefault(toks, str(name))
        self.max_len = max((len(k) for k in self.keys), default=0)

    def find(self, text: str) -> Iterator[tuple[int, int, tuple[str, ...]]]:
        if not self.keys:
            return
        toks = [(m.group().lower(), m.start(), m.end(), m.group()) for m in _TOKEN_RE.finditer(text)]
        i = 0
        while i < len(toks):
            hit = None
            for n in range(min(self.max_len, len(toks) - i), 0, -1):
                key = tuple(t[0] for t in toks[i : i + n])
                if key in self.keys:
                    if n == 1 and key[0].isalpha() and not toks[i][3][:1].isupper():
                        continue
                    hit = (toks[i][1], toks[i + n - 1][2], key)
                    break
            if hit:
                yield hit
                i += len(hit[2])
            else:
                i += 1

    def find_all(self, text: str) -> Iterator[tuple[str, ...]]:
        """Every name occurring in `text`, nested ones included (the model line and the brand
        inside a full product name), by the same capitalisation rule as `find`."""
        if not self.keys:
            return
        toks = [(m.group().lower(), m.group()) for m in _TOKEN_RE.finditer(text)]
        for i in range(len(toks)):
            for n in range(1, min(self.max_len, len(toks) - i) + 1):
                key = tuple(t[0] for t in toks[i : i + n])
                if key in self.keys and not (n == 1 and key[0].isalpha() and not toks[i][1][:1].isupper()):
                    yield key


class _Support:
    """Everything the facts (plus the draft and the prompt) let a reply say."""

    def __init__(self, retrieval: Retrieval, draft: str | None, names: _NameIndex) -> None:
        self.numbers: set[Decimal] = set()
        self.money: set[Decimal] = set()
        self.currencies: set[str] = set()
        self.dates: set[_Date] = set()
        self.weekdays: set[int] = set()
        self.days: set[int] = set()
        self.tokens: set[str] = set()
        self.words: set[str] = set()
        self.catalogue_hits: set[tuple[str, ...]] = set()
        # Past-tense action words among the facts' own values ("status": "cancelled"): states the
        # reply may report. Not taken from the draft or the prompt, which may describe an action
        # that is only proposed ("Shall I cancel ...? Once cancelled, ...").
        self.states: set[str] = set()
        texts: list[str] = []
        for fact in retrieval.facts:
            texts.append(fact.kind)
            self._walk(fact.data, "", texts)
        n_fact_texts = len(texts)
        self._walk(retrieval.prompt.as_dict() if retrieval.prompt is not None else {}, "", texts)
        if draft:
            self._text(draft, "draft", texts)
        for t in texts[:n_fact_texts]:
            for tok in _TOKEN_RE.findall(t.lower()):
                if tok in _FORM_TO_STEM and tok in _PAST_FORMS:
                    self.states.add(_FORM_TO_STEM[tok])
        self.text = "\n".join(texts).lower()
        for t in texts:
            self.catalogue_hits.update(names.find_all(t))

    def _walk(self, value: Any, key: str, texts: list[str]) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if v not in (None, "", [], {}):
                    texts.append(str(k).replace("_", " "))  # "cancelled_at": the order was cancelled
                self._walk(v, str(k), texts)
        elif isinstance(value, list | tuple | set):
            for v in value:
                self._walk(v, key, texts)
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, int | float | Decimal):
            d = _dec(str(value))
            if d is not None:
                self.numbers.add(d)
                if _MONEY_KEY.search(key):
                    self.money.add(d)
            self.tokens.add(_norm_token(str(value)))
        elif isinstance(value, dt.datetime | dt.date):
            self._text(value.isoformat(), key, texts)
        else:
            s = str(value)
            if key.lower() == "currency" and s.strip():
                self.currencies.add(s.strip().upper())
            self._text(s, key, texts)
            if _MONEY_KEY.search(key):
                d = _dec(s) if re.fullmatch(rf"\s*(?:{_MONEY_NUM})\s*", s) else None
                if d is not None:
                    self.money.add(d)

    def _text(self, s: str, key: str, texts: list[str]) -> None:
        texts.append(s)
        for _m, cands, _ in _iter_dates(s):
            for c in cands:
                self.dates.add(c)
                if c.d is not None:
                    self.days.add(c.d)
                if c.y is not None:
                    self.numbers.add(Decimal(c.y))
                    if c.d is not None:
                        try:
                            self.weekdays.add(dt.date(c.y, c.m, c.d).weekday())
                        except ValueError:
                            pass
        for rx in _MONEY_RES:
            for m in rx.finditer(s):
                amount = _dec(m.group("num"))
                if amount is None:
                    continue
                if m.groupdict().get("cents"):
                    amount = (amount / 100).normalize()
                self.money.add(amount)
                code = m.groupdict().get("code")
                if code:
                    self.currencies.add(code.upper())
                sym = m.groupdict().get("sym")
                if sym:
                    self.currencies.update(_SYMBOLS.get(sym, set()))
        for m in _NUM_RE.finditer(s):
            d = _dec(m.group())
            if d is not None:
                self.numbers.add(d)
        for m in re.finditer(r"\d+,\d{1,2}(?!\d)", s):
            d = _dec(m.group())
            if d is not None:
                self.numbers.add(d)
        toks = [t.lower() for t in _TOKEN_RE.findall(s)]
        self.words.update(toks)
        self.tokens.update(_ngrams(toks))
        for t in toks:
            if t.upper() in _CURRENCY_CODES and s.strip().upper() == t.upper():
                self.currencies.add(t.upper())

    # -- checks ---------------------------------------------------------------------------------
    def number_ok(self, d: Decimal) -> bool:
        return d in self.numbers

    def money_ok(self, amount: Decimal, currencies: set[str] | None, default: set[str]) -> bool:
        if amount not in self.money:
            return False
        if currencies:
            known = self.currencies or default
            return not known or bool(currencies & known)
        return True

    def date_ok(self, c: _Date) -> bool:
        return any(
            f.m == c.m and (c.d is None or f.d == c.d) and (c.y is None or f.y is None or f.y == c.y)
            for f in self.dates
        )

    def ident_ok(self, ident: str) -> bool:
        key = _norm_token(ident)
        return bool(key) and key in self.tokens


class GroundingGuard:
    """Checks LLM replies against facts; thread-safe. ``catalogue_names`` are the shop's product,
    brand (and optionally category) names; replace them with `set_catalogue` when the catalogue
    changes. ``default_currencies`` are accepted for a stated currency when the facts name none."""

    def __init__(
        self, catalogue_names: Iterable[str] = (), *, default_currencies: Iterable[str] = ()
    ) -> None:
        self._names = _NameIndex(catalogue_names)
        self._lock = threading.Lock()
        self.default_currencies = {c.upper() for c in default_currencies}
        self._source: tuple[Callable[[], Any], Callable[[], Iterable[str]]] | None = None
        self._version: Any = None

    def set_catalogue(self, names: Iterable[str]) -> None:
        index = _NameIndex(names)
        with self._lock:
            self._names = index

    def follow(self, version: Callable[[], Any], names: Callable[[], Iterable[str]]) -> None:
        """Keep the names current: each check reads `version()` (it must be cheap) and reloads
        `names()` when it changed, so a product imported a minute ago counts as a catalogue name.
        A source that fails leaves the last names in place (the guard must not fail a turn)."""
        self._source = (version, names)
        self._version = object()  # load on the first check

    def _current_names(self) -> _NameIndex:
        source = self._source
        if source is not None:
            try:
                version = source[0]()
                if version != self._version:
                    with self._lock:
                        if version != self._version:
                            self._names = _NameIndex(source[1]())
                            self._version = version
            except Exception as exc:  # noqa: BLE001 - graph away: keep checking with the names we have
                log.warning("catalogue names not refreshed: %s", exc)
        return self._names

    def check(self, text: str, retrieval: Retrieval, *, draft: str | None = None) -> GuardResult:
        names = self._current_names()
        support = _Support(retrieval, draft, names)
        reasons: list[str] = []
        taken = [False] * len(text)

        def free(start: int, end: int) -> bool:
            return not any(taken[start:end])

        def take(start: int, end: int) -> None:
            for i in range(start, end):
                taken[i] = True

        def fail(msg: str) -> None:
            if msg not in reasons:
                reasons.append(msg)

        def context(start: int) -> str:
            return text[max(0, start - 24) : start].lower()

        # e-mails and URLs
        for rx, label in ((_EMAIL_RE, "e-mail address"), (_URL_RE, "link")):
            for m in rx.finditer(text):
                if free(m.start(), m.end()):
                    take(m.start(), m.end())
                    if m.group().lower().rstrip(".") not in support.text:
                        fail(f"{label} '{m.group()}' is not in the facts")
        # catalogue names
        for start, end, key in names.find(text):
            if not free(start, end):
                continue
            take(start, end)
            if key not in support.catalogue_hits:
                fail(f"name '{text[start:end]}' is in the catalogue but not in the facts")
        # dates
        for m, cands, wd in _iter_dates(text):
            if not free(m.start(), m.end()):
                continue
            take(m.start(), m.end())
            if not any(support.date_ok(c) for c in cands):
                fail(f"date '{m.group().strip()}' is not in the facts")
            elif (
                wd is not None
                and not any(c.y is not None and c.d is not None and _weekday(c) == wd for c in cands)
                and wd not in support.weekdays
            ):
                fail(f"weekday in '{m.group().strip()}' does not match the facts")
            if m.groupdict().get("time") and m.group("time") not in support.text:
                fail(f"time in '{m.group()}' is not in the facts")
        for m in _WEEKDAY_ONLY_RE.finditer(text):
            if free(m.start(), m.end()):
                take(m.start(), m.end())
                wd_name = m.group("wd").lower()
                if _WEEKDAYS[wd_name] not in support.weekdays and wd_name not in support.words:
                    fail(f"weekday '{m.group()}' is not in the facts")
        for m in _RELATIVE_RE.finditer(text):
            if m.group().lower() not in support.text:
                fail(f"relative date '{m.group()}' cannot be checked against the facts")
        # clock times
        for m in _TIME_RE.finditer(text):
            if free(m.start(), m.end()):
                take(m.start(), m.end())
                h, mi = int(m.group("h")), m.group("m")
                forms = {f"{h}:{mi}", f"{h:02d}:{mi}"}
                if m.group("ap") and m.group("ap").lower().startswith("p") and h < 12:
                    forms |= {f"{h + 12}:{mi}"}
                if not any(f in support.text for f in forms):
                    fail(f"time '{m.group()}' is not in the facts")
        # money
        for rx in _MONEY_RES:
            for m in rx.finditer(text):
                if not free(m.start(), m.end()):
                    continue
                take(m.start(), m.end())
                g = m.groupdict()
                amount = _dec(g["num"])
                if amount is None:
                    continue
                if g.get("cents"):
                    amount = (amount / 100).normalize()
                stated: set[str] | None = None
                if g.get("code"):
                    stated = {g["code"].upper()}
                elif g.get("sym"):
                    stated = _SYMBOLS.get(g["sym"], set())
                elif g.get("word"):
                    stated = _CURRENCY_WORDS.get(g["word"].lower(), set())
                if not support.money_ok(amount, stated, self.default_currencies):
                    fail(f"money amount '{m.group().strip()}' is not in the facts")
        # percentages
        for m in _PERCENT_RE.finditer(text):
            if free(m.start(), m.end()):
                take(m.start(), m.end())
                n = _dec(m.group("num"))
                if n is None or not (support.number_ok(n) or support.number_ok((n / 100).normalize())):
                    fail(f"percentage '{m.group().strip()}' is not in the facts")
        # identifiers (order ids, tracking numbers, SKUs, model numbers, quantities with units)
        for m in _IDENT_RE.finditer(text):
            raw = m.group().lstrip("#")
            has_digit = any(c.isdigit() for c in raw)
            has_alpha = any(c.isalpha() for c in raw)
            has_sep = any(c in "-_/" for c in raw)
            if not has_digit or not (has_alpha or has_sep) or not free(m.start(), m.end()):
                continue
            if _ORDINAL_RE.match(raw):
                continue  # a number, checked below
            take(m.start(), m.end())
            if support.ident_ok(raw):
                continue
            unit = _UNIT_RE.match(raw)
            if unit and (unit.group(2).lower() in _KNOWN_UNITS or unit.group(2).lower() in support.words):
                d = _dec(unit.group(1))
                if d is not None and support.number_ok(d):
                    continue
            parts = re.split(r"[-_/]", raw)
            if all(p.isdigit() for p in parts) and all(
                (d := _dec(p)) is not None and support.number_ok(d) for p in parts
            ):
                continue
            fail(f"{_id_label(context(m.start()))} '{m.group()}' is not in the facts")
        # plain numbers and ordinals
        for m in re.finditer(rf"(?<![\w.,])(?:{_NUM})(?:st|nd|rd|th)?(?![\w]|[.,]\d)", text):
            if not free(m.start(), m.end()):
                continue
            take(m.start(), m.end())
            raw = m.group()
            ordinal = _ORDINAL_RE.match(raw)
            d = _dec(ordinal.group(1) if ordinal else raw)
            if d is None:
                continue
            if support.number_ok(d) or (ordinal and int(d) in support.days):
                continue
            if support.ident_ok(raw):
                continue
            label = _id_label(context(m.start()))
            fail(f"{label} '{raw}' is not in the facts")
        for m in _WORD_NUM_RE.finditer(text):
            if free(m.start(), m.end()):
                take(m.start(), m.end())
                if not support.number_ok(Decimal(_NUMBER_WORDS[m.group().lower()])):
                    fail(f"number '{m.group()}' is not in the facts")
        # capitalised names in mid-sentence
        for m in _CAP_RE.finditer(text):
            inner_caps = any(c.isupper() for c in m.group()[1:])  # "DHA", "SpaceX": a name anywhere
            if not free(m.start(), m.end()) or (_sentence_start(text, m.start()) and not inner_caps):
                continue
            word = m.group().lower().strip("'’")
            parts = [p for p in re.split(r"[-'’&]", word) if p]
            if (
                word in _COMMON_CAPITALISED
                or word in support.words
                or all(p in support.words or p in _COMMON_CAPITALISED for p in parts)
            ):
                continue
            if re.sub(r"(?:'s|’s)$", "", word) in support.words:
                continue
            fail(f"name '{m.group()}' is not in the facts")
        # claimed actions
        self._check_actions(text, retrieval, support, fail)
        return GuardResult(not reasons, reasons)

    @staticmethod
    def _check_actions(text: str, retrieval: Retrieval, support: _Support, fail: Any) -> None:
        status = retrieval.status
        spec = spec_for(retrieval.intent)  # which claimed actions this intent's completed action may report
        allowed = spec.action_words if spec is not None else frozenset()

        def negated(m: re.Match[str]) -> bool:
            return bool(re.search(_NEG, m.group(), re.I))

        claimed: list[tuple[int, int]] = []
        for m in _CLAIM_FIRST_PAST.finditer(text):
            claimed.append(m.span())
            if negated(m):
                continue
            stem = _FORM_TO_STEM[m.group("verb").lower()]
            if status == "action_done" and (stem in allowed or stem in support.states):
                continue
            if m.group().lower() in support.text:
                continue
            fail(f"claims an action ('{m.group()}') that was not done (status {status})")
        for m in _CLAIM_PASSIVE.finditer(text):
            if any(a <= m.start() < b for a, b in claimed):
                continue
            before = text[max(0, m.start() - 12) : m.start()]
            if re.search(_NEG + r"\s*$", before, re.I) or negated(m):
                continue
            stem = _FORM_TO_STEM[m.group("verb").lower()]
            if stem in support.states:
                continue  # the facts show that state ("status": "cancelled")
            if status == "action_done" and stem in allowed:
                continue
            fail(f"claims an action ('{m.group()}') that was not done (status {status})")
        for m in _CLAIM_FUTURE.finditer(text):
            stem = _FORM_TO_STEM[m.group("verb").lower()]
            if status in ("action_proposed", "action_done") and (stem in allowed or stem in support.states):
                continue
            if m.group().lower() in support.text:
                continue
            fail(f"promises an action ('{m.group()}') that is not on offer (status {status})")


def _weekday(c: _Date) -> int | None:
    try:
        return dt.date(c.y, c.m, c.d).weekday() if c.y and c.d else None
    except ValueError:
        return None


def _id_label(before: str) -> str:
    if re.search(r"order\s*(?:number|no\.?|id|#)?\s*#?\s*$", before):
        return "order id"
    if re.search(r"tracking\s*(?:number|no\.?|code|id)?\s*(?:is|:)?\s*#?\s*$", before):
        return "tracking number"
    if re.search(r"(?:sku|model|part|item)\s*(?:number|no\.?|#)?\s*(?:is|:)?\s*$", before):
        return "SKU/model number"
    if re.search(r"invoice\s*(?:number|no\.?|#)?\s*$", before):
        return "invoice number"
    return "number"


def _sentence_start(text: str, pos: int) -> bool:
    i = pos - 1
    while i >= 0 and text[i] in " \t\"'“‘(*-•":
        i -= 1
    return i < 0 or text[i] in ".!?:;\n"


def facts_json_lines(retrieval: Retrieval, *, max_facts: int = 12, max_chars: int = 400) -> str:
    """The facts as compact JSON lines (the same view the guard checks against), long strings
    cut. Used to build the LLM prompt."""
    lines = []
    for fact in retrieval.facts[:max_facts]:
        data = {
            k: (v[:max_chars] + "…" if isinstance(v, str) and len(v) > max_chars else v)
            for k, v in fact.data.items()
        }
        lines.append(
            json.dumps({"kind": fact.kind, **data}, ensure_ascii=False, separators=(",", ":"), default=str)
        )
    return "\n".join(lines)
