"""Understanding quality on the team's own held-out set and on data nobody here wrote, side by side;
prints a table, asserts nothing.

    .venv/bin/python bench/bench_nlu_quality.py [--model-dir DIR] [--bitext PATH] [--clinc PATH]
                                                [--catalog-dir DIR] [--shots 5,10]

Rows:
- own held-out: nlu/data/eval_phrasings.yaml filled with held-out products of the sample catalog
  (generated into a temporary directory unless --catalog-dir names the one the model was trained on);
- Bitext dev: ../shared/data/bitext-dev/intents_dev.jsonl (real-style customer requests; measured
  on, never trained on);
- CLINC150 test: out-of-scope recall on `oos_test`, on the other-domain queries, out-of-scope
  precision and the accuracy on the few CLINC intents a shop answers (nlu/external.py);
- shop examples: k examples per intent taken from one half of the Bitext file (two folds, by a
  fixed hash of the text), added as shop examples (nlu/shop_examples.py), scored on the other
  half; the mean of the two folds, beside the same halves without examples.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse
import datetime as dt
import hashlib
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from common.settings import REPO_ROOT, Settings  # noqa: E402
from nlu.dataset import Example  # noqa: E402
from nlu.evaluate import evaluate, evaluate_clinc, evaluate_external  # noqa: E402
from nlu.external import read_jsonl  # noqa: E402
from nlu.understand import Understander  # noqa: E402

SHARED = REPO_ROOT.parent / "shared" / "data"


def _held_out(u: Understander, catalog_dir: Path | None) -> dict:
    from nlu.catalog import catalog_from_dir
    from nlu.dataset import build_eval_examples

    def run(path: Path) -> dict:
        examples = build_eval_examples(catalog_from_dir(path).split()[1], fills=3)
        return evaluate(u, examples, progress=False)

    if catalog_dir is not None:
        return run(catalog_dir)
    from import_scripts.sample_store import generate

    with tempfile.TemporaryDirectory() as tmp:
        # the store nlu/artifacts was trained on: `./kgqa sample --products 1000` (seed and date defaults)
        generate(Path(tmp), products=1000, today=dt.date(2026, 11, 23))
        return run(Path(tmp))


def _fold(text: str) -> int:
    return hashlib.sha1(text.encode()).digest()[0] % 2


def _shots(u: Understander, examples: list[Example], k: int) -> tuple[float, float, float, float]:
    """Mean over two folds of (accuracy, macro-F1) without and with k shop examples per intent."""
    from nlu.external import intent_figures

    base_acc = base_f1 = shot_acc = shot_f1 = 0.0
    for fold in (0, 1):
        pool = [e for e in examples if _fold(e.text) == fold]
        test = [e for e in examples if _fold(e.text) != fold]
        by_intent: dict[str, list[Example]] = defaultdict(list)
        for e in sorted(pool, key=lambda e: hashlib.sha1(e.text.encode()).hexdigest()):
            by_intent[e.intent].append(e)
        chosen = [e for items in by_intent.values() for e in items[:k]]
        u.examples.replace(torch.zeros(0, 0), [])
        base = evaluate_external(u, test)
        vectors = u.vectors([e.text for e in chosen])
        keep = [i for i, v in enumerate(vectors) if v is not None]
        u.examples.replace(torch.stack([vectors[i] for i in keep]), [chosen[i].intent for i in keep])
        pred = [x.intent.name for x in u.understand_batch([e.text for e in test])]
        with_shots = intent_figures([e.intent for e in test], pred)
        u.examples.replace(torch.zeros(0, 0), [])
        base_acc += base["accuracy"] / 2
        base_f1 += base["macro_f1"] / 2
        shot_acc += with_shots["accuracy"] / 2
        shot_f1 += with_shots["macro_f1"] / 2
    return base_acc, base_f1, shot_acc, shot_f1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--catalog-dir", type=Path, default=None)
    ap.add_argument("--bitext", type=Path, default=SHARED / "bitext-dev" / "intents_dev.jsonl")
    ap.add_argument("--clinc", type=Path, default=SHARED / "clinc150")
    ap.add_argument("--shots", default="5,10")
    args = ap.parse_args()

    u = Understander.load(Settings(), model_dir=args.model_dir, num_threads=0)
    print(f"model {u.model_dir}: out-of-scope threshold {u.threshold}, temperature {u.config.temperature:.3f}")
    own = _held_out(u, args.catalog_dir)
    rows = [("own held-out (eval_phrasings.yaml)", own["examples"], own["intent_accuracy"], own["intent_macro_f1"])]
    bitext = None
    if args.bitext.is_file():
        bitext = read_jsonl(args.bitext)
        r = evaluate_external(u, bitext)
        rows.append((f"Bitext dev ({args.bitext.name})", r["examples"], r["accuracy"], r["macro_f1"]))
    print(f"\n{'set':<44}{'examples':>9}{'accuracy':>10}{'macro-F1':>10}")
    for name, n, acc, f1 in rows:
        print(f"{name:<44}{n:>9}{acc:>10.4f}{f1:>10.4f}")
    own_oos = own["per_intent"].get("out_of_scope", {})
    in_scope_prec = [v["precision"] for k, v in own["per_intent"].items() if k != "out_of_scope"]
    print(f"own held-out: mean in-scope precision {sum(in_scope_prec) / max(1, len(in_scope_prec)):.4f}, "
          f"out_of_scope recall {own_oos.get('recall', 0):.4f}")
    if (args.clinc / "data_full.json").is_file() or args.clinc.is_file():
        c = evaluate_clinc(u, args.clinc, "test")
        print(f"\nCLINC150 test: oos_test declined {c['oos_recall']:.4f} ({c['oos_examples']}), other-domain declined "
              f"{c['other_domain_recall']:.4f} ({c['other_domain_examples']}), out-of-scope precision "
              f"{c['oos_precision']:.4f}, in-scope accuracy {c['in_scope_accuracy']:.4f} ({c['in_scope_examples']})")
    if bitext is not None:
        print("\nshop examples from the Bitext file, two folds (examples from one half, scored on the other):")
        print(f"{'k per intent':<14}{'acc before':>11}{'acc after':>11}{'F1 before':>11}{'F1 after':>11}")
        for k in (int(x) for x in args.shots.split(",") if x.strip()):
            b_acc, b_f1, s_acc, s_f1 = _shots(u, bitext, k)
            print(f"{k:<14}{b_acc:>11.4f}{s_acc:>11.4f}{b_f1:>11.4f}{s_f1:>11.4f}")


if __name__ == "__main__":
    main()
