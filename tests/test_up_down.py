"""`./kgqa up` stops what it started on SIGTERM and SIGINT, and `./kgqa down` stops the instance of
a DATA_DIR from elsewhere: no gunicorn left holding the port, no graph server left running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from common.settings import REPO_ROOT
from kg.backends.embedded import EmbeddedFalkorDB, free_port
from kg.backends.state_server import EmbeddedRedis, state_dir

pytestmark = pytest.mark.slow


def _env(data: Path) -> dict[str, str]:
    return {**os.environ, "DATA_DIR": str(data), "GRAPH_NAME": "updown", "GRAPH_URL": "falkordb://embedded",
            "API_WORKERS": "1", "API_PRELOAD_ENGINE": "false", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}


def _start(data: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "kgqa_cli", "up", "--empty", "--port", str(port)],
                            cwd=REPO_ROOT, env=_env(data), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, "./kgqa up exited early"
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("the API did not come up")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_up_stops_everything_it_started(tmp_path: Path, sig: int):
    data, port = tmp_path / "data", free_port()
    proc = _start(data, port)
    gunicorn_pid = int((data / "gunicorn.pid").read_text())
    graph = EmbeddedFalkorDB(data).current()
    state = EmbeddedRedis(state_dir(data)).current()
    assert graph is not None and state is not None and _pid_alive(gunicorn_pid)
    proc.send_signal(sig)
    assert proc.wait(timeout=60) is not None
    assert not _pid_alive(gunicorn_pid) and _port_free(port)
    assert EmbeddedFalkorDB(data).current() is None and not _pid_alive(graph.pid)
    assert EmbeddedRedis(state_dir(data)).current() is None and not _pid_alive(state.pid)


def test_down_stops_the_instance_of_a_data_dir(tmp_path: Path):
    data, port = tmp_path / "data", free_port()
    proc = _start(data, port)
    gunicorn_pid = int((data / "gunicorn.pid").read_text())
    down = subprocess.run([sys.executable, "-m", "kgqa_cli", "down"], cwd=REPO_ROOT, env=_env(data),
                          capture_output=True, text=True, timeout=90)
    assert down.returncode == 0, down.stderr
    assert "API stopped" in down.stdout and "graph stopped" in down.stdout and "state store stopped" in down.stdout
    assert proc.wait(timeout=60) is not None  # `up` ends when its gunicorn does
    assert not _pid_alive(gunicorn_pid) and _port_free(port)
    assert EmbeddedFalkorDB(data).current() is None and EmbeddedRedis(state_dir(data)).current() is None
