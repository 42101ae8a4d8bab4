"""API benchmark: simulated shoppers holding multi-turn conversations against gunicorn.

    .venv/bin/python bench/bench_api.py [--levels 1,8,32] [--seconds 20] [--workers 2] [--rate 0]
    .venv/bin/python bench/bench_api.py --levels 8 --seconds 600 --max-turns 0   # the 10-minute soak

Starts everything locally and privately: an embedded FalkorDB in a temporary directory, the sample
store (small) loaded through the importer, and gunicorn with gunicorn.conf.py on a free loopback
port with the template verbalizer (LLM_BACKEND=none). Then, per concurrency level, that many
shoppers (threads, each with its own keep-alive connection) run conversations: greeting, a price
question, follow-ups that lean on the conversation ("is it in stock?", "what about the warranty?"),
and for signed-in shoppers an order question. Each level is bounded in time and in requests.

Two load models:
- closed loop (`--rate 0`, the default): every shopper sends its next message the moment the
  reply arrives. This finds the saturation throughput; latency is then concurrency / throughput
  (Little's law), i.e. mostly queueing.
- paced (`--rate R`): the shoppers together send R messages per second on average: each follows
  its own Poisson schedule (mean gap shoppers / R seconds) and, when a slow reply made it miss a
  slot, sends as soon as the reply is in. Real shoppers
  read and type between turns, so this is the latency a shopper sees at a given load.

Baseline in the same run: `GET /healthz` (auth-free, no model, no graph) from the same number of
closed-loop clients for a few seconds per level: the floor of this HTTP stack and load generator.

Prints, per level: turns, throughput (turns/s), latency p50/p95/p99, errors by status, and the
resident memory of the gunicorn processes sampled every second (start, peak, end). Figures only:
nothing here asserts a target.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))



def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


def _rss_mb(pid: int) -> float:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if "redis-server" not in p.name()) / 2**20
    except psutil.Error:
        return float("nan")


def _cpu_seconds(pid: int) -> dict[str, float]:
    """CPU time used so far by the API processes, the graph server and this load generator."""
    import psutil

    out = {"api": 0.0, "graph": 0.0, "client": 0.0}
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        procs = []
    graph = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "redis-server"]
    for key, group in (("api", [p for p in procs if p.name() != "redis-server"]), ("graph", graph),
                       ("client", [psutil.Process()])):
        for p in group:
            try:
                t = p.cpu_times()
                out[key] += t.user + t.system
            except psutil.Error:
                pass
    return out


def _conversations(products: list[dict], orders: dict[str, list[str]]) -> list[tuple[str | None, list[str]]]:
    """(customer or None, messages) scripts; products and orders come from the loaded store."""
    scripts = []
    for p in products:
        name = p["name"].split(",")[0]
        scripts.append((None, ["hello", f"how much is the {name}?", "is it in stock?",
                               "what about the warranty?", "thanks, bye"]))
        scripts.append((None, [f"tell me about the {name}", "can I return it?", "what delivery options are there?"]))
    for customer, ids in orders.items():
        scripts.append((customer, ["hi", f"where is my order {ids[0]}?", "what is in it?", "thanks"]))
    return scripts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="1,8,32", help="Concurrent shoppers per run, comma-separated.")
    ap.add_argument("--seconds", type=float, default=20.0, help="Duration of each level.")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers.")
    ap.add_argument("--threads", type=int, default=4, help="Threads per worker.")
    ap.add_argument("--products", type=int, default=200, help="Sample store size.")
    ap.add_argument("--ready-timeout", type=float, default=600.0, help="Seconds to wait for the models to load.")
    ap.add_argument("--max-turns", type=int, default=20_000,
                    help="Stop a level after this many turns (0: no cap; the soak runs uncapped).")
    ap.add_argument("--rate", type=float, default=0.0,
                    help="Paced load: messages per second from all shoppers together; 0: closed loop.")
    ap.add_argument("--baseline-seconds", type=float, default=5.0, help="GET /healthz baseline per level; 0: skip.")
    ap.add_argument("--json-out", type=Path, default=None, help="Also write the figures as JSON.")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x.strip()]

    with serve_sample(products=args.products, workers=args.workers, threads=args.threads,
                      ready_timeout=args.ready_timeout) as stack:
        results = []
        for level in levels:
            if args.baseline_seconds > 0:
                base = _run_level(stack.url, stack.key, stack.secret, stack.token, None, level, args.baseline_seconds,
                                  stack.pid, 0.0, args.max_turns)
            before = stack.commandstats()
            results.append(_run_level(stack.url, stack.key, stack.secret, stack.token, stack.scripts, level,
                                      args.seconds, stack.pid, args.rate, args.max_turns))
            results[-1]["commands_per_turn"] = _per_turn(before, stack.commandstats(), results[-1]["ok"])
            if args.baseline_seconds > 0:
                results[-1]["baseline_healthz"] = {k: base[k] for k in ("throughput_per_s", "p50_ms", "p99_ms")}
        _print(results)
        if args.json_out:
            args.json_out.write_text(json.dumps(results, indent=2))


@dataclass
class Stack:
    """A private instance serving the sample store: where it answers and how to call it."""

    url: str
    key: str
    secret: str
    pid: int
    scripts: list
    token: Any
    tmp: Path
    commandstats: Any = None  # () -> {server: {command: calls}}: the graph server's and the state server's


def _per_turn(before: dict, after: dict, turns: int) -> dict[str, dict[str, float]]:
    """Commands per answered turn on each server between two `commandstats` readings (the readings'
    own INFO calls included, a rounding error over a level's turns)."""
    out: dict[str, dict[str, float]] = {}
    for server, calls in after.items():
        diff = {cmd: (n - before[server].get(cmd, 0)) / max(1, turns) for cmd, n in calls.items()}
        out[server] = {cmd: round(v, 2) for cmd, v in sorted(diff.items(), key=lambda kv: -kv[1]) if v >= 0.01}
    return out


def _commandstats(client: Any) -> dict[str, int]:
    """Calls per command so far on one Redis-protocol server (INFO commandstats)."""
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in client.info("commandstats").items()}


