"""Text helpers of the dialogue: the word helpers it shares with entity linking (common/text.py,
re-exported here) and finding a new delivery address in a message."""

from __future__ import annotations

import re

from common.text import FILLER, base_name, covers, has_phrase, named_exactly, norm, word_matches, words

__all__ = ["FILLER", "base_name", "covers", "extract_address", "has_phrase", "named_exactly", "norm", "word_matches",
           "words"]


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
