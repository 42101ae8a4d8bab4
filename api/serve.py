"""Run the API under gunicorn (`./kgqa up` calls `serve`).

gunicorn runs with gunicorn.conf.py (workers, threads, timeouts, preload off so each worker builds
its own clients, JSON logs, multi-process metrics). Settings reach the workers through the
environment, the same way they reach any process here. In development mode a missing
`DEV_API_KEY` and `CUSTOMER_TOKEN_SECRET` are generated for this run and printed (the key only).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from common.settings import REPO_ROOT, Settings


def pid_file(settings: Settings) -> Path:
    """Where the gunicorn master of this DATA_DIR's instance writes its pid (`./kgqa down` reads it)."""
    return Path(settings.data_dir) / "gunicorn.pid"


def gunicorn_command(host: str, port: int, workers: int | None = None, *, pid: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(REPO_ROOT / "gunicorn.conf.py"), "--bind", f"{host}:{port}"]
    if pid is not None:
        cmd += ["--pid", str(pid)]
    if workers:
        cmd += ["--workers", str(workers)]
    cmd.append("api.wsgi:app")
    return cmd


def _env_for(settings: Settings, dev: bool) -> tuple[dict[str, str], str | None]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["GRAPH_URL"] = settings.graph_url
    env["GRAPH_NAME"] = settings.graph_name
    env["DATA_DIR"] = str(settings.data_dir)
    key = settings.dev_api_key.get_secret_value() if settings.dev_api_key else None
    if dev:
        env["API_DEV_MODE"] = "true"
        if not key:
            key = "dev-" + secrets.token_urlsafe(24)
        env["DEV_API_KEY"] = key
        if settings.dev_chat_key is None:  # the chat page's key: the chat role only
            env["DEV_CHAT_KEY"] = "devchat-" + secrets.token_urlsafe(24)
        if settings.customer_token_secret is None:
            env["CUSTOMER_TOKEN_SECRET"] = secrets.token_urlsafe(48)
    return env, key


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, workers: int | None = None, *,
          dev: bool | None = None, wait: bool = True) -> subprocess.Popen | int:
    """Start gunicorn serving the API; print the URL, the docs URL and the development key.

    `dev` (default: API_DEV_MODE) turns on the chat page's sample sign-in and generates a
    development key for this run when DEV_API_KEY is not set. With `wait` (the default) this
    blocks until gunicorn exits and returns its exit code; otherwise it returns the process.
    """
    dev = settings.api_dev_mode if dev is None else dev
    env, key = _env_for(settings, dev)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    cmd = gunicorn_command(host, port, workers or settings.api_workers, pid=pid_file(settings))
    shown = "localhost" if host in ("0.0.0.0", "::", "127.0.0.1") else host
    base = f"http://{shown}:{port}"
    print(f"API:       {base}/api/v1/   (chat page: {base}/)", flush=True)
    print(f"Docs:      {base}/api/v1/docs   (OpenAPI: {base}/api/v1/openapi.json)", flush=True)
    if key:
        print(f"Dev key:   {key}   (Authorization: Bearer <key>; every role)", flush=True)
    else:
        print("Keys:      ./kgqa keys create --name me --role chat", flush=True)
    proc = subprocess.Popen(cmd, env=env, cwd=str(Path(REPO_ROOT)))
    if not wait:
        return proc
    # SIGTERM and SIGINT to this process stop gunicorn too (gracefully: it finishes the requests in
    # flight), so nothing is left holding the port.
    def stop(signum: int, _frame: object) -> None:
        raise _Stop(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return proc.wait()
    except (KeyboardInterrupt, _Stop):
        return stop_process(proc)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Stop(Exception):
    pass


def stop_process(proc: subprocess.Popen, timeout: float = 40.0) -> int:
    """SIGTERM (gunicorn's graceful stop), then SIGKILL after `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def stop_gunicorn(settings: Settings, timeout: float = 40.0) -> bool:
    """Stop the gunicorn of this DATA_DIR's instance (from its pid file); False when none runs."""
    path = pid_file(settings)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return True
