"""Text normalisation shared by the linking index and the mentions it is asked about.

Both sides go through the same steps, so "WH-1000XM5", "wh1000xm5" and "Wh 1000xm5" meet:

- Unicode NFKD with accents dropped, lower case, "&" read as "and";
- hyphens, slashes, dots and apostrophes *between* letters or digits removed ("na-700x" -> "na700x",
  "usb-c" -> "usbc", "driftwood's" -> "driftwoods"); any other non-alphanumeric character splits;
- plural endings of purely alphabetic words cut back ("headphones" -> "headphone", "batteries" ->
  "battery"), so singular and plural mentions of a name or category agree;
- a *compact* form (all tokens glued) for model numbers typed with or without spaces ("na 700x").

Order ids and money amounts are parsed here as well: neither needs the graph.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

# Words that carry no identity in a product, brand or category mention. Removed from both the index
# keys and the mentions, so "travel case for the aurora x2" equals "Travel Case for Aurora X2".
STOPWORDS = frozenset(
    """a an the this that these those my your our their its it one ones some any
    of for with and or in on at by from to into via
    please pls plz me i you we do does is are was be have has had can could would want need like
    about how what which where when who whats much many
    model version item product thing stuff""".split()
)

# Tokens that qualify a number rather than name a variant ("128 GB", "US 9", "Size M").
UNIT_TOKENS = frozenset(
    "gb tb mb us uk eu size mm cm inch ram ssd ml kg lb lbs oz pack pcs".split()
)

_TOKEN_RE = re.compile(r"[^\W_]+(?:['’\-/.·][^\W_]+)*", re.UNICODE)
_NO_NUMBER = ("ing", "ics", "ure", "ware", "ness", "wear", "ion", "ment", "ss", "us", "is", "ous")


def fold(text: str) -> str:
    """Accents dropped, lower case, "&" read as "and"."""
    if text.isascii():
        return text.replace("&", " and ").lower()
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.replace("&", " and ").lower()


_PLURAL_ES = re.compile(r"(?:ches|shes|sses|xes|zes)$")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_POSSESSIVE = re.compile(r"['’]s$")


def stem(token: str) -> str:
    """Light plural stripping for alphabetic words of four or more letters; others unchanged."""
    if len(token) < 4 or not token.isalpha() or token.endswith(_NO_NUMBER):
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if _PLURAL_ES.search(token):
        return token[:-2]
    if token.endswith("s"):
        return token[:-1]
    return token


@dataclass(frozen=True)
class Token:
    text: str  # normalised (folded, joiners removed, stemmed)
    start: int  # character offsets in the original text
    end: int


def _words(text: str):
    """(normalised word, start, end) for each word of `text`; joiners inside a word are dropped."""
    for m in _TOKEN_RE.finditer(text):
        raw = fold(m.group(0))
        for part in raw.split():  # "&" inside a word became " and "
            norm = _NON_ALNUM.sub("", _POSSESSIVE.sub("", part))
            if norm:
                yield stem(norm), m.start(), m.end()


def tokens_with_offsets(text: str) -> list[Token]:
    """Normalised tokens of `text` with their character spans in the original string."""
    return [Token(w, s, e) for w, s, e in _words(text)]


@lru_cache(maxsize=16384)
def _tokens(text: str) -> tuple[str, ...]:
    return tuple(w for w, _s, _e in _words(text))


def tokens(text: str) -> list[str]:
    return list(_tokens(text))


@lru_cache(maxsize=16384)
def _content_tokens(text: str) -> tuple[str, ...]:
    return tuple(t for t in _tokens(text) if t not in STOPWORDS)


def content_tokens(text: str) -> list[str]:
    """Tokens without stopwords (the identity-bearing words of a mention or a name). Names repeat
    (brands, model lines, colours), so results are cached."""
    return list(_content_tokens(text))


def key(text: str) -> str:
    """Exact-match key: content tokens joined by spaces."""
    return " ".join(_content_tokens(text))


def compact(text: str) -> str:
    """Spacing-insensitive key: content tokens glued ("na 700x" == "NA-700X" == "na700x")."""
    return "".join(_content_tokens(text))


def is_model_number(token: str) -> bool:
    """A normalised token that reads as a model number: letters and digits, at least two of each."""
    return sum(ch.isdigit() for ch in token) >= 2 and sum(ch.isalpha() for ch in token) >= 2


# -- order ids -----------------------------------------------------------------------------------
_ORDER_PREFIX = re.compile(r"^(?:\s*(?:order|ord|no|nr|number|num|id)(?=[\s#:.]|$)\.?)*[\s#:.]*", re.IGNORECASE)


def normalise_order_id(text: str) -> str | None:
    """"#10452", "order 10452", "10 452" -> "10452"; "ORD-7F3A" stays "ORD-7F3A" (ids that are not
    numeric are kept whole, case included). Never looks anything up: whether the order exists, or
    is the caller's, is decided by the dialogue through the signed-in customer."""
    raw = unicodedata.normalize("NFKC", text or "").strip()
    if not raw:
        return None
    core = _ORDER_PREFIX.sub("", raw)
    digits = re.sub(r"[\s#\-–.]", "", core)
    if digits.isdigit():
        return digits[:64]
    ids = [t for t in re.findall(r"[A-Za-z0-9][A-Za-z0-9\-_/]*", core) if any(ch.isdigit() for ch in t)]
    return ids[-1][:64] if ids else None


