"""Small text helpers shared by context resolution and the handlers: normalising a message,
whole-phrase matching, and finding a new delivery address in a message."""

from __future__ import annotations

import re


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


def has_phrase(text: str, phrase: str) -> bool:
    phrase = phrase.strip().lower()
    if not phrase:
        return False
    return re.search(r"(?<![a-z0-9])" + re.escape(phrase) + r"(?![a-z0-9])", text) is not None


# -- addresses ----------------------------------------------------------------------------------
_ADDRESS_MARKER = re.compile(r"\b(?:to|is|new address|address|ship it to|send it to)\b\s*[:\-]?\s*|:\s*", re.IGNORECASE)


def _valid_address(text: str) -> str | None:
    candidate = text.strip(" .,;:\"'!?")
    if re.search(r"\border\b", candidate, re.IGNORECASE) or re.fullmatch(r"#?\d+", candidate):
        return None  # "for order 10452" is an order, not an address
    if re.search(r"\d", candidate) and len(re.findall(r"[^\W\d_]", candidate)) >= 4 and 6 <= len(candidate) <= 200:
        return candidate
    return None


def extract_address(message: str, *, whole_message: bool = False) -> str | None:
    """The new address in a message ("... of order 10452 to 12 Baker Street, London"), or None.

    The text after the right-most marker ("to", "is", ":") that reads as an address (a digit, a few
    letters, no order number) wins. With `whole_message` (the answer to "what is the new
    address?") the message itself is the address once polite lead-ins are dropped."""
    text = message.strip()
    for m in reversed(list(_ADDRESS_MARKER.finditer(text))):
        found = _valid_address(text[m.end():])
        if found:
            return found
    if whole_message:
        lead = re.sub(r"^(please\s+)?(use|send it to|ship it to|deliver (it )?to|it'?s|it is|the new address is)\s+",
                      "", text, flags=re.IGNORECASE)
        return _valid_address(lead)
    return None
