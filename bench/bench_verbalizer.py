"""LLM verbalizer throughput and latency: dynamic batching vs one request at a time; prints a
table, asserts nothing.

    .venv/bin/python bench/bench_verbalizer.py                       # CPU, small counts
    .venv/bin/python bench/bench_verbalizer.py --device cuda --sessions 1,8,32,64 --requests 4
    # GPU box without the GGUF: export the config + tokenizer here (3 MB), carry it over, then
    .venv/bin/python bench/bench_verbalizer.py --export-config var/smollm2-config
    .venv/bin/python bench/bench_verbalizer.py --device cuda --random-weights --model-path var/smollm2-config

For each number of concurrent sessions (threads, each sending ``--requests`` requests one after
another), measured in the same run:
- naive: every request calls the model on its own (`LocalLM`, one generate at a time; the lock
  serialises concurrent sessions), the baseline;
- batched: the requests go through the dynamic batcher (`BatchingLM`).
Figures: generated tokens per second over the wall time of the round, and time to first token
(request sent -> first text piece at the caller) p50/p95, plus the batcher's mean batch size.
Prompts are real verbalizer prompts (system prompt, facts as JSON lines, draft, question; about
250 tokens). With ``--random-weights`` the model rarely stops early, so every request produces
``--max-new-tokens`` tokens. The LLM verbalizer sends nothing before the guard has checked the
whole reply, so its user-visible first token is the generation time, not the TTFT shown here.

Also the template writer's replies per second, and with ``--llamacpp`` the llama.cpp path on the
CPU (`qa.llm.llamacpp`, the same GGUF file, quantised weights run as they are): one request at a
time, the way that backend serves, beside the naive transformers row of the same run.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common.settings import Settings  # noqa: E402
from qa.facts import make_fact  # noqa: E402
from qa.guard import GroundingGuard  # noqa: E402
from qa.llm.base import Messages, resolve_model_path  # noqa: E402
from qa.llm.batching import BatchingLM  # noqa: E402
from qa.llm.local import LocalLM, Row  # noqa: E402
from qa.safety import SafetyFilter  # noqa: E402
from qa.types import Reply, Retrieval, Turn  # noqa: E402
from qa.verbalizer import LLMVerbalizer  # noqa: E402

RETRIEVALS = [
    (
        Retrieval(
            intent="product_price",
            status="ok",
            facts=[
                make_fact(
                    kind="product",
                    data={
                        "sku": "AX2-128",
                        "name": "Aurora X2",
                        "brand": "Aurora",
                        "category": "Headphones",
                        "price": 129.0,
                        "currency": "USD",
                        "stock": 42,
                        "in_stock": True,
                        "rating": 4.5,
                        "warranty_months": 24,
                        "attributes": {"colour": "black", "battery_life_hours": 30},
                    },
                )
            ],
        ),
        "How much are the Aurora X2 headphones?",
        "The Aurora X2 costs 129.00 USD and 42 are in stock.",
    ),
    (
        Retrieval(
            intent="track_order",
            status="ok",
            facts=[
                make_fact(
                    kind="order",
                    data={
                        "order_id": "10452",
                        "status": "shipped",
                        "placed_at": "2026-02-27T09:12:00Z",
                        "shipped_at": "2026-02-28",
                        "eta": "2026-03-03",
                        "carrier": "DHL",
                        "tracking_number": "1Z999AA10123456784",
                        "total": 129.0,
                        "currency": "USD",
                    },
                )
            ],
        ),
        "Where is my order 10452?",
        "Order 10452 shipped on 28 February 2026 with DHL (tracking 1Z999AA10123456784) and should arrive on 3 March 2026.",
    ),
    (
        Retrieval(
            intent="check_refund_policy",
            status="procedure",
            facts=[
                make_fact(
                    kind="policy",
                    data={
                        "type": "return",
                        "title": "Returns",
                        "days": 30,
                        "fee": 4.95,
                        "currency": "USD",
                        "text": "Unused items can be returned within 30 days of delivery. A restocking fee of 4.95 USD applies.",
                    },
                )
            ],
        ),
        "Can I still return it?",
        "You can return unused items within 30 days of delivery; a 4.95 USD restocking fee applies.",
    ),
]


class _Draft:
    name = "template"

    def __init__(self, text: str) -> None:
        self.text = text

    def verbalize(self, retrieval: Retrieval, turns: list[Turn], *, customer_id: str | None) -> Reply:
        return Reply(text=self.text, verbalizer="template")

    def stream(self, retrieval, turns, *, customer_id):  # pragma: no cover - unused here
        yield self.verbalize(retrieval, turns, customer_id=customer_id)


def build_prompts(lm: LocalLM) -> list[Messages]:
    prompts = []
    for retrieval, question, draft in RETRIEVALS:
        v = LLMVerbalizer(lm, _Draft(draft), GroundingGuard(), SafetyFilter())
        prompts.append(v.build_messages(retrieval, [Turn(role="user", text=question)], draft))
    return prompts


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def run_round(
    sessions: int, requests: int, one_request: Callable[[int], tuple[float, int]]
) -> tuple[float, list[float], int]:
    """``sessions`` threads each send ``requests`` requests in turn; returns (wall s, TTFTs, tokens)."""
    barrier = threading.Barrier(sessions + 1)
    ttfts: list[float] = []
    tokens = [0]
    lock = threading.Lock()
    errors: list[BaseException] = []

    def session(i: int) -> None:
        barrier.wait()
        for k in range(requests):
            try:
                ttft, n = one_request(i * requests + k)
            except BaseException as exc:  # noqa: BLE001 - reported after the round
                errors.append(exc)
                return
            with lock:
                ttfts.append(ttft)
                tokens[0] += n

    threads = [threading.Thread(target=session, args=(i,), daemon=True) for i in range(sessions)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return wall, ttfts, tokens[0]


def naive_request(lm: LocalLM, prompts: list[Messages], max_new: int) -> Callable[[int], tuple[float, int]]:
    def one(i: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        first: list[float] = []
        row = Row(
            lm.encode(prompts[i % len(prompts)]),
            max_new,
            sink=lambda _tok: first or first.append(time.perf_counter() - t0),
        )
        ids = lm.run_rows([row])[0]
        return (first[0] if first else time.perf_counter() - t0), len(ids)

    return one


def batched_request(
    b: BatchingLM, prompts: list[Messages], max_new: int
) -> Callable[[int], tuple[float, int]]:
    def one(i: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        ttft = None
        for _piece in b.stream(prompts[i % len(prompts)], max_new_tokens=max_new):
            if ttft is None:
                ttft = time.perf_counter() - t0
        return (ttft if ttft is not None else time.perf_counter() - t0), 0  # tokens from the stats

    return one


def bench_templates(runs: int) -> str:
    try:
        from qa.templates import TemplateVerbalizer
    except ImportError as exc:
        return f"template writer: skipped ({exc})"
    tv = TemplateVerbalizer()
    turns = [[Turn(role="user", text=q)] for _, q, _ in RETRIEVALS]
    try:
        for (r, _, _), t in zip(RETRIEVALS, turns, strict=True):  # warm up
            tv.verbalize(r, t, customer_id="C1")
    except Exception as exc:  # noqa: BLE001 - someone else's module, possibly mid-change
        return f"template writer: skipped ({type(exc).__name__}: {exc})"
    start = time.perf_counter()
    for i in range(runs):
        r, _, _ = RETRIEVALS[i % len(RETRIEVALS)]
        tv.verbalize(r, turns[i % len(turns)], customer_id="C1")
    per_s = runs / (time.perf_counter() - start)
    return f"template writer: {per_s:,.0f} replies/s (single thread, {runs} replies)"


def bench_llamacpp(model_path: str | None, prompts: list[Messages], max_new: int, requests: int,
                   threads: int) -> str:
    """Tokens per second and time to first piece of the llama.cpp backend, one request at a time."""
    from common.errors import MissingDependency
    from qa.llm.llamacpp import LlamaCppLM

    try:
        t0 = time.perf_counter()
        lm = LlamaCppLM.load(model_path, n_threads=threads, max_new_tokens=max_new)
    except MissingDependency as exc:
        return f"llama.cpp: skipped ({exc.message})"
    load_s = time.perf_counter() - t0
    "".join(lm.stream(prompts[0], max_new_tokens=4))  # warm-up
    ttfts, pieces, start = [], 0, time.perf_counter()
    for i in range(requests):
        t = time.perf_counter()
        first = None
        for _piece in lm.stream(prompts[i % len(prompts)], max_new_tokens=max_new):
            first = first or time.perf_counter() - t
            pieces += 1
        ttfts.append(first or time.perf_counter() - t)
    wall = time.perf_counter() - start
    lm.close()
    return (f"llama.cpp ({lm.name}, load {load_s:.1f}s): {requests} requests one at a time, {pieces / wall:.1f} "
            f"text pieces/s (one per generated token), TTFT p50 {_pct(ttfts, 50) * 1000:.0f} ms, p95 {_pct(ttfts, 95) * 1000:.0f} ms")


def export_config(target: str, model_path: str | None) -> None:
    from transformers import AutoConfig, AutoTokenizer

    directory, gguf = resolve_model_path(model_path)
    extra = {"gguf_file": gguf} if gguf else {}
    AutoConfig.from_pretrained(str(directory), **extra).save_pretrained(target)
    AutoTokenizer.from_pretrained(str(directory), **extra).save_pretrained(target)
    print(f"config and tokenizer of {gguf or directory} written to {target}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument(
        "--model-path", default=None, help="GGUF file or HF directory (default: the packaged GGUF)"
    )
    ap.add_argument("--random-weights", action="store_true", help="same architecture, random weights")
    ap.add_argument("--sessions", default="1,8,32,64", help="comma-separated concurrency levels")
    ap.add_argument("--requests", type=int, default=1, help="requests per session per round")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--wait-ms", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--compile", action="store_true", help="CUDA: static KV cache + torch.compile")
    ap.add_argument(
        "--naive-max-requests",
        type=int,
        default=None,
        help="cap the baseline's requests per round (0: no cap; default 8 on the CPU, none on CUDA): "
        "its throughput does not depend on concurrency, only its queueing does",
    )
    ap.add_argument("--template-runs", type=int, default=2000)
    ap.add_argument("--llamacpp", action="store_true",
                    help="also measure the llama.cpp backend (needs llama-cpp-python; CPU, one request at a time)")
    ap.add_argument(
        "--export-config", metavar="DIR", help="write config + tokenizer for --random-weights and exit"
    )
    args = ap.parse_args()

    if args.export_config:
        export_config(args.export_config, args.model_path)
        return
    if args.naive_max_requests is None:
        args.naive_max_requests = 8 if args.device == "cpu" else 0
    settings = Settings(_env_file=None)
    t0 = time.perf_counter()
    lm = LocalLM.load(
        args.model_path,
        device=args.device,
        max_new_tokens=args.max_new_tokens,
        compile=args.compile,
        max_batch_size=args.max_batch,
        random_weights=args.random_weights,
        cache_dir=settings.llm_cache_dir or None,
        threads=args.threads,
    )
    load_s = time.perf_counter() - t0
    prompts = build_prompts(lm)
    prompt_tokens = [len(lm.encode(p)) for p in prompts]
    dev = lm.device
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else ""
    print(
        f"model {lm.name} ({'random weights' if args.random_weights else 'real weights'}) on {dev} {gpu} "
        f"dtype {next(lm.model.parameters()).dtype}, torch threads {torch.get_num_threads()}, load {load_s:.1f}s"
    )
    print(
        f"prompts {prompt_tokens} tokens, max_new_tokens {args.max_new_tokens}, max batch {args.max_batch}, "
        f"wait {args.wait_ms:g} ms, compile {lm.compile}, load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )

    batcher = BatchingLM(lm, max_batch_size=args.max_batch, max_wait_ms=args.wait_ms, request_timeout_s=3600)
    # Warm-up: first calls allocate, pick kernels and (with --compile) capture graphs.
    naive_request(lm, prompts, 4)(0)
    sizes = sorted({1, *[min(args.max_batch, int(s)) for s in args.sessions.split(",")]})
    if lm.compile:
        lm.warmup(
            [b for b in (1, 2, 4, 8, 16, 32, 64, 128, 256) if b <= args.max_batch],
            prompt_tokens=max(prompt_tokens),
        )
    run_round(min(sizes[-1], 8), 1, batched_request(batcher, prompts, 4))

    header = f"{'sessions':>8} {'mode':>8} {'requests':>8} {'wall s':>8} {'gen tok/s':>10} {'TTFT p50 ms':>12} {'TTFT p95 ms':>12} {'mean batch':>10}"
    print(header)
    print("-" * len(header))
    for sessions in [int(s) for s in args.sessions.split(",")]:
        n_naive = sessions * args.requests
        if args.naive_max_requests:
            n_naive = min(n_naive, args.naive_max_requests)
        per = max(1, n_naive // sessions)
        naive_sessions = min(sessions, n_naive)
        wall, ttfts, tokens = run_round(naive_sessions, per, naive_request(lm, prompts, args.max_new_tokens))
        print(
            f"{sessions:>8} {'naive':>8} {len(ttfts):>8} {wall:>8.2f} {tokens / wall:>10.1f} "
            f"{_pct(ttfts, 50) * 1000:>12.0f} {_pct(ttfts, 95) * 1000:>12.0f} {1:>10.1f}"
        )
        before = batcher.stats()
        wall, ttfts, _ = run_round(
            sessions, args.requests, batched_request(batcher, prompts, args.max_new_tokens)
        )
        after = batcher.stats()
        tokens = after.tokens - before.tokens
        batches = after.batches - before.batches
        mean_batch = (after.rows - before.rows) / batches if batches else 0.0
        print(
            f"{sessions:>8} {'batched':>8} {len(ttfts):>8} {wall:>8.2f} {tokens / wall:>10.1f} "
            f"{_pct(ttfts, 50) * 1000:>12.0f} {_pct(ttfts, 95) * 1000:>12.0f} {mean_batch:>10.1f}",
            flush=True,
        )
    batcher.close()
    if args.llamacpp:
        print(bench_llamacpp(args.model_path, prompts, args.max_new_tokens, max(4, args.naive_max_requests or 8),
                             settings.llm_threads))
    print(bench_templates(args.template_runs))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
