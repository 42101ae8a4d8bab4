"""End-to-end evaluation of the dialogue: single questions and multi-turn conversations from a
JSON Lines file, run against a real engine, scored turn by turn.

One line per dialogue:

    {"id": "track-shipped", "bind": {"o": "order:shipped"}, "customer": "{o.customer_id}",
     "turns": [{"say": "where is my order {o.order_id}?",
                "expect": {"intent": "track_order", "status": "ok",
                           "entities": [{"type": "ORDER_ID", "node_id": "{o.order_id}"}],
                           "answer_contains": ["{o.tracking_number}"], "answer_excludes": []}}]}

Expectations never hard-code catalog values: `bind` names nodes picked from the graph at run time
(`line:BRAND:LINE:N` the Nth variant by sku of a model line, `order:STATUS` the newest order in a
status, `other_customer:NAME` a customer other than the one bound to NAME, `co_purchased` the
product bought together most often, `missing_order` an id no order has), and `{name.field}`
placeholders are filled from them (`price` is formatted like the replies: "249.99 USD").
A turn may carry `"customer": ...` to switch identity (the session then starts anew, since a
session belongs to its creator).

Printed figures: intent accuracy, entity accuracy, answer correctness (status, entities and every
expected substring present, no excluded one), guard fallback rate (LLM replies replaced by the
template reply), and hallucination counts: replies with a number, amount or identifier found
neither in the facts nor in the shopper's message, counted on what the language model wrote
before the guard (`llm_hallucinations_before_guard`, when an LLM writer is configured) and on the
answers actually sent (`hallucinations`).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from common.errors import KGQAError
from kg.queries import get
from qa.engine import Engine, TurnResult
from qa.handlers.wording import money

DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "eval_dialogues.jsonl"


class EvalDataError(KGQAError):
    code = "eval_data_error"


# -- bindings --------------------------------------------------------------------------------------
class Binder:
    """Resolves `bind` specs to graph nodes (cached) and fills `{name.field}` placeholders."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._cache: dict[str, dict[str, Any]] = {}

    def pick(self, spec: str, bound: dict[str, dict[str, Any]]) -> dict[str, Any]:
        key = spec if not spec.startswith("other_customer:") else f"{spec}={bound[spec.split(':', 1)[1]]}"
        if key not in self._cache:
            self._cache[key] = self._pick(spec, bound)
        return self._cache[key]

    def _pick(self, spec: str, bound: dict[str, dict[str, Any]]) -> dict[str, Any]:
        kind, _, arg = spec.partition(":")
        if kind == "line":
            brand, line, n = arg.rsplit(":", 2) if arg.count(":") >= 2 else (*arg.split(":", 1), "0")
            rows = self.store.run(get("products.line_variants"), {"brand": brand, "line": line.lower(), "limit": 50})
            if len(rows) <= int(n):
                raise EvalDataError(f"bind {spec!r}: the line has {len(rows)} variants")
            return _product(rows[int(n)])
        if kind == "co_purchased":
            rows = self.store.run(get("products.eval_co_purchased"))
            if not rows:
                raise EvalDataError("bind co_purchased: no order has two products")
            return _product(rows[0])
        if kind == "order":
            rows = self.store.run(get("orders.eval_pick"), {"status": arg})
            if not rows:
                raise EvalDataError(f"bind {spec!r}: no order in that status")
            return {k: ("" if v is None else v) for k, v in rows[0].items()}
        if kind == "other_customer":
            cid = bound[arg]["customer_id"]
            rows = self.store.run(get("orders.eval_other_customer"), {"customer_id": cid})
            if not rows:
                raise EvalDataError("bind other_customer: only one customer")
            return {"customer_id": rows[0]["customer_id"]}
        if kind == "missing_order":
            return {"order_id": "99999999"}
        raise EvalDataError(f"unknown bind spec {spec!r}")

    def bind(self, specs: dict[str, str]) -> dict[str, dict[str, Any]]:
        bound: dict[str, dict[str, Any]] = {}
        for name, spec in specs.items():
            bound[name] = self.pick(spec, bound)
        return bound


def _product(row: dict[str, Any]) -> dict[str, Any]:
    attrs = row.get("attributes")
    try:
        attrs = json.loads(attrs) if isinstance(attrs, str) else (attrs or {})
    except ValueError:
        attrs = {}
    out = {k: v for k, v in attrs.items() if isinstance(v, (str, int, float))}
    out.update(sku=row["sku"], name=row.get("name"), brand=row.get("brand"), category=row.get("category"),
               line=attrs.get("model_line", ""), price=money(row.get("price"), row.get("currency")),
               stock=row.get("stock"))
    return out


