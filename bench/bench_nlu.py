"""Understanding-model speed and memory on this machine's CPU; prints a table, asserts nothing.

    .venv/bin/python bench/bench_nlu.py [--runs 400] [--threads N] [--no-linking]

Measured in one run, variants interleaved:
- onnx, fp32 (the product's default, NLU_RUNTIME=onnx): one encoder pass with merged LoRA
  weights, intent and entities together, exported to ONNX at load and run by onnxruntime
  (nlu.model.export_onnx);
- traced, fp32 (NLU_RUNTIME=torchscript): the same model as a frozen TorchScript graph
  (nlu.model.trace_for_inference);
- traced, int8 FFN (NLU_QUANTIZE=1): that with the feed-forward up-projections int8
  (nlu.model.QUANTIZE_MODULES);
- eager, int8 FFN: that run module by module in Python;
- eager, fp32: the same model run module by module in Python;
- unmerged LoRA: the adapter kept as separate low-rank matrices (fp32, eager);
- two models: two separate encoders, one pass for the intent, another for the entities (the
  un-fused design this replaces; run like the default, so the row shows what fusing saves).
Figures: model load time, resident memory added by the load (psutil), p50/p95 latency of one
question at batch 1, and throughput (questions per second) at batch 1, 8 and 32.

Then, unless --no-linking, the whole of understanding one question as the chat does it: the
default model plus entity linking (nlu.linking.EntityLinker, embeddings on) against a throwaway
embedded FalkorDB holding the 1,000-product sample catalog, on questions naming real products.
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
            intent_logits, _, _ = self.a.model(enc["input_ids"], enc["attention_mask"])
            _, tag_logits, _ = self.b.model(enc["input_ids"], enc["attention_mask"])
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


def interleaved(variants: dict[str, object], run: Callable[[object, int], float], rounds: int,
                ) -> dict[str, list[float]]:
    """Each round runs every variant once, in a rotating order, so that load from other processes
    on a shared machine spreads over all variants instead of spoiling one."""
    names = list(variants)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[: r % len(names)]:
            out[n].append(run(variants[n], r))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=400, help="batch-1 calls per variant for latency")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: Settings.nlu_threads, 1)")
    parser.add_argument("--seconds", type=float, default=4.0, help="time per variant and batch size")
    parser.add_argument("--no-linking", action="store_true", help="skip the understand + link measurement")
    args = parser.parse_args()
    settings = Settings()
    threads = args.threads or settings.nlu_threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    print(f"CPU: {os.cpu_count()} cores, torch {torch.__version__}, {threads} intra-op threads, "
          f"load average {os.getloadavg()[0]:.2f} (other processes share this machine)")

    # Import the heavy libraries first so that the first variant's load time is not theirs.
    import importlib

    for name in ("peft", "safetensors.torch", "torch.ao.quantization", "transformers.models.bert.modeling_bert"):
        importlib.import_module(name)
    base_rss = rss_mb()
    loaders: dict[str, Callable[[], object]] = {
        "onnx, fp32": lambda: Understander.load(settings, quantize=False, runtime="onnx", num_threads=threads),
        "traced, fp32": lambda: Understander.load(settings, quantize=False, runtime="torchscript",
                                                  num_threads=threads),
        "traced, int8 FFN": lambda: Understander.load(settings, quantize=True, runtime="torchscript",
                                                      num_threads=threads),
        "eager, int8 FFN": lambda: Understander.load(settings, quantize=True, runtime="eager", num_threads=threads),
        "eager, fp32": lambda: Understander.load(settings, quantize=False, runtime="eager", num_threads=threads),
        "unmerged LoRA": lambda: Understander.load(settings, merge=False, num_threads=threads),
        "two models (2 passes)": lambda: TwoModels(Understander.load(settings, quantize=False, num_threads=threads),
                                                    Understander.load(settings, quantize=False, num_threads=threads)),
    }
    variants: dict[str, object] = {}
    load_s: dict[str, float] = {}
    mem: dict[str, float] = {}
    for name, load in loaders.items():  # all stay loaded, so each RSS delta is that variant's own
        gc.collect()
        before, t = rss_mb(), time.perf_counter()
        variants[name] = load()
        load_s[name], mem[name] = time.perf_counter() - t, rss_mb() - before
        for q in QUESTIONS:
            variants[name].understand(q)  # type: ignore[attr-defined]

    per_round = max(1, args.runs // args.rounds)

    def latency_round(obj: object, r: int) -> list[float]:
        times = []
        for i in range(per_round):
            q = QUESTIONS[(r * per_round + i) % len(QUESTIONS)]
            t = time.perf_counter()
            obj.understand(q)  # type: ignore[attr-defined]
            times.append((time.perf_counter() - t) * 1000)
        return times

    lat = {n: sorted(x for chunk in v for x in chunk)
           for n, v in interleaved(variants, latency_round, args.rounds).items()}  # type: ignore[arg-type]
    tput: dict[str, dict[int, float]] = {n: {} for n in variants}
    for batch in (1, 8, 32):
        texts = (QUESTIONS * (batch // len(QUESTIONS) + 1))[:batch]

        def tput_round(obj: object, _r: int, texts: list[str] = texts, batch: int = batch) -> tuple[int, float]:
            done, t = 0, time.perf_counter()
            while time.perf_counter() - t < args.seconds / 4:
                obj.understand_batch(texts)  # type: ignore[attr-defined]
                done += batch
            return done, time.perf_counter() - t

        for n, chunks in interleaved(variants, tput_round, 4).items():  # type: ignore[arg-type]
            tput[n][batch] = sum(d for d, _ in chunks) / sum(s for _, s in chunks)

    print(f"\nprocess RSS before any model: {base_rss:.0f} MB (python, torch, transformers, peft)")
    head = (f"{'variant':<24}{'load s':>8}{'+RSS MB':>9}{'p50 ms':>8}{'p95 ms':>8}"
            f"{'q/s b=1':>9}{'q/s b=8':>9}{'q/s b=32':>10}")
    print(head)
    print("-" * len(head))
    for n in variants:
        times = lat[n]
        p50, p95 = statistics.median(times), times[int(0.95 * (len(times) - 1))]
        print(f"{n:<24}{load_s[n]:>8.2f}{mem[n]:>9.0f}{p50:>8.1f}{p95:>8.1f}"
              f"{tput[n][1]:>9.0f}{tput[n][8]:>9.0f}{tput[n][32]:>10.0f}")
    print("\ntarget: p50 <= 15 ms at batch 1 for the product's default (first row). Variants run interleaved, "
          "so a busy neighbour slows all of them alike.")
    if not args.no_linking:
        del variants
        gc.collect()
        understand_and_link(settings, threads, args.runs)


def understand_and_link(settings: Settings, threads: int, runs: int) -> None:
    """p50/p95 of the chat's understanding step: model, then linking of every entity found."""
    from bench._sample_graph import sample_graph
    from common import bootstrap

    understander = Understander.load(settings, num_threads=threads)
    with sample_graph(1000, name="bench_nlu") as (store, graph_settings, _data):
        linker = bootstrap.build(graph_settings, store=store).linker
        assert linker is not None
        linker.warm()
        records = linker.indexed()[0]
        names = [r.name for r in records]
        frames = ["is the {} in stock?", "how much is the {}", "compare the {} and the {}",
                  "does the {} come with a warranty", "any deals on {} this week", "{} specs?"]
        # every call a different question, so no cache of the linker's answers the next one
        questions = [frames[i % len(frames)].format(names[i % len(names)], names[(i * 7 + 3) % len(names)])
                     for i in range(runs)] + QUESTIONS
        for q in QUESTIONS:
            linker.link(understander.understand(q))
        model_ms, total_ms, linked = [], [], 0
        for i in range(runs):
            q = questions[i % len(questions)]
            t0 = time.perf_counter()
            u = understander.understand(q)
            t1 = time.perf_counter()
            out = linker.link(u)
            t2 = time.perf_counter()
            model_ms.append((t1 - t0) * 1000)
            total_ms.append((t2 - t0) * 1000)
            linked += sum(1 for e in out.entities if e.node_id)
    model_ms.sort()
    total_ms.sort()
    print(f"\nunderstand + link one question ({runs} different questions naming sample-store products; "
          f"{linked / runs:.2f} entities linked per question):")
    for name, ms in (("model only", model_ms), ("model + linking", total_ms)):
        print(f"  {name:<18} p50 {statistics.median(ms):6.1f} ms   p95 {ms[int(0.95 * (len(ms) - 1))]:6.1f} ms")


if __name__ == "__main__":
    main()
