"""The settings a newcomer can see without reading code: `.env.example` names every field of the one
typed settings object, and nothing that is not one."""

from __future__ import annotations

import re

from common.settings import REPO_ROOT, Settings


def test_env_example_lists_every_setting():
    text = (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"^# ([A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert named == {name.upper() for name in Settings.model_fields}


def test_the_licence_is_in_the_repo():
    assert "Apache License" in (REPO_ROOT / "LICENSE").read_text(encoding="utf-8")