_PLACEHOLDER = re.compile(r"\{(\w+)\.(\w+)\}")


def fill(value: Any, bound: dict[str, dict[str, Any]]) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            name, fld = m.group(1), m.group(2)
            if name not in bound or fld not in bound[name]:
                raise EvalDataError(f"placeholder {m.group(0)} is not bound")
            return str(bound[name][fld])
        return _PLACEHOLDER.sub(sub, value)
    if isinstance(value, list):
        return [fill(v, bound) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, bound) for k, v in value.items()}
    return value


# -- scoring ---------------------------------------------------------------------------------------
_CHUNK = re.compile(r"[A-Za-z0-9]+(?:[-_/.,][A-Za-z0-9]+)*")
_PLAIN_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
_PERCENT_AFTER = re.compile(r"\s?(?:%|percent\b)", re.IGNORECASE)


def _norm_token(tok: str) -> str:
    tok = tok.lower()
    if _PLAIN_NUMBER.fullmatch(tok):
        return f"{float(tok.replace(',', '')):g}"
    return re.sub(r"[-_/.,]", "", tok)


def _chunks(text: str) -> list[str]:
    return [c for c in _CHUNK.findall(text) if re.search(r"\d", c)]


def unsupported_tokens(answer: str, facts: list[Any], message: str) -> list[str]:
    """Numbers, amounts and identifiers of the answer found in neither the facts nor the message.
    A token is supported when it appears whole, or when every number in it does ("30-day");
    list positions 1-9 are allowed ("1) ..., 2) ..."); a percentage is supported by its fraction
    ("30% off" by a discount of 0.3), as the grounding guard reads it."""
    source = json.dumps([f.model_dump() if hasattr(f, "model_dump") else f for f in facts], default=str,
                        ensure_ascii=False) + " " + message
    known = {_norm_token(t) for t in _chunks(source)}
    known |= {f"{float(n):g}" for n in re.findall(r"\d+(?:\.\d+)?", source)}
    out = []
    for m in _CHUNK.finditer(answer):
        tok = m.group()
        if not re.search(r"\d", tok):
            continue
        n = _norm_token(tok)
        if n in known or (n.isdigit() and int(n) < 10):
            continue
        if _PERCENT_AFTER.match(answer, m.end()) and _PLAIN_NUMBER.fullmatch(tok) and \
                f"{float(tok.replace(',', '')) / 100:g}" in known:
            continue
        numbers = re.findall(r"\d+(?:\.\d+)?", tok.replace(",", ""))
        if all(f"{float(x):g}" in known or (x.isdigit() and int(x) < 10) for x in numbers):
            continue
        out.append(tok)
    return out


@dataclass
class TurnScore:
    dialogue: str
    turn: int
    message: str
    intent_ok: bool | None
    entities_ok: bool | None
    answer_ok: bool
    fallback: bool | None
    hallucinated: list[str]  # in the answer sent
    problems: list[str] = field(default_factory=list)
    answer: str = ""
    llm_hallucinated: list[str] | None = None  # in the language model's own text, before the guard


@dataclass
class Report:
    turns: list[TurnScore]

    def _rate(self, values: Iterable[bool | None]) -> float | None:
        vals = [v for v in values if v is not None]
        return round(sum(vals) / len(vals), 4) if vals else None

    @property
    def figures(self) -> dict[str, Any]:
        return {
            "dialogues": len({t.dialogue for t in self.turns}),
            "turns": len(self.turns),
            "intent_accuracy": self._rate(t.intent_ok for t in self.turns),
            "entity_accuracy": self._rate(t.entities_ok for t in self.turns),
            "answer_correctness": self._rate(t.answer_ok for t in self.turns),
            "guard_fallback_rate": self._rate(t.fallback for t in self.turns),
            "hallucinations": sum(1 for t in self.turns if t.hallucinated),
            "llm_replies": sum(1 for t in self.turns if t.llm_hallucinated is not None),
            "llm_hallucinations_before_guard": (
                sum(1 for t in self.turns if t.llm_hallucinated) if any(
                    t.llm_hallucinated is not None for t in self.turns) else None),
        }

    def failures(self) -> list[TurnScore]:
        return [t for t in self.turns if t.problems]


