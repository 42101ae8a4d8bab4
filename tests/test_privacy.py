"""Personal data in logs and reports (api/privacy.py): masked free text, keyed ids and pseudonyms."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

from api.privacy import mask_id, mask_text, privacy_key, pseudonym
from common.settings import Settings


def test_free_text_loses_addresses_postcodes_names_and_numbers():
    text = ("hi, my name is Jane Doe, please send it to 12 Harbour Street, Edinburgh EH1 2AB "
            "or call +44 7700 900123, jane.doe@example.com, order 10452 of the Aurora X2")
    out = mask_text(text)
    for secret in ("Jane", "Doe", "12 Harbour Street", "EH1 2AB", "7700", "jane.doe@example.com"):
        assert secret not in out, (secret, out)
    assert "[address]" in out and "[postcode]" in out and "[name]" in out and "[email]" in out
    assert "10452" in out and "Aurora X2" in out and "Edinburgh" in out  # order numbers and products stay


def test_ids_are_keyed_so_trying_every_id_reveals_nothing():
    a, b = b"k" * 32, b"j" * 32
    assert mask_id("C00001", a) == mask_id("C00001", a) != mask_id("C00001", b)
    assert mask_id("C00001", a).startswith("C0")
    unkeyed = hashlib.sha256(b"C00001").hexdigest()[:8]
    assert unkeyed not in mask_id("C00001", a)
    assert pseudonym("C00001", a) == pseudonym("C00001", a) != pseudonym("C00001", b)
    assert pseudonym(None, a) is None and mask_id("", a) is None


def test_privacy_key_sources(tmp_path: Path):
    explicit = Settings(_env_file=None, data_dir=tmp_path, privacy_secret="p" * 40)
    assert privacy_key(explicit) == b"p" * 40
    shared = Settings(_env_file=None, data_dir=tmp_path, customer_token_secret="s" * 40)
    assert privacy_key(shared) == privacy_key(Settings(_env_file=None, data_dir=tmp_path / "x",
                                                      customer_token_secret="s" * 40))
    assert privacy_key(shared) != b"s" * 40  # derived, not the token secret itself
    local = Settings(_env_file=None, data_dir=tmp_path / "local")
    first = privacy_key(local)
    key_file = tmp_path / "local" / "privacy.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(first) == 32
    assert privacy_key(local) == first  # kept across restarts
