"""Run the API under gunicorn (`./kgqa up` calls `serve`).

gunicorn runs with gunicorn.conf.py (workers, threads, timeouts, preload off so each worker builds
its own clients, JSON logs, multi-process metrics). Settings reach the workers through the
environment, the same way they reach any process here. In development mode a missing
`DEV_API_KEY` and `CUSTOMER_TOKEN_SECRET` are generated for this run and printed (the key only).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from common.settings import REPO_ROOT, Settings


def gunicorn_command(host: str, port: int, workers: int | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(REPO_ROOT / "gunicorn.conf.py"), "--bind", f"{host}:{port}"]
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
    cmd = gunicorn_command(host, port, workers or settings.api_workers)
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
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()
