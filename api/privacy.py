"""Masking personal data in logs and reports: e-mail addresses, phone and card numbers (long
digit runs), street addresses, postcodes, names a shopper gives, and customer ids (a keyed hash).
Order numbers (short digit runs) and product names stay readable."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path
from typing import Any

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w])\+?\d(?:[\d\s().-]{5,}\d)(?![\w])")
_LONG_DIGITS = re.compile(r"\d{7,}")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9]{10,30}\b")


_STREET = re.compile(
    r"\b\d{1,5}[A-Za-z]?,?\s+(?:[A-Za-zÀ-ÿ'.-]+\s+){0,3}(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr|way|"
    r"court|ct|place|pl|boulevard|blvd|square|sq|crescent|close|terrace|strasse|straße|gasse|weg|allee)\b\.?",
    re.IGNORECASE)
_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b")  # UK-style; digit runs are numbers anyway
_NAME = re.compile(r"\b(my name is|i am|i'm|this is|name:)\s+((?:[A-Z][a-zà-ÿ'-]+\s?){1,3})")


def mask_text(text: str | None, limit: int = 500) -> str:
    """Personal data out of free text: e-mails, account and phone numbers, long digit runs, street
    addresses, UK-style postcodes and a name the shopper gives ("my name is Jane Doe")."""
    if not text:
        return ""
    t = _EMAIL.sub("[email]", text)
    t = _STREET.sub("[address]", t)
    t = _POSTCODE.sub("[postcode]", t)
    t = _NAME.sub(lambda m: f"{m.group(1)} [name] ", t)
    t = _IBAN.sub("[account]", t)
    t = _PHONE.sub(lambda m: "[number]" if sum(c.isdigit() for c in m.group()) >= 7 else m.group(), t)
    t = _LONG_DIGITS.sub("[number]", t)
    return t[:limit]


def mask_id(value: str | None, key: bytes) -> str | None:
    """A customer id shown as its first two characters and a short keyed hash (HMAC-SHA256 with the
    instance's privacy key: without the key, trying every id does not reveal which one it was)."""
    if not value:
        return None
    h = hmac.new(key, b"mask:" + value.encode("utf-8"), hashlib.sha256).hexdigest()[:8]
    return f"{value[:2]}…{h}"


def pseudonym(value: str | None, key: bytes) -> str | None:
    """A stable keyed pseudonym (sessions, customers) for records at rest."""
    if not value:
        return None
    return hmac.new(key, b"pseudonym:" + value.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def privacy_key(settings: Any) -> bytes:
    """The key of masked ids and pseudonyms: PRIVACY_SECRET; else one derived from
    CUSTOMER_TOKEN_SECRET (a secret every worker of a shop shares); else a random key kept in
    DATA_DIR/privacy.key (0600), made on first use (development and single-host installs)."""
    if settings.privacy_secret is not None:
        return settings.privacy_secret.get_secret_value().encode("utf-8")
    if settings.customer_token_secret is not None:
        return hmac.new(settings.customer_token_secret.get_secret_value().encode("utf-8"), b"kgqa-privacy",
                        hashlib.sha256).digest()
    path = Path(settings.data_dir) / "privacy.key"
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())