@contextlib.contextmanager
def serve_sample(*, products: int = 200, workers: int = 2, threads: int = 4, ready_timeout: float = 600.0,
                 env: dict[str, str] | None = None, label: str = "api") -> Iterator[Stack]:
    """An embedded FalkorDB (and its state server) in a temporary directory, the sample store loaded
    through the importer, and gunicorn with gunicorn.conf.py on a free loopback port, every worker
    with its models loaded; everything is stopped and removed afterwards. `env` adds settings."""
    import requests

    from api.serve import gunicorn_command
    from common import bootstrap
    from common.settings import REPO_ROOT, Settings
    from import_scripts.sample_store import generate
    from kg.backends.embedded import free_port
    from kg.backends.state_server import stop_embedded
    from tests.api_support import token

    tmp = Path(tempfile.mkdtemp(prefix=f"kgqa-bench-{label}-"))
    secret = "bench-customer-token-secret-0123456789abcdef"
    key = "bench-dev-key-0123456789abcdef"
    env_settings = {
        "GRAPH_URL": "falkordb://embedded", "GRAPH_NAME": "bench", "DATA_DIR": str(tmp / "graph"),
        "DEV_API_KEY": key, "CUSTOMER_TOKEN_SECRET": secret, "LLM_BACKEND": "none",
        "API_RATE_LIMIT_PER_MINUTE": "0", "API_RATE_LIMIT_SHOPPER_PER_MINUTE": "0", "API_PRELOAD_ENGINE": "true",
        "API_WORKERS": str(workers), "API_THREADS": str(threads), "LOG_LEVEL": "WARNING", **(env or {}),
    }
    settings = Settings(_env_file=None, graph_url="falkordb://embedded", graph_name="bench", data_dir=tmp / "graph")
    proc = app = None
    try:
        print(f"[bench] sample store ({products} products) and graph in {tmp}", flush=True)
        generate(tmp / "sample", products=products, customers=50, orders=300, today=dt.date.today())
        app = bootstrap.build(settings)
        app.catalog.import_path(tmp / "sample", progress=False)
        store = app.store
        names = store.run(_q("bench.products", "MATCH (p:Product) RETURN p.name AS name ORDER BY p.sku LIMIT 40"))
        rows = store.run(_q("bench.orders", "MATCH (c:Customer)-[:PLACED]->(o:Order) RETURN c.customer_id AS c, "
                                            "o.order_id AS o ORDER BY o LIMIT 200"))
        orders: dict[str, list[str]] = {}
        for r in rows:
            orders.setdefault(r["c"], []).append(r["o"])
        servers = {"graph": lambda: store.redis, "state": app.redis.client}  # kept open: command counts per level

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = __import__("subprocess").Popen(gunicorn_command("127.0.0.1", port, workers),
                                              env={**os.environ, **env_settings}, cwd=str(REPO_ROOT),
                                              start_new_session=True)
        started = time.monotonic()
        ready: set[str] = set()  # every worker has loaded its models
        while True:
            try:
                r = requests.get(url + "/readyz", timeout=5, headers={"Connection": "close"})
                if r.status_code == 200:
                    ready.add(r.headers.get("X-Instance", ""))
                    if len(ready) >= workers:
                        break
                    continue
                if r.json()["checks"]["models"].get("error"):
                    raise SystemExit("[bench] the models failed to load (is the understanding model trained?)")
            except requests.RequestException:
                pass
            if time.monotonic() - started > ready_timeout:
                raise SystemExit("[bench] gunicorn did not become ready")
            time.sleep(1)
        print(f"[bench] gunicorn ready in {time.monotonic() - started:.1f}s ({workers} workers x "
              f"{threads} threads); RSS {_rss_mb(proc.pid):.0f} MB", flush=True)
        yield Stack(url, key, secret, proc.pid, _conversations(names, orders), token, tmp,
                    lambda: {name: _commandstats(client()) for name, client in servers.items()})
    finally:
        if app is not None:
            app.close()
        if proc is not None and proc.poll() is None:
            import signal

            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        stop_embedded(tmp / "graph")
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _q(name: str, cypher: str):
    from kg.queries import Query

    return Query(name, cypher)


