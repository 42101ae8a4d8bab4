"""Understanding-model speed and memory on this machine's CPU; prints a table, asserts nothing.

    .venv/bin/python bench/bench_nlu.py [--runs 300] [--threads N]

Measured in one run, each in turn:
- fused (the product): one encoder pass with merged LoRA weights, intent and entities together;
- unmerged LoRA: the same model with the adapter kept as separate low-rank matrices;
- two models: two separate encoders, one pass for the intent, another for the entities (the
  un-fused design this replaces).
Figures: model load time, resident memory added by the load (psutil), p50/p95 latency of one
question at batch 1, and throughput (questions per second) at batch 1, 8 and 32.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402
import torch  # noqa: E402

from common.settings import Settings  # noqa: E402
from nlu.understand import Understander, viterbi_bio  # noqa: E402

QUESTIONS = [
    "is the Aurora X2 in stock?",
    "where is my order 10452?",
    "how much is the Nordic Audio NA-700X in black",
    "can I still return it",
    "compare the kairo 7 and the nova 5",
    "what's your return policy for headphones",
    "recommend running shoes under $150",
    "cancel order #11003 please",
    "does the slate 14 laptop come with a warranty",
    "i forgot my password",
    "how long does delivery to germany take",
    "talk to a human",
    "send me the invoice for order 10877",
    "do you take paypal",
    "hi there",
    "thanks, that's all",
    "any discounts on Lumina tablets this week?",
    "my card was charged twice for 12001",
    "what are the specs of the Gale 3 running shoes, US 9",
    "change the delivery address of #10999 to 12 Harbour Street, Edinburgh",
]


class TwoModels:
    """The un-fused baseline: one encoder pass for the intent, another for the entities."""

    def __init__(self, intent_model: Understander, entity_model: Understander) -> None:
        self.a, self.b = intent_model, entity_model

    def understand_batch(self, texts: Sequence[str]) -> list[tuple[str, list]]:
        enc = self.a.tokenizer(list(texts), truncation=True, max_length=self.a.config.max_length, padding=True,
                               return_offsets_mapping=True, return_tensors="pt")
        with torch.inference_mode():
            intent_logits, _ = self.a.model(enc["input_ids"], enc["attention_mask"])
            _, tag_logits = self.b.model(enc["input_ids"], enc["attention_mask"])
            probs = torch.softmax(intent_logits / self.a.config.temperature, -1)
            log_probs = torch.log_softmax(tag_logits, -1)
        out = []
        for k in range(len(texts)):
            n = int(enc["attention_mask"][k].sum())
            spans = viterbi_bio(log_probs[k, :n], enc.word_ids(k)[:n],
                                [tuple(o) for o in enc["offset_mapping"][k][:n].tolist()], self.b.config.bio_tags,
                                texts[k])
            out.append((self.a.config.intents[int(probs[k].argmax())], spans))
        return out

    def understand(self, text: str):
        return self.understand_batch([text])[0]


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def latency(fn: Callable[[str], object], runs: int) -> tuple[float, float]:
    for q in QUESTIONS[:5]:
        fn(q)
    times = []
    for i in range(runs):
        q = QUESTIONS[i % len(QUESTIONS)]
        t = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def throughput(fn: Callable[[list[str]], object], batch: int, seconds: float = 3.0) -> float:
    texts = (QUESTIONS * (batch // len(QUESTIONS) + 1))[:batch]
    fn(texts)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        fn(texts)
        done += batch
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: cores)")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per throughput figure")
    args = parser.parse_args()
    settings = Settings()
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    print(f"CPU: {os.cpu_count()} cores, torch {torch.__version__}, {threads} intra-op threads, "
          f"load average {os.getloadavg()[0]:.2f}")

    rows = []

    def measure(name: str, load: Callable[[], object]) -> None:
        gc.collect()
        before = rss_mb()
        t = time.perf_counter()
        obj = load()
        load_s = time.perf_counter() - t
        mem = rss_mb() - before
        p50, p95 = latency(obj.understand, args.runs)  # type: ignore[attr-defined]
        tput = {b: throughput(obj.understand_batch, b, args.seconds) for b in (1, 8, 32)}  # type: ignore[attr-defined]
        rows.append((name, load_s, mem, p50, p95, tput))
        print(f"  measured {name}", flush=True)
        del obj
        gc.collect()

    base_rss = rss_mb()
    measure("fused, merged LoRA", lambda: Understander.load(settings, num_threads=threads))
    measure("fused, unmerged LoRA", lambda: Understander.load(settings, merge=False, num_threads=threads))
    measure("two models (2 passes)", lambda: TwoModels(Understander.load(settings, num_threads=threads),
                                                        Understander.load(settings, num_threads=threads)))

    print(f"\nprocess RSS before any model: {base_rss:.0f} MB (python, torch, transformers)")
    head = (f"{'variant':<24}{'load s':>8}{'+RSS MB':>9}{'p50 ms':>8}{'p95 ms':>8}"
            f"{'q/s b=1':>9}{'q/s b=8':>9}{'q/s b=32':>10}")
    print(head)
    print("-" * len(head))
    for name, load_s, mem, p50, p95, tput in rows:
        print(f"{name:<24}{load_s:>8.2f}{mem:>9.0f}{p50:>8.1f}{p95:>8.1f}"
              f"{tput[1]:>9.0f}{tput[8]:>9.0f}{tput[32]:>10.0f}")
    print("\ntarget: p50 <= 15 ms at batch 1 for the fused model (+RSS of later rows is smaller because "
          "torch and the tokenizer are already loaded)")


if __name__ == "__main__":
    main()
