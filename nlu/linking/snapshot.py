"""The linking index kept on disk between starts (DATA_DIR/linking/<graph>.index): a worker that
finds one loads it instead of reading and indexing every product, and catches up with what
changed since from the graph (the index's own fingerprint comparison, `EntityLinker._reconcile`).

Why: building the index reads the whole catalog and makes every model line (about 0.28 s per
thousand products on this machine, 286 s at a million), and the objects the build makes and drops
stay in the worker's heap as fragments (420 MB resident at 100,000 products where the loaded
index takes 180-220). Loading is about a second per 100,000 products, and every worker or restart
after the first (or after `kgqa up`, which builds it) loads instead of building; workers starting
together take turns (`first_start`), so the first builds and the others load.

The file is `MAGIC`, the layout (a hash of the code that shapes the index and of the Python
version: marshal and pickle formats), then a pickle of `Snapshot`. A snapshot of other code, a
damaged or unreadable file is ignored (and replaced by the next build); it is written to a
temporary name and renamed, so a reader sees a whole file or none. Pickle runs code when loaded:
the directory must be as private as the graph's own data directory, which is where it lives.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import pickle
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlu import attributes
from nlu.linking import index, text

log = logging.getLogger(__name__)

MAGIC = b"kgqa-linking-index\n"


def _layout() -> bytes:
    h = hashlib.sha256(f"{sys.version_info[0]}.{sys.version_info[1]}".encode())
    for module in (index, text, attributes):
        h.update(Path(module.__file__ or "").read_bytes())
    return h.hexdigest().encode()


LAYOUT = _layout()


@dataclass(frozen=True)
class Snapshot:
    version: Any  # the catalog version it reflects
    stamp: str | None  # the catalog's last-change stamp then (tells a graph made again from the same version)
    watermark: str | None  # the newest product stamp it holds
    lines: index.LineIndex


def load(path: Path) -> Snapshot | None:
    """The snapshot at `path`, or None (none, another layout, unreadable: logged)."""
    try:
        with path.open("rb") as fh:
            if fh.readline() != MAGIC or fh.readline().rstrip(b"\n") != LAYOUT:
                log.info("linking index snapshot of another version ignored", extra={"path": str(path)})
                return None
            snap = pickle.load(fh)
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - a damaged file is rebuilt, never served
        log.warning("linking index snapshot unreadable, rebuilding", extra={"path": str(path), "error": repr(exc)})
        return None
    if not isinstance(snap, Snapshot):
        log.warning("linking index snapshot of another kind ignored", extra={"path": str(path)})
        return None
    return snap


@contextlib.contextmanager
def first_start(path: Path) -> Iterator[None]:
    """Held while a worker without an index loads or builds it: the workers of a host starting
    together build it once (the first), and the others wait and load it. Without a lock file (a
    directory that cannot be written), each goes on alone."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fh = os.fdopen(os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600), "r+b")
    except OSError:
        yield
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def save(path: Path, snap: Snapshot) -> bool:
    """Write `snap` to `path` (atomically); False when it could not be written (logged)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # private, like the data directory
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
            fh.write(MAGIC + LAYOUT + b"\n")
            pickle.dump(snap, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        return True
    except OSError as exc:
        log.warning("linking index snapshot not written", extra={"path": str(path), "error": repr(exc)})
        tmp.unlink(missing_ok=True)
        return False