def score_turn(dialogue: str, idx: int, message: str, expect: dict[str, Any], res: TurnResult) -> TurnScore:
    problems: list[str] = []
    intent_ok = None
    if "intent" in expect:
        intent_ok = res.intent.name == expect["intent"]
        if not intent_ok:
            problems.append(f"intent {res.intent.name!r} != {expect['intent']!r}")
    entities_ok = None
    if expect.get("entities"):
        have = {(e.type, e.node_id) for e in res.entities}
        missing = [e for e in expect["entities"] if (e["type"], e.get("node_id")) not in have]
        entities_ok = not missing
        if missing:
            problems.append(f"entities missing {missing}; got {sorted(have, key=str)}")
    status_ok = True
    if "status" in expect:
        wanted = expect["status"] if isinstance(expect["status"], list) else [expect["status"]]
        status_ok = res.status in wanted
        if not status_ok:
            problems.append(f"status {res.status!r} not in {wanted}")
    answer = res.answer.lower()
    absent = [s for s in expect.get("answer_contains", []) if s.lower() not in answer]
    present = [s for s in expect.get("answer_excludes", []) if s.lower() in answer]
    if absent:
        problems.append(f"answer lacks {absent}")
    if present:
        problems.append(f"answer contains {present}")
    if "handoff" in expect and bool(expect["handoff"]) != res.handoff:
        problems.append(f"handoff {res.handoff}")
    answer_ok = status_ok and not absent and not present and entities_ok is not False and \
        ("handoff" not in expect or bool(expect["handoff"]) == res.handoff)
    fallback = None if res.guard_passed is None else not res.guard_passed
    hallucinated = unsupported_tokens(res.answer, res.facts, message)
    if hallucinated:
        problems.append(f"unsupported in answer: {hallucinated}")
    llm_hallucinated = None
    if res.llm_draft:
        llm_hallucinated = unsupported_tokens(res.llm_draft, res.facts, message)
    return TurnScore(dialogue, idx, message, intent_ok, entities_ok, answer_ok, fallback, hallucinated, problems,
                     res.answer, llm_hallucinated)


# -- running ---------------------------------------------------------------------------------------
def load_dialogues(path: Path) -> list[dict[str, Any]]:
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise EvalDataError(f"{path}:{n}: not JSON ({exc})") from None
        if not isinstance(item, dict) or not item.get("turns"):
            raise EvalDataError(f"{path}:{n}: a dialogue needs 'turns'")
        items.append(item)
    return items


def run(engine: Engine, dialogues: list[dict[str, Any]], *, progress: bool = True,
        on_turn: Callable[[TurnScore], None] | None = None) -> Report:
    binder = Binder(engine.retriever.store)
    scores: list[TurnScore] = []
    iterator: Iterable[dict[str, Any]] = dialogues
    if progress:
        from tqdm import tqdm

        iterator = tqdm(dialogues, desc="dialogues", unit="dialogue", file=sys.stderr)
    for item in iterator:
        bound = binder.bind(item.get("bind", {}))
        customer = fill(item.get("customer"), bound) or None
        session = None
        for idx, turn in enumerate(item["turns"]):
            if "customer" in turn:
                new_customer = fill(turn["customer"], bound) or None
                if new_customer != customer:
                    customer, session = new_customer, None
            message = fill(turn["say"], bound)
            res = engine.handle(session, message, customer)
            session = res.session_id
            score = score_turn(item.get("id", "?"), idx, message, fill(turn.get("expect", {}), bound), res)
            scores.append(score)
            if on_turn:
                on_turn(score)
    return Report(scores)


def print_report(report: Report, out: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out)
    table = Table(title="Dialogue evaluation")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for k, v in report.figures.items():
        table.add_row(k.replace("_", " "), "-" if v is None else (f"{v:.1%}" if isinstance(v, float) else str(v)))
    console.print(table)
    for t in report.failures()[:40]:
        console.print(f"[bold]{t.dialogue}[/] turn {t.turn}: {t.message!r}\n  -> {t.answer[:200]!r}\n  "
                      + "; ".join(t.problems), markup=True, highlight=False)


def main(argv: list[str] | None = None) -> int:
    import argparse

    if argv is not None and any(a == "--set" or a.startswith("--set=") for a in argv):
        from qa.shop_eval import main as shop_main  # another shop's data, questions and gold answers

        return shop_main(argv)

    from common import bootstrap
    from common.settings import Settings

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--today", type=date.fromisoformat, default=None,
                    help="Pin 'today' (the date the sample store was generated for); default: the clock.")
    ap.add_argument("--json", dest="json_out", type=Path, default=None, help="Also write the figures here.")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    clock = None
    if args.today is not None:
        pinned = datetime(args.today.year, args.today.month, args.today.day, 12, tzinfo=UTC)
        clock = lambda: pinned  # noqa: E731
    app = bootstrap.build(Settings(), clock=clock)
    try:
        report = run(app.engine.get(), load_dialogues(args.data), progress=not args.no_progress)
    finally:
        app.close()
    print_report(report)
    if args.json_out:
        args.json_out.write_text(json.dumps(report.figures, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
