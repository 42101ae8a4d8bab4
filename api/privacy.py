"""Masking personal data in logs and reports: e-mail addresses, phone and card numbers (long
digit runs), and customer ids. Order numbers (short digit runs) and product names stay readable."""

from __future__ import annotations

import hashlib
import re

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w])\+?\d(?:[\d\s().-]{5,}\d)(?![\w])")
_LONG_DIGITS = re.compile(r"\d{7,}")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9]{10,30}\b")


def mask_text(text: str | None, limit: int = 500) -> str:
    if not text:
        return ""
    t = _EMAIL.sub("[email]", text)
    t = _IBAN.sub("[account]", t)
    t = _PHONE.sub(lambda m: "[number]" if sum(c.isdigit() for c in m.group()) >= 7 else m.group(), t)
    t = _LONG_DIGITS.sub("[number]", t)
    return t[:limit]


def mask_id(value: str | None) -> str | None:
    """A customer id shown as its first two characters and a short stable hash."""
    if not value:
        return None
    h = hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]
    return f"{value[:2]}…{h}"


def pseudonym(value: str | None) -> str | None:
    """A stable pseudonym (sessions, customers) for records at rest."""
    if not value:
        return None
    return hashlib.sha256(("kgqa:" + value).encode("utf-8")).hexdigest()[:16]
