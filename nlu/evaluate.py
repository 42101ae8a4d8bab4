"""Held-out evaluation: the evaluation phrasing file filled with held-out catalog names.

Reports intent accuracy, macro-F1, per-intent precision/recall/F1, the most frequent confusions,
calibration (ECE), entity span F1 per type (exact start, end and type) and, when a linker is given,
linking accuracy. The linker hook is any callable `Understanding -> Understanding` that fills
`Entity.node_id` (nlu/linking.py provides one); gold node ids are the catalog keys the mentions
were made from (sku, brand name, category name, attribute value, order id).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import torch
from tqdm.auto import tqdm

from common.settings import REPO_ROOT
from nlu.dataset import Example
from nlu.labels import ENTITY_TYPES, INTENTS
from nlu.model import expected_calibration_error
from nlu.types import Understanding
from nlu.understand import Understander

Linker = Callable[[Understanding], Understanding]


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": tp + fn}


def _node_matches(gold: str | None, predicted: str | None) -> bool:
    return gold is not None and predicted is not None and gold.strip().lower() == predicted.strip().lower()


def evaluate(
    understander: Understander,
    examples: Sequence[Example],
    *,
    linker: Linker | None = None,
    batch_size: int = 32,
    progress: bool = True,
    max_errors: int = 40,
    seen_phrasings: set[str] | None = None,
) -> dict[str, Any]:
    """`seen_phrasings` (lower-cased training phrasings): the evaluation file was written
    independently, so short phrasings ("where is my order") also occur in training; given these,
    the report adds intent accuracy on the examples whose phrasing was never trained on."""
    preds: list[Understanding] = []
    probs: list[torch.Tensor] = []
    bar = tqdm(total=len(examples), desc="evaluating", unit="ex", disable=not progress)
    for b in range(0, len(examples), batch_size):
        chunk = [e.text for e in examples[b:b + batch_size]]
        raws = understander.predict_raw(chunk)
        for text, raw in zip(chunk, raws, strict=True):
            u = understander._to_understanding(text, raw)
            preds.append(linker(u) if linker is not None else u)
            if raw is None:
                p = torch.zeros(len(understander.config.intents))
                p[understander.config.intents.index("out_of_scope")] = 1.0
            else:
                p = raw.probs
            probs.append(p)
        bar.update(len(chunk))
    bar.close()

    # -- intents
    gold = [e.intent for e in examples]
    pred = [u.intent.name for u in preds]
    n = len(examples)
    correct = sum(g == p for g, p in zip(gold, pred, strict=True))
    argmax_correct = sum(g == (u.ranking[0].name if u.ranking else u.intent.name)
                         for g, u in zip(gold, preds, strict=True))
    per_intent: dict[str, dict[str, float]] = {}
    for intent in INTENTS:
        tp = sum(g == intent and p == intent for g, p in zip(gold, pred, strict=True))
        fp = sum(g != intent and p == intent for g, p in zip(gold, pred, strict=True))
        fn = sum(g == intent and p != intent for g, p in zip(gold, pred, strict=True))
        if tp + fn:
            per_intent[intent] = _prf(tp, fp, fn)
    macro_f1 = sum(v["f1"] for v in per_intent.values()) / max(1, len(per_intent))
    confusions = Counter((g, p) for g, p in zip(gold, pred, strict=True) if g != p)
    idx = {name: i for i, name in enumerate(understander.config.intents)}
    labels = torch.tensor([idx[g] for g in gold]) if gold else torch.zeros(0, dtype=torch.long)
    ece = expected_calibration_error(torch.stack(probs), labels) if probs else 0.0

    # -- entities
    counts = {t: [0, 0, 0] for t in ENTITY_TYPES}  # tp, fp, fn
    link_total = link_right = link_right_given_span = link_spans = link_flagged = 0
    errors: list[dict[str, Any]] = []
    for ex, u in zip(examples, preds, strict=True):
        g_spans = {(s.start, s.end, s.type): s for s in ex.spans}
        p_spans = {(e.start, e.end, e.type): e for e in u.entities if e.start is not None}
        for key in g_spans.keys() & p_spans.keys():
            counts[key[2]][0] += 1
        for key in p_spans.keys() - g_spans.keys():
            counts.setdefault(key[2], [0, 0, 0])[1] += 1
        for key in g_spans.keys() - p_spans.keys():
            counts[key[2]][2] += 1
        if linker is not None:
            for key, span in g_spans.items():
                if span.node_id is None:
                    continue
                link_total += 1
                ent = p_spans.get(key)
                if ent is not None:
                    link_spans += 1
                    if _node_matches(span.node_id, ent.node_id):
                        link_right += 1
                        link_right_given_span += 1
                    elif ent.ambiguous and not ent.node_id and any(
                            _node_matches(span.node_id, c.node_id) for c in ent.candidates):
                        # a mention naming only a model line ("the aurora x2"), reported as ambiguous
                        # with the product it was made from among the candidates: the dialogue asks
                        # which one, which is the right outcome, not a miss
                        link_right += 1
                        link_right_given_span += 1
                        link_flagged += 1
        if (u.intent.name != ex.intent or g_spans.keys() != p_spans.keys()) and len(errors) < max_errors:
            errors.append({
                "text": ex.text, "gold_intent": ex.intent, "predicted_intent": u.intent.name,
                "confidence": round(u.intent.confidence, 3),
                "gold_entities": [(ex.text[s:e], t) for s, e, t in sorted(g_spans)],
                "predicted_entities": [(e.text, e.type) for e in u.entities],
            })
    per_type = {t: _prf(*c) for t, c in counts.items() if sum(c)}
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    report: dict[str, Any] = {
        "examples": n,
        "intent_accuracy": round(correct / n, 4) if n else 0.0,
        "intent_accuracy_before_threshold": round(argmax_correct / n, 4) if n else 0.0,
        "intent_macro_f1": round(macro_f1, 4),
        "intent_threshold": understander.threshold,
        "temperature": round(understander.config.temperature, 4),
        "int8_feed_forward": understander.quantized,
        "calibration_ece": round(ece, 4),
        "per_intent": per_intent,
        "confusions": [{"gold": g, "predicted": p, "count": c} for (g, p), c in confusions.most_common(20)],
        "entity_f1": _prf(tp, fp, fn)["f1"],
        "entity_micro": _prf(tp, fp, fn),
        "entity_per_type": per_type,
        "errors": errors,
    }
    if seen_phrasings is not None:
        novel = [i for i, e in enumerate(examples) if e.phrasing.lower().strip() not in seen_phrasings]
        report["novel_phrasings"] = {
            "examples": len(novel),
            "intent_accuracy": round(sum(gold[i] == pred[i] for i in novel) / len(novel), 4) if novel else 0.0,
        }
    if linker is not None:
        report["linking"] = {
            "accuracy": round(link_right / link_total, 4) if link_total else 0.0,
            "accuracy_given_span": round(link_right_given_span / link_spans, 4) if link_spans else 0.0,
            "mentions": link_total,
            "flagged_ambiguous": link_flagged,
        }
    return report


def format_report(report: dict[str, Any], *, confusions: int = 12) -> str:
    lines = [
        f"held-out examples        {report['examples']}",
        f"intent accuracy          {report['intent_accuracy']:.4f}  "
        f"(before the {report['intent_threshold']} threshold: {report['intent_accuracy_before_threshold']:.4f})",
        f"intent macro-F1          {report['intent_macro_f1']:.4f}",
    ]
    if "novel_phrasings" in report:
        nv = report["novel_phrasings"]
        lines.append(f"  on phrasings never trained on: accuracy {nv['intent_accuracy']:.4f} ({nv['examples']} examples)")
    lines += [
        f"calibration ECE          {report['calibration_ece']:.4f}  (temperature {report['temperature']})",
        f"entity span F1 (micro)   {report['entity_f1']:.4f}",
    ]
    if "linking" in report:
        lk = report["linking"]
        lines.append(f"linking accuracy         {lk['accuracy']:.4f}  (given a correct span: "
                     f"{lk['accuracy_given_span']:.4f}; {lk['mentions']} mentions, of which "
                     f"{lk.get('flagged_ambiguous', 0)} rightly reported ambiguous with the product among the candidates)")
    lines += ["", f"{'entity type':<14}{'precision':>10}{'recall':>10}{'F1':>10}{'support':>10}"]
    for t, v in report["entity_per_type"].items():
        lines.append(f"{t:<14}{v['precision']:>10.4f}{v['recall']:>10.4f}{v['f1']:>10.4f}{v['support']:>10}")
    lines += ["", f"{'intent':<26}{'precision':>10}{'recall':>10}{'F1':>10}{'support':>10}"]
    for name, v in report["per_intent"].items():
        lines.append(f"{name:<26}{v['precision']:>10.4f}{v['recall']:>10.4f}{v['f1']:>10.4f}{v['support']:>10}")
    if report["confusions"]:
        lines += ["", "most frequent confusions (gold -> predicted: count)"]
        for c in report["confusions"][:confusions]:
            lines.append(f"  {c['gold']} -> {c['predicted']}: {c['count']}")
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    tmp.replace(out)
    return out


def predict_intents(understander: Understander, texts: Sequence[str], *, batch_size: int = 64,
                    progress: bool = False, desc: str = "predicting") -> list[str]:
    """The intent each text is answered with (after the out-of-scope threshold). An int8 model
    reads a message differently beside others (activations are scaled per batch), so it is asked
    one message at a time, as the chat serves it."""
    if understander.quantized:
        batch_size = 1
    out: list[str] = []
    bar = tqdm(total=len(texts), desc=desc, unit="ex", disable=not progress)
    for b in range(0, len(texts), batch_size):
        chunk = list(texts[b:b + batch_size])
        out.extend(u.intent.name for u in understander.understand_batch(chunk, batch_size=batch_size))
        bar.update(len(chunk))
    bar.close()
    return out


def evaluate_external(understander: Understander, examples: Sequence[Example], *, progress: bool = False,
                      ) -> dict[str, Any]:
    """Intent figures (and order-number span F1 where the file has spans) on an outside set."""
    from nlu.external import intent_figures

    report = intent_figures([e.intent for e in examples],
                            predict_intents(understander, [e.text for e in examples], progress=progress))
    with_spans = [e for e in examples if e.spans]
    if with_spans:
        tp = fp = fn = 0
        types = {s.type for e in with_spans for s in e.spans}
        for e, u in zip(with_spans, understander.understand_batch([e.text for e in with_spans]), strict=True):
            gold = {(s.start, s.end, s.type) for s in e.spans}
            pred = {(x.start, x.end, x.type) for x in u.entities if x.type in types}
            tp, fp, fn = tp + len(gold & pred), fp + len(pred - gold), fn + len(gold - pred)
        report["entity_span_f1"] = {"types": sorted(types), **_prf(tp, fp, fn)}
    return report


DEFAULT_SHOP_LABELS = REPO_ROOT / "eval" / "clinc150" / "oos_test_shop_labels.jsonl"


def evaluate_clinc(understander: Understander, clinc_path: str | Path, split: str = "test", *,
                   progress: bool = False, shop_labels: str | Path | None = DEFAULT_SHOP_LABELS) -> dict[str, Any]:
    """CLINC150's protocol on one split; for the test split, `shop_labels` (by default the
    committed file, eval/clinc150/README.md; None: none) splits the out-of-scope figure."""
    from nlu.external import clinc_report, read_clinc, read_shop_labels

    data = read_clinc(clinc_path, split)
    labels = read_shop_labels(shop_labels, data.oos) if split == "test" and shop_labels is not None else None
    predicted = {name: predict_intents(understander, [e.text for e in part], progress=progress, desc=name)
                 for name, part in (("in_scope", data.in_scope), ("other_domain", data.other_domain),
                                    ("oos", data.oos))}
    return {"split": split, **clinc_report(data, predicted, labels)}


def format_external(name: str, report: dict[str, Any]) -> str:
    lines = [f"{name}: {report['examples']} examples, accuracy {report['accuracy']:.4f}, "
             f"macro-F1 {report['macro_f1']:.4f}, declined as out_of_scope {report['declined']:.4f}"]
    if "entity_span_f1" in report:
        ef = report["entity_span_f1"]
        lines.append(f"  entity span F1 ({', '.join(ef['types'])}): {ef['f1']:.4f}")
    weakest = sorted(report["per_intent"].items(), key=lambda kv: kv[1]["f1"])[:6]
    lines.append("  weakest intents (F1): " + ", ".join(f"{k} {v['f1']:.2f}" for k, v in weakest))
    if report["confusions"]:
        lines.append("  top confusions: " + "; ".join(
            f"{c['gold']} -> {c['predicted']} x{c['count']}" for c in report["confusions"][:8]))
    return "\n".join(lines)


def format_clinc(report: dict[str, Any]) -> str:
    return (f"CLINC150 {report['split']}: out-of-scope declined {report['oos_recall']:.4f} "
            f"({report['oos_examples']} oos queries), other-domain declined {report['other_domain_recall']:.4f} "
            f"({report['other_domain_examples']}), out-of-scope precision {report['oos_precision']:.4f}, "
            f"in-scope accuracy {report['in_scope_accuracy']:.4f} ({report['in_scope_examples']} mapped queries)"
            + ("" if "oos_shop_examples" not in report else
               f"\n  of the out-of-scope queries, declined: {report['oos_not_shop_declined']:.4f} of the "
               f"{report['oos_not_shop_examples']} a general shop would not take, {report['oos_shop_declined']:.4f} "
               f"of the {report['oos_shop_examples']} it should (eval/clinc150/README.md)"))