def _run_level(url, key, secret, token, scripts, level, seconds, pid, rate, max_turns) -> dict:
    """One level; `scripts` None runs the GET /healthz baseline instead of conversations."""
    import requests

    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    rss: list[tuple[float, float]] = []
    stop = threading.Event()
    count = [0]

    def sampler() -> None:
        t0 = time.monotonic()
        while not stop.is_set():
            rss.append((round(time.monotonic() - t0, 1), round(_rss_mb(pid), 1)))
            stop.wait(1.0)

    def record(status: str, elapsed: float) -> None:
        with lock:
            count[0] += 1
            statuses[status] += 1
            if status == "200":
                latencies.append(elapsed)

    def prober(_n: int) -> None:
        session = requests.Session()
        while time.monotonic() < deadline:
            t = time.perf_counter()
            try:
                status = str(session.get(url + "/healthz", timeout=60).status_code)
            except requests.RequestException as exc:
                status = type(exc).__name__
            record(status, time.perf_counter() - t)

    def shopper(n: int) -> None:
        rng = random.Random(n)
        session = requests.Session()
        next_send = time.monotonic()
        while time.monotonic() < deadline:
            customer, messages = rng.choice(scripts)
            headers = {"Authorization": f"Bearer {key}"}
            if customer:
                headers["X-Customer-Token"] = token(customer, secret=secret)
            sid = None
            for message in messages:
                if rate > 0:  # paced: wait for this shopper's next send time
                    pause = min(next_send, deadline) - time.monotonic()  # never sleep past the end
                    if pause > 0:
                        time.sleep(pause)
                    # a Poisson schedule per shopper; one that fell behind (slow replies) catches up,
                    # by at most a second's worth of messages
                    next_send = max(next_send, time.monotonic() - 1.0) + rng.expovariate(rate / level)
                if time.monotonic() >= deadline or 0 < max_turns <= count[0]:
                    return
                body = {"message": message, **({"session_id": sid} if sid else {})}
                t = time.perf_counter()
                try:
                    r = session.post(url + "/api/v1/chat", json=body, headers=headers, timeout=60)
                    status = str(r.status_code)
                    if r.status_code == 200:
                        sid = r.json()["session_id"]
                except requests.RequestException as exc:
                    status = type(exc).__name__
                record(status, time.perf_counter() - t)
                if status != "200":
                    break

    sampler_thread = threading.Thread(target=sampler, daemon=True)
    sampler_thread.start()
    cpu0 = _cpu_seconds(pid)
    t0 = time.monotonic()
    threads = [threading.Thread(target=shopper if scripts is not None else prober, args=(i,))
               for i in range(level)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    cpu1 = _cpu_seconds(pid)
    stop.set()
    sampler_thread.join()
    ok = statuses.get("200", 0)
    return {
        "shoppers": level, "rate": rate or None, "seconds": round(wall, 1), "turns": sum(statuses.values()), "ok": ok,
        "throughput_per_s": round(ok / wall, 2) if wall else 0.0,
        "p50_ms": round(_percentile(latencies, 50) * 1000, 1), "p95_ms": round(_percentile(latencies, 95) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 99) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        "errors": {k: v for k, v in statuses.items() if k != "200"},
        "cpu_ms_per_turn": {k: round((cpu1[k] - cpu0[k]) * 1000 / max(1, ok), 2) for k in cpu0},
        "rss_mb": {"start": rss[0][1] if rss else None, "peak": max((r for _, r in rss), default=None),
                   "end": rss[-1][1] if rss else None, "series": rss},
    }


def _print(results: list[dict]) -> None:
    print()
    print(f"{'shoppers':>8} {'load':>10} {'turns':>7} {'turns/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'errors':>8} {'RSS MB start/peak/end':>24}   baseline GET /healthz")
    for r in results:
        errs = ",".join(f"{k}:{v}" for k, v in r["errors"].items()) or "0"
        m = r["rss_mb"]
        load = f"{r['rate']:g}/s" if r["rate"] else "closed"
        b = r.get("baseline_healthz")
        base = f"{b['throughput_per_s']}/s, p50 {b['p50_ms']} ms, p99 {b['p99_ms']} ms" if b else "-"
        print(f"{r['shoppers']:>8} {load:>10} {r['turns']:>7} {r['throughput_per_s']:>8} {r['p50_ms']:>8} "
              f"{r['p95_ms']:>8} {r['p99_ms']:>8} {errs:>8} {m['start']!s:>8}/{m['peak']!s}/{m['end']!s}   {base}")
    print("\nCPU per turn (ms): " + "; ".join(
        f"{r['shoppers']} shoppers: " + ", ".join(f"{k} {v}" for k, v in r["cpu_ms_per_turn"].items())
        for r in results))
    for r in results:
        for server, calls in (r.get("commands_per_turn") or {}).items():
            print(f"{server} server commands per turn at {r['shoppers']} shoppers: "
                  + (", ".join(f"{cmd} {n:g}" for cmd, n in calls.items()) or "none"))
    print()
    for r in results:
        series = " ".join(f"{t:.0f}s:{mb:.0f}" for t, mb in r["rss_mb"]["series"][:: max(1, len(r['rss_mb']['series']) // 10)])
        print(f"RSS over time at {r['shoppers']} shoppers (MB): {series}")


if __name__ == "__main__":
    main()