# -- money ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __str__(self) -> str:  # the reply format of DESIGN section 3: "18.00 USD"
        return f"{self.amount:.2f} {self.currency}"


_SYMBOLS = {"$": "USD", "us$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "c$": "CAD",
            "a$": "AUD", "chf": "CHF", "kr": "SEK", "zł": "PLN"}
_WORDS = {
    "dollar": "USD", "dollars": "USD", "buck": "USD", "bucks": "USD", "usd": "USD",
    "euro": "EUR", "euros": "EUR", "eur": "EUR",
    "pound": "GBP", "pounds": "GBP", "quid": "GBP", "gbp": "GBP",
    "yen": "JPY", "jpy": "JPY", "cad": "CAD", "aud": "AUD", "chf": "CHF", "francs": "CHF",
    "sek": "SEK", "nok": "NOK", "dkk": "DKK", "pln": "PLN", "inr": "INR", "rupees": "INR",
}
_AMOUNT = re.compile(r"(\d{1,3}(?:[ ,.\u00a0\u202f]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?)\s*(k\b)?", re.I)


def _amount(text: str, kilo: bool) -> Decimal | None:
    t = text.replace("\u00a0", " ").replace("\u202f", " ").replace(" ", "")
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?", t):
        t = t.replace(",", "")
    elif re.fullmatch(r"\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?", t):
        t = t.replace(".", "").replace(",", ".")
    elif re.fullmatch(r"\d+,\d{1,2}", t):
        t = t.replace(",", ".")
    try:
        value = Decimal(t)
    except InvalidOperation:
        return None
    return value * 1000 if kilo else value


_SYMBOLS_LONGEST_FIRST = tuple(sorted(_SYMBOLS, key=len, reverse=True))  # "us$" before "$"

def parse_money(text: str, default_currency: str = "USD") -> Money | None:
    """"$200", "200 dollars", "150 eur", "EUR 1.299,00", "1,200.50£", "20k" -> Money; None without a number."""
    raw = unicodedata.normalize("NFKC", text or "").strip()
    m = _AMOUNT.search(raw)
    if not m:
        return None
    amount = _amount(m.group(1), bool(m.group(2)))
    if amount is None:
        return None
    low = raw.lower()
    currency = None
    for sym in _SYMBOLS_LONGEST_FIRST:  # symbols, and non-ASCII letters like "zł", match inside words
        if not (sym.isascii() and sym.isalpha()) and sym in low:
            currency = _SYMBOLS[sym]
            break
    if currency is None:
        for word in re.findall(r"[a-z]+", low):
            if word in _WORDS:
                currency = _WORDS[word]
                break
            if word in _SYMBOLS:
                currency = _SYMBOLS[word]
                break
    return Money(amount.quantize(Decimal("0.01")), currency or default_currency.upper())
