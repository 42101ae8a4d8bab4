"""gunicorn settings for the API (`gunicorn -c gunicorn.conf.py api.wsgi:app`).

Preload is off: each worker imports the app itself and so builds its own graph client, Redis
connections and models (none of them survive a fork safely). Workers are threads-per-process
(gthread), so a streaming reply does not block the worker. Numbers come from the same settings
as everything else (API_WORKERS, API_THREADS, API_TIMEOUT_S)."""

import os
import shutil
import tempfile

from api.logs import logconfig_dict as _logconfig
from common.settings import Settings

_settings = Settings()

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = _settings.api_workers
worker_class = "gthread"
threads = _settings.api_threads
timeout = _settings.api_timeout_s
graceful_timeout = 30
keepalive = 5
preload_app = False
max_requests = 0
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 16384
logconfig_dict = _logconfig(os.environ.get("LOG_LEVEL", "INFO").upper())
accesslog = None
# gunicorn's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl), which two
# instances on one machine would share; the product never uses gunicornc, so there is none.
control_socket_disable = True

# Prometheus: one directory of per-worker sample files, merged by /metrics.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kgqa-metrics-")


def on_starting(server):
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):  # samples of a previous run would be counted again
        full = os.path.join(path, name)
        if os.path.isfile(full):
            os.unlink(full)


def post_worker_init(worker):
    # Build the dialogue engine (models) now, in the background, so the first shopper does not wait
    # and /readyz turns green when it is done.
    services = worker.wsgi.extensions.get("kgqa") if hasattr(worker, "wsgi") else None
    if services is not None and services.settings.api_preload_engine:
        services.warm_async()


def worker_exit(server, worker):
    # Stop the language model's batching thread and close connections before the worker exits.
    services = worker.wsgi.extensions.get("kgqa") if hasattr(worker, "wsgi") else None
    if services is not None:
        services.close()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if path.startswith(tempfile.gettempdir()) and "kgqa-metrics-" in path:
        shutil.rmtree(path, ignore_errors=True)
