"""Import jobs: the upload is spooled to a private temporary directory, the import runs on a
thread of the worker that received it, and the job's record lives in Redis (`<prefix>import:<id>`)
so every worker can answer `GET /catalog/import/<job>`.

Progress is the share of the uploaded bytes the importer has read (strict mode reads each file
twice: once to check, once to write). A running job refreshes a heartbeat; a record whose
heartbeat stopped (the worker died) is reported as failed rather than running forever. One import
runs at a time per graph (a Redis lock with a TTL that the heartbeat renews): a second gets 409.
The job records the key that started it, and every write it makes goes to the audit log with the
key, the job, the file and the line (kg/audit.py).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from api.errors import Conflict

log = logging.getLogger("kgqa.api")

HEARTBEAT_S = 2.0
STALE_S = 30.0
LOCK_TTL_S = 30


def _iso(ts: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts if ts is not None else time.time()))


class _Counting:
    """A seekable binary file that reports how many bytes were read through it."""

    def __init__(self, inner: Any, on_read: Any) -> None:
        self._inner = inner
        self._on_read = on_read

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n)
        self._on_read(len(data))
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, *args: Any) -> int:
        return self._inner.seek(*args)

    def tell(self) -> int:
        return self._inner.tell()


class ImportJobs:
    def __init__(self, services: Any) -> None:
        self.services = services
        self.prefix = services.prefix + "import:"
        self.lock_key = services.prefix + "import-lock"

    # -- records -----------------------------------------------------------------------------------
    def _key(self, job_id: str) -> str:
        return self.prefix + job_id

    def _save(self, job: dict[str, Any]) -> None:
        ttl = self.services.settings.api_import_job_ttl_s
        payload = json.dumps(job)
        self.services.redis_call(lambda r: r.set(self._key(job["job_id"]), payload, ex=ttl))

    def get(self, job_id: str) -> dict[str, Any] | None:
        raw = self.services.redis_call(lambda r: r.get(self._key(job_id)))
        if not raw:
            return None
        job = json.loads(raw)
        if job["status"] in ("queued", "running") and time.time() - job.get("heartbeat", 0) > STALE_S:
            job["status"] = "failed"
            job["error"] = {"code": "worker_lost", "message": "the worker running this import stopped",
                            "details": {}}
        job.pop("heartbeat", None)
        return job

    # -- start ----------------------------------------------------------------------------------------
    def start(self, uploads: list[tuple[str, Any]], *, strict: bool, dry_run: bool, create_missing: bool = False,
              types: dict[str, str] | None = None, key_id: str | None = None) -> dict[str, Any]:
        """Spool the uploads, take the lock, record the job (with the key that started it) and start
        its thread."""
        job_id = secrets.token_urlsafe(12)
        token = secrets.token_hex(8)
        if not dry_run:
            got = self.services.redis_call(lambda r: r.set(self.lock_key, f"{job_id}:{token}", nx=True, ex=LOCK_TTL_S))
            if not got:
                holder = (self.services.redis_call(lambda r: r.get(self.lock_key)) or "").split(":")[0]
                raise Conflict("another import is running for this graph", details={"job_id": holder or None})
        tmp = Path(tempfile.mkdtemp(prefix="kgqa-import-"))
        try:
            files: list[tuple[str, Path]] = []
            for i, (name, storage) in enumerate(uploads):
                path = tmp / f"{i:03d}"
                storage.save(str(path))
                files.append((name, path))
            now = time.time()
            job = {"job_id": job_id, "status": "queued", "key_id": key_id, "strict": strict, "dry_run": dry_run,
                   "create_missing": create_missing, "types": dict(types or {}), "files": [n for n, _ in files], "created_at": _iso(now), "updated_at": _iso(now),
                   "heartbeat": now, "progress": {"rows": 0, "files_done": 0,
                                                  "files_total": len(files), "bytes_read": 0,
                                                  "bytes_total": sum(p.stat().st_size for _, p in files),
                                                  "percent": 0.0},
                   "report": None, "error": None}
            self._save(job)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if not dry_run:
                self._unlock(token)
            raise
        t = threading.Thread(target=self._run, args=(job, files, tmp, token), name=f"import-{job_id}", daemon=True)
        t.start()
        out = dict(job)
        out.pop("heartbeat", None)
        return out

    def _unlock(self, token: str) -> None:
        script = "if redis.call('GET', KEYS[1]) and string.find(redis.call('GET', KEYS[1]), ARGV[1], 1, true) " \
                 "then return redis.call('DEL', KEYS[1]) else return 0 end"
        with contextlib.suppress(Exception):
            self.services.redis_call(lambda r: r.eval(script, 1, self.lock_key, ":" + token))

    # -- run ------------------------------------------------------------------------------------------
    def _run(self, job: dict[str, Any], files: list[tuple[str, Path]], tmp: Path, token: str) -> None:
        services = self.services
        passes = 2 if job["strict"] and not job["dry_run"] else 1
        total = max(1, job["progress"]["bytes_total"] * passes)
        read = [0]
        stop = threading.Event()
        lock = threading.Lock()

        def beat() -> None:
            while not stop.wait(HEARTBEAT_S):
                with lock:
                    job["heartbeat"] = time.time()
                    job["updated_at"] = _iso()
                    job["progress"]["bytes_read"] = read[0]
                    job["progress"]["percent"] = round(min(99.0, 100.0 * read[0] / total), 1)
                    snapshot = copy.deepcopy(job)
                try:
                    self._save(snapshot)
                    if not job["dry_run"]:
                        services.redis_call(lambda r: r.expire(self.lock_key, LOCK_TTL_S))
                except Exception:  # noqa: BLE001 - a missed heartbeat is not the import's failure
                    log.warning("import heartbeat failed", extra={"job": job["job_id"]})

        def on_read(n: int) -> None:
            read[0] += n

        handles: list[Any] = []
        beater = threading.Thread(target=beat, daemon=True)
        try:
            with lock:
                job["status"] = "running"
                job["heartbeat"] = time.time()
            self._save(job)
            beater.start()
            streams: dict[str, Any] = {}
            for name, path in files:
                fh = open(path, "rb")  # noqa: SIM115 - closed in finally
                handles.append(fh)
                streams[name] = _Counting(fh, on_read)
            audit = services.audit.sink(key_id=job.get("key_id") or "unknown", job_id=job["job_id"])
            report = services.catalog.import_files(streams, strict=job["strict"], dry_run=job["dry_run"],
                                                   create_missing=job.get("create_missing", False),
                                                   types=job.get("types") or {}, progress=False, audit=audit)
            with lock:
                job["status"] = "done"
                job["report"] = report.model_dump(mode="json")
                job["progress"].update(bytes_read=read[0], percent=100.0, files_done=len(files),
                                       rows=sum(f.rows for f in report.files))
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
            from api.errors import _family_status, public_details
            from common.errors import KGQAError

            if isinstance(exc, KGQAError):
                status, code, public = _family_status(exc)
                message = public or exc.message if status < 500 else (public or "internal error")
                details = public_details(exc.details) if status < 500 else {}
            else:
                code, message, details = "internal_error", "internal error", {}
                log.error("import job failed", extra={"job": job["job_id"]}, exc_info=True)
            with lock:
                job["status"] = "failed"
                job["error"] = {"code": code, "message": message, "details": details}
        finally:
            stop.set()
            if beater.is_alive():  # a heartbeat in flight must not overwrite the final record
                beater.join()
            for fh in handles:
                with contextlib.suppress(Exception):
                    fh.close()
            shutil.rmtree(tmp, ignore_errors=True)
            job["updated_at"] = _iso()
            job["heartbeat"] = time.time()
            services.metrics.imports.labels(job["status"]).inc()
            for attempt in range(10):  # the final record must land even across a short outage
                try:
                    self._save(job)
                    break
                except Exception:  # noqa: BLE001
                    time.sleep(min(0.2 * (attempt + 1), 2.0))
            if not job["dry_run"]:
                self._unlock(token)
