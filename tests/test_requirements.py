"""The lock files stay in step with the requirement files: every requirement is locked at one exact
version with hashes, the dev lock holds the runtime lock's versions, torch is the local CPU build,
and the setup stamps cover the locks. (Re-lock with scripts/lock.sh after editing a requirement.)"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            m = _NAME.match(line)
            assert m, line
            names.add(_norm(m.group(1)))
    return names


def _lock(path: Path) -> dict[str, str]:
    """name -> version; every entry must carry at least one sha256 hash."""
    pins: dict[str, str] = {}
    text = path.read_text()
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", block)
        if not m:
            continue
        assert "--hash=sha256:" in block, f"{path.name}: {m.group(1)} has no hash"
        pins[_norm(m.group(1))] = m.group(2)
    return pins


def test_every_requirement_is_locked_with_hashes():
    runtime, dev = _lock(ROOT / "requirements.lock"), _lock(ROOT / "requirements-dev.lock")
    assert _requirements(ROOT / "requirements.txt") <= set(runtime)
    assert _requirements(ROOT / "requirements-dev.txt") <= set(dev)
    assert {k: dev.get(k) for k in runtime} == runtime  # the same versions in both environments
    for dev_only in ("pytest", "schemathesis", "mypy", "ruff", "playwright"):
        assert dev_only in dev and dev_only not in runtime


def test_torch_is_the_local_cpu_build():
    assert "torch==2.13.0\n" in (ROOT / "requirements.txt").read_text()
    runtime = _lock(ROOT / "requirements.lock")
    assert runtime["torch"] == "2.13.0+cpu"
    assert not [name for name in runtime if name.startswith("nvidia-")]


def test_setup_installs_from_the_locks_and_stamps_them():
    setup = (ROOT / "scripts" / "setup-env.sh").read_text()
    assert "--require-hashes" in setup
    assert "locks=(requirements.lock)" in setup and "locks=(requirements.lock requirements-dev.lock)" in setup
    assert 'cat "${locks[@]}" requirements-nodeps.txt | sha256sum' in setup
    launcher = (ROOT / "kgqa").read_text()
    assert "setup-env.sh dev" in launcher and "ruff\" check" in launcher and "-m mypy" in launcher
