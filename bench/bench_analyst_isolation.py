"""Analyst isolation benchmark: chat latency with and without heavy analyst reads running beside it.

    .venv/bin/python bench/bench_analyst_isolation.py [--shoppers 4] [--rate 20] [--seconds 30]
                                                      [--analysts 4] [--caps 1,2] [--compare-uncapped]

Starts a private instance like bench/bench_api.py does (its `serve_sample`: an embedded FalkorDB and
its state server in a temporary directory, the sample store, gunicorn with gunicorn.conf.py, every
worker's models loaded) and measures, with its `_run_level`, paced chat shoppers (multi-turn
conversations, template replies):

1. alone;
2. while `--analysts` threads (4) each send heavy analyst reads back to back, alternating a
   cartesian product that returns rows (`MATCH (a:Product),(b:Product),(c:Product) RETURN a, b, c`,
   which the row cap inside the query ends after 1,001 rows) and one that aggregates
   (`... ,(d:Product) RETURN count(*)`, 1.6 billion combinations at 200 products: it runs until
   ANALYST_TIMEOUT_MS stops it).

`--caps` runs the second phase once per ANALYST_MAX_CONCURRENT value (default: the setting's
default), each on a fresh instance; `--compare-uncapped` adds ANALYST_MAX_CONCURRENT=0 (no cap on
concurrent analyst queries), to show what the cap buys.

Prints chat p50/p95/p99 and errors per phase, and the analysts' outcomes (200 rows, 422 timeout,
429 too many queries running). Figures only: nothing here asserts a target.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import _percentile, _run_level, serve_sample  # noqa: E402

HEAVY = [
    "MATCH (a:Product),(b:Product),(c:Product) RETURN a, b, c",
    "MATCH (a:Product),(b:Product),(c:Product),(d:Product) RETURN count(*) AS n",
]


def _analysts(url: str, key: str, n: int,
              stop: threading.Event) -> tuple[Counter[str], list[float], list[threading.Thread]]:
    """n threads sending heavy analyst reads back to back until `stop`; outcomes and latencies."""
    import requests

    outcomes: Counter[str] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        session = requests.Session()
        k = i
        while not stop.is_set():
            cypher = HEAVY[k % len(HEAVY)]
            k += 1
            t = time.perf_counter()
            try:
                r = session.post(url + "/api/v1/graph/query", headers={"Authorization": f"Bearer {key}"},
                                 json={"cypher": cypher}, timeout=120)
                code = r.json().get("error", {}).get("code") if r.status_code != 200 else "rows"
                outcome = f"{r.status_code} {code}"
            except requests.RequestException as exc:
                outcome = type(exc).__name__
            with lock:
                outcomes[outcome] += 1
                latencies.append(time.perf_counter() - t)
            if outcome.startswith("429"):
                stop.wait(1.0)  # as Retry-After says

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return outcomes, latencies, threads


def _phase(stack, args, analysts: int) -> dict:
    stop = threading.Event()
    outcomes: Counter[str] = Counter()
    latencies: list[float] = []
    threads: list[threading.Thread] = []
    if analysts:
        outcomes, latencies, threads = _analysts(stack.url, stack.key, analysts, stop)
        time.sleep(2.0)  # let them start
    try:
        res = _run_level(stack.url, stack.key, stack.secret, stack.token, stack.scripts, args.shoppers, args.seconds,
                         stack.pid, args.rate, 0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=130)
    res["analysts"] = analysts
    res["analyst_outcomes"] = dict(outcomes)
    res["analyst_p50_ms"] = round(_percentile(latencies, 50) * 1000, 1) if latencies else None
    return res


def _print(rows: list[tuple[str, dict]]) -> None:
    print()
    print(f"{'phase':<50} {'chat turns':>10} {'turns/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'errors':>8}   analyst outcomes")
    for name, r in rows:
        errs = ",".join(f"{k}:{v}" for k, v in r["errors"].items()) or "0"
        outs = ", ".join(f"{k}: {v}" for k, v in sorted(r["analyst_outcomes"].items())) or "-"
        print(f"{name:<50} {r['turns']:>10} {r['throughput_per_s']:>8} {r['p50_ms']:>8} {r['p95_ms']:>8} "
              f"{r['p99_ms']:>8} {errs:>8}   {outs}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shoppers", type=int, default=4, help="Concurrent chat shoppers.")
    ap.add_argument("--rate", type=float, default=20.0, help="Chat messages per second, all shoppers together.")
    ap.add_argument("--seconds", type=float, default=30.0, help="Duration of each phase.")
    ap.add_argument("--analysts", type=int, default=4, help="Concurrent heavy analyst readers in the second phase.")
    ap.add_argument("--products", type=int, default=200, help="Sample store size.")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers.")
    ap.add_argument("--threads", type=int, default=4, help="Threads per worker.")
    ap.add_argument("--ready-timeout", type=float, default=600.0)
    ap.add_argument("--caps", default="", help="ANALYST_MAX_CONCURRENT values to compare (comma-separated).")
    ap.add_argument("--compare-uncapped", action="store_true",
                    help="Also run the second phase with ANALYST_MAX_CONCURRENT=0 on a fresh instance.")
    args = ap.parse_args()

    from common.settings import Settings

    defaults = Settings(_env_file=None)
    print(f"[bench] ANALYST_MAX_CONCURRENT={defaults.analyst_max_concurrent}, "
          f"ANALYST_TIMEOUT_MS={defaults.analyst_timeout_ms}, ANALYST_ROW_LIMIT={defaults.analyst_row_limit}, "
          f"FALKORDB_TIMEOUT_MAX_MS={defaults.falkordb_timeout_max_ms}, "
          f"FALKORDB_QUERY_MEM_CAPACITY_MB={defaults.falkordb_query_mem_capacity_mb}", flush=True)
    caps = [int(c) for c in (args.caps or str(defaults.analyst_max_concurrent)).split(",") if c.strip()]
    if args.compare_uncapped and 0 not in caps:
        caps.append(0)
    rows: list[tuple[str, dict]] = []
    for i, cap in enumerate(caps):
        with serve_sample(products=args.products, workers=args.workers, threads=args.threads,
                          ready_timeout=args.ready_timeout, env={"ANALYST_MAX_CONCURRENT": str(cap)},
                          label=f"isolation-{cap}") as stack:
            if i == 0:
                rows.append(("chat alone", _phase(stack, args, 0)))
            what = f"at most {cap} at once" if cap else "no cap"
            rows.append((f"chat + {args.analysts} heavy analyst readers ({what})", _phase(stack, args, args.analysts)))
    _print(rows)


if __name__ == "__main__":
    main()
