"""Outside data: intent sets written by nobody on this team, read for measuring (and CLINC150's
training splits, also for training).

Two readers:
- `read_jsonl`: any JSON Lines file of `{"text", "intent"}` objects (extra keys ignored; an
  `entities` list of `{type, start, end}` spans is kept, so order-number spans are scored too).
  The Bitext development file is one; it is only ever measured on, never trained on.
- `read_clinc`: CLINC150's `data_full.json` (Larson et al., EMNLP 2019; CC BY 3.0). Almost all of
  its 150 intents are outside a shop's scope, so they are `out_of_scope` here; the few a shop
  answers are mapped to ours (`CLINC_MAP`), and the ones a shop might or might not answer are
  dropped (`CLINC_DROPPED`), from training and measuring alike.

`clinc_report` follows CLINC's protocol with a shop's label set: in-scope accuracy (the mapped
intents), out-of-scope recall on `oos_test` and on the other-domain intents' test queries, and
out-of-scope precision over the whole split.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import NLUError
from nlu.dataset import Example, Span
from nlu.labels import ENTITY_TYPES, INTENTS

OUT_OF_SCOPE = "out_of_scope"

# CLINC intents that a shop's assistant answers, and the intent they are here.
CLINC_MAP: dict[str, str] = {
    "order_status": "track_order",
    "order": "place_order",
    "greeting": "greeting",
    "goodbye": "goodbye",
    "thank_you": "thanks",
    "yes": "affirm",
    "no": "deny",
}
# Neither clearly a shop's business nor clearly not: left out of training and measuring.
CLINC_DROPPED: frozenset[str] = frozenset({
    "card_declined",  # in a shop chat this is a payment problem
    "damaged_card", "pin_change", "account_blocked",  # read as a shop account by some shoppers
    "cancel", "maybe", "repeat",  # dialogue moves ("cancel that") a shop bot treats as deny / other
    "shopping_list", "shopping_list_update",  # a list could be a shop's wish list
    "user_name", "change_user_name", "what_can_i_ask_you",
    "redeem_rewards", "rewards_balance",  # loyalty points exist in some shops
})


@dataclass(frozen=True)
class ClincSplit:
    in_scope: list[Example]  # mapped to a shop intent
    other_domain: list[Example]  # CLINC intents outside a shop's scope: gold out_of_scope
    oos: list[Example]  # CLINC's own out-of-scope queries: gold out_of_scope

    @property
    def all(self) -> list[Example]:
        return [*self.in_scope, *self.other_domain, *self.oos]


def read_jsonl(path: str | Path) -> list[Example]:
    """Examples from a JSONL file of `{"text", "intent"[, "entities"]}`; a bad line is an NLUError
    naming the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise NLUError(f"{path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise NLUError(f"{path} is not UTF-8: {exc}") from None
    out: list[Example] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise NLUError(f"{path}:{n}: not JSON: {exc.msg}") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not isinstance(row.get("intent"), str):
            raise NLUError(f"{path}:{n}: each line needs a string 'text' and a string 'intent'")
        if row["intent"] not in INTENTS:
            raise NLUError(f"{path}:{n}: unknown intent {row['intent']!r}")
        spans = []
        for ent in row.get("entities") or []:
            if (isinstance(ent, dict) and ent.get("type") in ENTITY_TYPES and isinstance(ent.get("start"), int)
                    and isinstance(ent.get("end"), int) and 0 <= ent["start"] < ent["end"] <= len(row["text"])):
                spans.append(Span(ent["start"], ent["end"], ent["type"]))
        out.append(Example(text=row["text"], intent=row["intent"], spans=tuple(spans), phrasing=row["text"],
                           tagged=False))
    if not out:
        raise NLUError(f"{path} holds no examples")
    return out


def _clinc_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "data_full.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NLUError(f"{path} does not exist (CLINC150's data_full.json)") from None
    except json.JSONDecodeError as exc:
        raise NLUError(f"{path} is not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or "oos_test" not in data:
        raise NLUError(f"{path} is not CLINC150's data_full.json (no oos_test split)")
    return data


def read_clinc(path: str | Path, split: str = "test") -> ClincSplit:
    """One CLINC150 split (`train`, `val` or `test`, with its `oos_` part) in this shop's labels."""
    if split not in ("train", "val", "test"):
        raise NLUError(f"CLINC150 splits are train, val and test, not {split!r}")
    data = _clinc_json(path)
    in_scope: list[Example] = []
    other: list[Example] = []
    for text, intent in data[split]:
        if intent in CLINC_DROPPED:
            continue
        if intent in CLINC_MAP:
            in_scope.append(Example(text=text, intent=CLINC_MAP[intent], phrasing=text, tagged=False))
        else:
            other.append(Example(text=text, intent=OUT_OF_SCOPE, phrasing=f"clinc:{intent}", tagged=False))
    oos = [Example(text=text, intent=OUT_OF_SCOPE, phrasing="clinc:oos", tagged=False) for text, _ in data[f"oos_{split}"]]
    return ClincSplit(in_scope=in_scope, other_domain=other, oos=oos)


def intent_figures(gold: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the gold intents present, per-intent recall and the top confusions."""
    n = len(gold)
    per: dict[str, dict[str, float]] = {}
    for intent in sorted(set(gold)):
        tp = sum(g == intent and p == intent for g, p in zip(gold, pred, strict=True))
        fp = sum(g != intent and p == intent for g, p in zip(gold, pred, strict=True))
        fn = sum(g == intent and p != intent for g, p in zip(gold, pred, strict=True))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        per[intent] = {"precision": round(prec, 4), "recall": round(rec, 4),
                       "f1": round(2 * prec * rec / (prec + rec), 4) if prec + rec else 0.0, "support": tp + fn}
    confusions: dict[tuple[str, str], int] = {}
    for g, p in zip(gold, pred, strict=True):
        if g != p:
            confusions[(g, p)] = confusions.get((g, p), 0) + 1
    top = sorted(confusions.items(), key=lambda kv: -kv[1])[:15]
    return {
        "examples": n,
        "accuracy": round(sum(g == p for g, p in zip(gold, pred, strict=True)) / n, 4) if n else 0.0,
        "macro_f1": round(sum(v["f1"] for v in per.values()) / len(per), 4) if per else 0.0,
        "declined": round(sum(p == OUT_OF_SCOPE for p in pred) / n, 4) if n else 0.0,
        "per_intent": per,
        "confusions": [{"gold": g, "predicted": p, "count": c} for (g, p), c in top],
    }


def read_shop_labels(path: str | Path, oos: Sequence[Example]) -> list[str]:
    """The `shop` / `not_shop` label of each `oos` query (eval/clinc150/README.md), checked
    against the queries' texts: a file for another copy or order of CLINC150 is an NLUError."""
    path = Path(path)
    labels: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise NLUError(f"{path}: cannot read the shop labels: {exc.strerror or exc}") from None
    if len(lines) != len(oos):
        raise NLUError(f"{path}: {len(lines)} labels for {len(oos)} out-of-scope queries")
    for n, (line, ex) in enumerate(zip(lines, oos, strict=True), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise NLUError(f"{path}:{n}: not JSON: {exc.msg}") from None
        if row.get("sha1") != hashlib.sha1(ex.text.encode("utf-8")).hexdigest()[:10] or \
                row.get("label") not in ("shop", "not_shop"):
            raise NLUError(f"{path}:{n}: does not label query {n - 1} of this copy of CLINC150 ({ex.text[:40]!r})")
        labels.append(row["label"])
    return labels


def clinc_report(gold_pred: ClincSplit, predicted: dict[str, list[str]],
                 shop_labels: Sequence[str] | None = None) -> dict[str, Any]:
    """`predicted` holds the predicted intents for `in_scope`, `other_domain` and `oos`, in order;
    `shop_labels` (one per oos query) splits the out-of-scope recall into the queries a general
    shop's assistant should not take and those it should (eval/clinc150/README.md)."""
    ins, oth, oos = predicted["in_scope"], predicted["other_domain"], predicted["oos"]
    gold_in = [e.intent for e in gold_pred.in_scope]
    declined_true = sum(p == OUT_OF_SCOPE for p in oth) + sum(p == OUT_OF_SCOPE for p in oos)
    declined_all = declined_true + sum(p == OUT_OF_SCOPE for p in ins)
    return {
        "in_scope_examples": len(ins),
        "in_scope_accuracy": round(sum(g == p for g, p in zip(gold_in, ins, strict=True)) / len(ins), 4) if ins else 0.0,
        "oos_examples": len(oos),
        "oos_recall": round(sum(p == OUT_OF_SCOPE for p in oos) / len(oos), 4) if oos else 0.0,
        "other_domain_examples": len(oth),
        "other_domain_recall": round(sum(p == OUT_OF_SCOPE for p in oth) / len(oth), 4) if oth else 0.0,
        "oos_precision": round(declined_true / declined_all, 4) if declined_all else 0.0,
        **({} if shop_labels is None else _split_by_label(oos, shop_labels)),
    }


def _split_by_label(oos: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label in ("not_shop", "shop"):
        part = [p for p, lab in zip(oos, labels, strict=True) if lab == label]
        out[f"oos_{label}_examples"] = len(part)
        out[f"oos_{label}_declined"] = round(sum(p == OUT_OF_SCOPE for p in part) / len(part), 4) if part else 0.0
    return out
