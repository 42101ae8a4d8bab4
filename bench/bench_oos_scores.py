"""Out-of-scope scores compared at the same recall on CLINC150 val; prints a table, asserts nothing.

    .venv/bin/python bench/bench_oos_scores.py [--bitext PATH] [--clinc PATH] [--recall 0.95]

Each score declines a message when it is below a cut, beside the model's out_of_scope class:
- max probability: the calibrated confidence of the best intent (the training threshold's rule);
- energy: logsumexp of the in-scope logits;
- ratio (served, nlu/calibrate.py): ln(p(best in-scope intent) / p(out_of_scope)), with the
  training threshold kept.
The cut of each is the smallest (on a fine grid) at which `--recall` of CLINC150 val's
out-of-scope queries are declined: chosen on CLINC val only. The Bitext development file and
CLINC's test splits are then measured, nothing is tuned on them. The first row is the model
without any cut but its threshold.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from common.settings import REPO_ROOT, Settings  # noqa: E402
from nlu.external import read_clinc, read_jsonl  # noqa: E402
from nlu.understand import Understander  # noqa: E402

SHARED = REPO_ROOT.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bitext", type=Path, default=SHARED / "bitext-dev" / "intents_dev.jsonl")
    ap.add_argument("--clinc", type=Path, default=SHARED / "clinc150")
    ap.add_argument("--recall", type=float, default=0.95, help="CLINC val out-of-scope recall every cut reaches")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    u = Understander.load(Settings(), num_threads=0)
    cfg = u.config
    oos = cfg.intents.index("out_of_scope")
    keep = torch.ones(len(cfg.intents), dtype=torch.bool)
    keep[oos] = False

    def logits(texts: list[str]) -> torch.Tensor:
        out = []
        for b in range(0, len(texts), 64):
            enc = u.tokenizer(texts[b:b + 64], truncation=True, max_length=cfg.max_length, padding=True,
                              return_tensors="pt")
            with torch.inference_mode():
                out.append(u.model(enc["input_ids"], enc["attention_mask"])[0].float())
        return torch.cat(out)

    val, test = read_clinc(args.clinc, "val"), read_clinc(args.clinc, "test")
    bitext = read_jsonl(args.bitext)
    sets = {"val oos": ([e.text for e in val.oos], None), "test oos": ([e.text for e in test.oos], None),
            "Bitext": ([e.text for e in bitext], [e.intent for e in bitext]),
            "CLINC in-scope": ([e.text for e in test.in_scope], [e.intent for e in test.in_scope])}
    lg = {k: logits(texts) for k, (texts, _) in sets.items()}

    def msp(x: torch.Tensor) -> torch.Tensor:
        return (x / cfg.temperature).softmax(-1).max(-1).values

    def energy(x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(x[:, keep], -1)

    def ratio(x: torch.Tensor) -> torch.Tensor:
        lp = (x / cfg.temperature).log_softmax(-1)
        return lp[:, keep].max(-1).values - lp[:, oos]

    def decide(x: torch.Tensor, score: Callable[[torch.Tensor], torch.Tensor] | None, cut: float,
               threshold: bool) -> torch.Tensor:
        p = (x / cfg.temperature).softmax(-1)
        conf, pred = p.max(-1)
        declined = pred == oos
        if threshold:
            declined |= conf < u.threshold
        if score is not None:
            declined |= score(x) < cut
        return torch.where(declined, torch.full_like(pred, oos), pred)

    def row(name: str, score: Callable[[torch.Tensor], torch.Tensor] | None, cut: float, threshold: bool) -> None:
        figures = []
        for k, (_texts, gold) in sets.items():
            d = decide(lg[k], score, cut, threshold)
            if gold is None:
                figures.append(float((d == oos).float().mean()))
            else:
                figures.append(sum(cfg.intents[int(i)] == g for i, g in zip(d, gold, strict=True)) / len(gold))
        print(f"{name:<34}{cut:>8.3f}" + "".join(f"{100 * f:>16.1f}" for f in figures))

    def cut_for(score: Callable[[torch.Tensor], torch.Tensor], threshold: bool) -> float:
        values = sorted(set(score(lg["val oos"]).tolist()))
        for c in values + [values[-1] + 1e-3]:
            c2 = c + 1e-6  # just above a value: that message is declined
            if float((decide(lg["val oos"], score, c2, threshold) == oos).float().mean()) >= args.recall:
                return c2
        return values[-1] + 1e-3

    print(f"cuts chosen on CLINC150 val ({len(sets['val oos'][0])} out-of-scope queries) for recall {args.recall}; "
          "Bitext and CLINC test measured only")
    print(f"{'score':<34}{'cut':>8}" + "".join(f"{k:>16}" for k in sets))
    row("threshold only (as trained)", None, 0.0, True)
    row("max probability", msp, cut_for(msp, False), False)
    row("energy (in-scope logits)", energy, cut_for(energy, False), False)
    row("ratio + threshold (served)", ratio, cut_for(ratio, True), True)
    print(f"served margin (nlu_config.json): {u.oos_margin}")


if __name__ == "__main__":
    main()
