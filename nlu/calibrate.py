"""The out-of-scope margin: a second out-of-scope rule beside the confidence threshold, chosen on
CLINC150's validation split (never on the Bitext development file, never on a test split).

The classifier has an `out_of_scope` class and a confidence threshold. Queries from other domains
that look like shop requests often get an in-scope intent with the out_of_scope class close
behind; the margin declines a message when ln(p(best in-scope intent) / p(out_of_scope)) is below
`NLUConfig.oos_margin`, on the calibrated probabilities after shop examples are blended in (so a
shop's own examples still pull a message back in). The margin is the smallest on a 0.01 grid at
which `target_recall` of CLINC val's out-of-scope queries are declined by both rules together, the
recall the threshold is chosen for at training. `./kgqa nlu calibrate` writes it into the model's
config; `./kgqa nlu train` runs it after training when it has CLINC150.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from nlu import model as nlu_model
from nlu.understand import OUT_OF_SCOPE, Understander, oos_log_ratio


def choose_margin(ratios: Sequence[float], declined: Sequence[bool], target_recall: float,
                  hi: float = 3.0) -> float | None:
    """The smallest margin (0.01 steps up to `hi`) at which at least `target_recall` of these
    out-of-scope messages are declined: those `declined` already (out_of_scope class or below the
    threshold), plus those whose ratio is below the margin. None when none is needed (the
    threshold alone reaches the recall) or none up to `hi` reaches it."""
    n = len(ratios)
    if n == 0 or sum(declined) / n >= target_recall:
        return None
    for step in range(int(round(hi * 100)) + 1):
        m = step / 100
        if sum(1 for r, d in zip(ratios, declined, strict=True) if d or r < m) / n >= target_recall:
            return m
    return None


def calibrate(understander: Understander, clinc_path: str | Path, target_recall: float = 0.95) -> float | None:
    """The margin for this model (see the module text), measured on CLINC150 val's out-of-scope queries."""
    from nlu.external import read_clinc

    texts = [e.text for e in read_clinc(clinc_path, "val").oos]
    oos = understander.config.intents.index(OUT_OF_SCOPE)
    ratios: list[float] = []
    declined: list[bool] = []
    for b in range(0, len(texts), 64):
        for raw in understander.predict_raw(texts[b:b + 64]):
            if raw is None:
                ratios.append(-math.inf)
                declined.append(True)
                continue
            probs = understander.examples.adjust(raw.probs, raw.vector)
            conf, idx = probs.max(dim=-1)
            ratios.append(oos_log_ratio(probs, oos))
            declined.append(int(idx) == oos or float(conf) < understander.threshold)
    return choose_margin(ratios, declined, target_recall)


def write_margin(model_dir: str | Path, margin: float | None) -> Path:
    """Store the margin in the model's config file (replaced whole)."""
    path = Path(model_dir) / nlu_model.CONFIG_FILE
    config = nlu_model.read_config(model_dir)
    config.oos_margin = margin
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(config.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
