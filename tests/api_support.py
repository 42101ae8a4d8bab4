"""Shared pieces of the API tests: apps on the session's real embedded FalkorDB (a fresh graph per
app), the sample store loaded through the real importer, API keys and customer tokens.

Chat tests need the trained understanding model: they carry `needs_engine` and run once
`NLU_MODEL_DIR` (default nlu/artifacts) holds one. Nothing here fakes the engine, the graph or
the models.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest

from api.app import create_app
from api.services import Services
from common import bootstrap
from common.settings import Settings
from kg.backends.falkordb import FalkorDBStore
from kg.schema import ensure_schema

DEV_KEY = "dev-test-key-0123456789abcdef"
DEV_CHAT_KEY = "dev-chat-test-key-0123456789abcdef"  # the chat page's key: chat role only
SECRET = "customer-token-secret-for-tests-0123456789"  # 42 bytes


def engine_available() -> bool:
    return (Settings(_env_file=None).nlu_model_dir / "nlu_config.json").exists()


needs_engine = pytest.mark.skipif(
    not engine_available(),
    reason="needs the trained understanding model (run `./kgqa nlu train`, or set NLU_MODEL_DIR)")


def api_settings(server_dir: Path, **over: Any) -> Settings:
    base: dict[str, Any] = dict(
        _env_file=None, graph_url="falkordb://embedded", data_dir=server_dir,
        graph_name=f"api_{uuid.uuid4().hex[:10]}", falkordb_appendfsync="always",
        dev_api_key=DEV_KEY, dev_chat_key=DEV_CHAT_KEY, customer_token_secret=SECRET, llm_backend="none",
        api_dev_mode=True, api_rate_limit_per_minute=0, api_rate_limit_shopper_per_minute=0, api_preload_engine=False,
    )
    base.update(over)
    return Settings(**base)


def token(customer_id: str, *, secret: str = SECRET, exp_in: int | None = 600, alg: str = "HS256", **claims: Any) -> str:
    payload: dict[str, Any] = {"sub": customer_id, "iat": int(time.time())}
    if exp_in is not None:
        payload["exp"] = int(time.time()) + exp_in
    payload.update(claims)
    with warnings.catch_warnings():  # short or HS512 keys are what some tests are about
        warnings.simplefilter("ignore")
        return jwt.encode(payload, secret, algorithm=alg)


@dataclass
class Api:
    settings: Settings
    store: FalkorDBStore
    services: Services
    app: Any
    client: Any
    keys: dict[str, str] = field(default_factory=dict)

    def h(self, key: str | None = DEV_KEY, *, customer: str | None = None, tok: str | None = None,
          **extra: str) -> dict[str, str]:
        out: dict[str, str] = {}
        if key is not None:
            out["Authorization"] = f"Bearer {key}"
        if customer is not None:
            out["X-Customer-Token"] = token(customer)
        if tok is not None:
            out["X-Customer-Token"] = tok
        out.update(extra)
        return out

    def key(self, *roles: str) -> str:
        """A real key with these roles, created through the key store (as the CLI does)."""
        name = "+".join(roles)
        if name not in self.keys:
            self.keys[name], _ = self.services.keys.create(f"test {name}", roles)
        return self.keys[name]


def build_api(server_dir: Path, *, engine: bool = False, **over: Any) -> Api:
    settings = api_settings(server_dir, **over)
    store = FalkorDBStore.from_settings(settings)
    ensure_schema(store)
    services = Services(bootstrap.build(settings, store=store))
    app = create_app(settings, services=services)
    api = Api(settings, store, services, app, app.test_client())
    if engine:
        services.engine()
    return api


def drop_api(api: Api) -> None:
    try:
        api.store.redis.execute_command("GRAPH.DELETE", api.settings.graph_name)
    except Exception:  # noqa: BLE001 - the graph may never have been written
        pass
    try:
        r = api.services.redis()  # the state store (a server of its own beside the embedded graph)
        for k in r.scan_iter(match=f"kgqa:{api.settings.graph_name}:*", count=1000):
            r.delete(k)
    except Exception:  # noqa: BLE001 - the state server may never have started
        pass
    api.services.close()


def sample_dir(tmp_path_factory: Any) -> Path:
    from import_scripts.sample_store import generate

    d = tmp_path_factory.mktemp("sample_store")
    generate(d, products=60, customers=12, orders=80, today=dt.date.today())
    return d


def load_sample(api: Api, directory: Path) -> None:
    from kg.loader import import_path

    report = import_path(api.store, directory, settings=api.settings, progress=False)
    assert report.ok, list(report.errors)[:3]


def owned_session(api: Api, customer_id: str | None, caller: str = "dev", turns: int = 1) -> str:
    """A real saved session (qa/state.py) owned by a customer, or by an anonymous API key."""
    from qa.state import SessionStore, TurnRecord

    store = SessionStore(api.services.redis, ttl_s=api.settings.session_ttl_s, graph_name=api.settings.graph_name)
    state = store.new(customer_id, caller)
    for i in range(turns):
        state.turns.append(TurnRecord(role="user", text=f"where is order 1000{i}?", intent="track_order"))
        state.turns.append(TurnRecord(role="assistant", text=f"Order 1000{i} is on its way.", status="ok"))
    store.save(state)
    return state.session_id


def wait_job(api: Api, job_id: str, headers: dict[str, str], timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = api.client.get(f"/api/v1/catalog/import/{job_id}", headers=headers)
        assert r.status_code == 200, r.get_json()
        if r.get_json()["status"] in ("done", "failed"):
            return r.get_json()
        time.sleep(0.1)
    raise AssertionError("the import job did not finish")


def error_shape(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:500])
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert set(body) == {"error"}
    err = body["error"]
    assert {"code", "message", "details"} <= set(err)
    assert isinstance(err["details"], dict), err  # one shape: always an object
    assert isinstance(err["message"], str) and err["message"]
    text = resp.get_data(as_text=True)
    assert "Traceback" not in text and 'File "' not in text
    if code is not None:
        assert err["code"] == code, err
    return err


@pytest.fixture
def api(falkordb_server) -> Iterator[Api]:
    a = build_api(falkordb_server.data_dir)
    yield a
    drop_api(a)


@pytest.fixture(scope="session")
def sample_store_dir(tmp_path_factory) -> Path:
    return sample_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def shop_api(falkordb_server, sample_store_dir) -> Iterator[Api]:
    """One app per test module on a graph holding the sample store (read-mostly tests)."""
    a = build_api(falkordb_server.data_dir)
    load_sample(a, sample_store_dir)
    yield a
    drop_api(a)


# -- gunicorn ----------------------------------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a gunicorn worker these settings."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPH_", "API_", "DEV_API", "DEV_CHAT", "CUSTOMER_TOKEN"))}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    env["LOG_LEVEL"] = "WARNING"
    return env


class Gunicorn:
    """gunicorn serving the API with gunicorn.conf.py on a free local port."""

    def __init__(self, settings: Settings, workers: int = 2, log_path: Path | None = None) -> None:
        import subprocess

        from api.serve import gunicorn_command
        from common.settings import REPO_ROOT

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = settings_env(settings)
        env["API_WORKERS"] = str(workers)
        self._log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(gunicorn_command("127.0.0.1", self.port, workers), env=env, cwd=str(REPO_ROOT),
                                     stdout=self._log, stderr=self._log, start_new_session=True)

    def wait_up(self, timeout: float = 90.0) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited with {self.proc.returncode}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError("gunicorn did not start")

    def stop(self) -> None:
        import os
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except Exception:  # noqa: BLE001
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if hasattr(self._log, "close"):
            self._log.close()
