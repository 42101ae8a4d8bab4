"""Evaluation on a whole other shop: its own import files, questions and conversations whose gold
answers were computed from its data by a script (e.g. eval/shops/bookshop, written without
reading qa/ or nlu/).

    ./kgqa qa evaluate --set eval/shops/bookshop [--limit N] [--json FILE]

A set directory holds `data/` (import files, DESIGN section 3), `today.txt` (the date its
answers were computed for), `questions.jsonl` and `dialogues.jsonl`:

    {"id", "text", "customer_id", "intent", "expect": {"contains": [...], "contains_any": [[...]],
     "not_contains": [...], "clarify": bool, "unknown": bool}, "covers", "source": {"skus": [...]}}
    {"id", "customer_id", "turns": [{"text", "intent", "expect", "customer_id"?}], "covers"}

The shop is imported into a throwaway embedded FalkorDB (a temporary directory, a free port), so
the graph the product serves is never touched; the real engine, model and linker answer, with
"today" pinned. A turn is right when every `contains` string and one of each `contains_any` group
is in the answer (case-insensitive), no `not_contains` string is, the answer asks back when
`clarify` says it should (status `clarify`), and says it does not have the fact when `unknown`
says so. A conversation is right when all its turns are. Linking: the share of single questions
naming products (`source.skus`) whose reply links a mention to one of them (or, for a question
that should be asked back, offers them as candidates). Hallucinations: answers holding a number or
identifier found neither in the facts nor in the question (qa/evaluate.py `unsupported_tokens`).
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from common.errors import KGQAError
from common.settings import Settings
from qa.evaluate import unsupported_tokens
from qa.types import TurnResult

_UNKNOWN = re.compile(r"\b(do not|don't|dont|doesn't|does not) (have|hold|know)\b|\bno information\b|"
                      r"\bnot (listed|recorded|in our (data|records))\b", re.IGNORECASE)


class EvalSetError(KGQAError):
    code = "eval_set_error"


@dataclass
class TurnCheck:
    item: str
    turn: int
    text: str
    covers: str
    answer: str
    status: str
    intent: str
    gold_intent: str
    problems: list[str] = field(default_factory=list)
    linked: bool | None = None  # None: the question names no product
    unsupported: list[str] = field(default_factory=list)
    session: str = ""

    @property
    def right(self) -> bool:
        return not self.problems


@dataclass
class SetReport:
    questions: list[TurnCheck]
    dialogues: dict[str, list[TurnCheck]]

    @property
    def figures(self) -> dict[str, Any]:
        turns = self.questions + [t for ts in self.dialogues.values() for t in ts]
        linked = [q.linked for q in self.questions if q.linked is not None]
        by_covers: dict[str, list[bool]] = {}
        for t in turns:
            by_covers.setdefault(t.covers, []).append(t.right)
        return {
            "questions": len(self.questions),
            "answers_right": _rate(q.right for q in self.questions),
            "dialogues": len(self.dialogues),
            "dialogues_right": _rate(all(t.right for t in ts) for ts in self.dialogues.values()),
            "dialogue_turns_right": _rate(t.right for ts in self.dialogues.values() for t in ts),
            "intent_accuracy": _rate(t.intent == t.gold_intent for t in turns),
            "linking": _rate(linked) if linked else None,
            "linking_mentions": len(linked),
            "hallucinated_answers": sum(1 for t in turns if t.unsupported),
            "by_covers": {k: {"turns": len(v), "right": _rate(v)} for k, v in sorted(by_covers.items())},
        }

    def failures(self) -> list[TurnCheck]:
        return [t for t in self.questions + [t for ts in self.dialogues.values() for t in ts] if not t.right]


def _rate(values: Any) -> float:
    vals = list(values)
    return round(sum(bool(v) for v in vals) / len(vals), 4) if vals else 0.0


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise EvalSetError(f"{path} does not exist")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise EvalSetError(f"{path}:{n}: not JSON: {exc.msg}") from None
    return out


@dataclass
class EvalSet:
    root: Path
    today: date
    questions: list[dict[str, Any]]
    dialogues: list[dict[str, Any]]

    @classmethod
    def load(cls, root: str | Path) -> EvalSet:
        root = Path(root)
        if not (root / "data").is_dir():
            raise EvalSetError(f"{root} has no data/ directory of import files")
        try:
            today = date.fromisoformat((root / "today.txt").read_text(encoding="utf-8").strip())
        except (OSError, ValueError) as exc:
            raise EvalSetError(f"{root}/today.txt must hold the date the answers were computed for: {exc}") from None
        return cls(root, today, _lines(root / "questions.jsonl"), _lines(root / "dialogues.jsonl"))


def check(text: str, expect: dict[str, Any], res: TurnResult) -> list[str]:
    """What is wrong with `res` as an answer to `text` (empty: right)."""
    answer = res.answer.lower()
    problems = [f"missing {s!r}" for s in expect.get("contains", []) if s.lower() not in answer]
    for group in expect.get("contains_any", []):
        if not any(s.lower() in answer for s in group):
            problems.append(f"none of {group!r}")
    problems += [f"should not say {s!r}" for s in expect.get("not_contains", []) if s.lower() in answer]
    if expect.get("clarify") and res.status != "clarify":
        problems.append(f"should ask which one (status {res.status})")
    if not expect.get("clarify") and res.status == "clarify":
        problems.append("asked back instead of answering")
    if expect.get("unknown") and not _UNKNOWN.search(res.answer):
        problems.append("should say the shop does not have that information")
    return problems


def _linked(res: TurnResult, skus: list[str], clarify: bool) -> bool:
    """Whether the reply found the question's products: a reported entity linked to one of them,
    or (a clarifying question, or an answer given for every product a mention fits: "who wrote
    dune?" for both editions) a candidate or a fact of the reply that is one of them."""
    wanted = {s.lower() for s in skus}
    for e in res.entities:
        if e.node_id and e.node_id.lower() in wanted:
            return True
        if clarify and any(c.node_id.lower() in wanted for c in e.candidates):
            return True
    if clarify or res.status == "ok":  # the facts the reply was written from name the products
        return any(str(getattr(f, "sku", "")).lower() in wanted for f in res.facts)
    return False


def _turn(engine: Any, item: str, idx: int, covers: str, text: str, gold_intent: str, expect: dict[str, Any],
          session: str | None, customer: str | None, skus: list[str] | None) -> TurnCheck:
    try:
        res = engine.handle(session, text, customer)
    except KGQAError as exc:  # e.g. a session the engine will not continue: a wrong turn, not a crash
        return TurnCheck(item=item, turn=idx, text=text, covers=covers, answer="", status="error", intent="",
                         gold_intent=gold_intent, problems=[f"error: {exc.message}"], session=session or "",
                         linked=False if skus else None)
    out = TurnCheck(item=item, turn=idx, text=text, covers=covers, answer=res.answer, status=res.status,
                    intent=res.intent.name, gold_intent=gold_intent, problems=check(text, expect, res),
                    unsupported=unsupported_tokens(res.answer, res.facts, text), session=res.session_id)
    if skus:
        out.linked = _linked(res, skus, bool(expect.get("clarify")))
    return out


def run(engine: Any, data: EvalSet, *, limit: int | None = None, progress: bool = True) -> SetReport:
    questions = data.questions[:limit] if limit else data.questions
    dialogues = data.dialogues[: max(1, limit // 5)] if limit else data.dialogues
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(questions) + sum(len(d["turns"]) for d in dialogues), desc="evaluating",
                   unit="turn", file=sys.stderr)
    checked: list[TurnCheck] = []
    for q in questions:
        checked.append(_turn(engine, q["id"], 0, q.get("covers", ""), q["text"], q["intent"], q["expect"], None,
                             q.get("customer_id"), (q.get("source") or {}).get("skus")))
        if bar:
            bar.update(1)
    convs: dict[str, list[TurnCheck]] = {}
    for d in dialogues:
        session, turns = None, []
        for idx, t in enumerate(d["turns"]):
            customer = t.get("customer_id", d.get("customer_id"))
            tc = _turn(engine, d["id"], idx, d.get("covers", ""), t["text"], t["intent"], t["expect"], session,
                       customer, None)
            session = tc.session
            turns.append(tc)
            if bar:
                bar.update(1)
        convs[d["id"]] = turns
    if bar:
        bar.close()
    return SetReport(checked, convs)


@contextmanager
def shop_engine(data: EvalSet, settings: Settings | None = None) -> Iterator[Any]:
    """The real engine over the set's shop, imported into a throwaway embedded FalkorDB."""
    from common import bootstrap
    from kg.backends.embedded import EmbeddedFalkorDB

    pinned = datetime(data.today.year, data.today.month, data.today.day, 12, tzinfo=UTC)
    with tempfile.TemporaryDirectory(prefix="kgqa-eval-") as tmp:
        server = EmbeddedFalkorDB(Path(tmp) / "db", appendonly=False)
        server.ensure_running()
        try:
            base = (settings or Settings()).model_dump()
            base.update(graph_url="falkordb://embedded", data_dir=server.data_dir, graph_name="evalshop",
                        redis_url=None)
            shop_settings = Settings(_env_file=None, **base)
            app = bootstrap.build(shop_settings, clock=lambda: pinned)
            try:
                report = app.catalog.import_path(data.root / "data", progress=False)
                if report.errors:
                    raise EvalSetError(f"the set's data does not import cleanly: {report.errors[0]}")
                yield app.engine.get()
            finally:
                app.close()
        finally:
            server.stop()


def print_report(report: SetReport, out: Any = None, failures: int = 40) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out)
    table = Table(title="Evaluation shop")
    table.add_column("figure")
    table.add_column("value", justify="right")
    figs = report.figures
    for k, v in figs.items():
        if k == "by_covers":
            continue
        table.add_row(k.replace("_", " "), "-" if v is None else (f"{v:.1%}" if isinstance(v, float) else str(v)))
    for k, v in figs["by_covers"].items():
        table.add_row(f"  {k} ({v['turns']} turns)", f"{v['right']:.1%}")
    console.print(table)
    kinds = Counter(p.split(" ")[0] for t in report.failures() for p in t.problems)
    console.print(f"problems by kind: {dict(kinds)}")
    for t in report.failures()[:failures]:
        console.print(f"[bold]{t.item}[/] turn {t.turn} ({t.covers}, {t.gold_intent} -> {t.intent}): {t.text!r}\n"
                      f"  -> {t.answer[:220]!r}\n  " + "; ".join(t.problems), markup=True, highlight=False)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Evaluate the dialogue on another shop's data (qa/shop_eval.py).")
    ap.add_argument("--set", dest="set_dir", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=None, help="Only the first N questions (and N/5 conversations).")
    ap.add_argument("--json", dest="json_out", type=Path, default=None,
                    help="Also write the figures and every failure here.")
    ap.add_argument("--failures", type=int, default=40, help="How many failures to print.")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    data = EvalSet.load(args.set_dir)
    with shop_engine(data) as engine:
        report = run(engine, data, limit=args.limit, progress=not args.no_progress)
    print_report(report, failures=args.failures)
    if args.json_out:
        args.json_out.write_text(json.dumps({"figures": report.figures, "failures": [
            {"item": t.item, "turn": t.turn, "text": t.text, "answer": t.answer, "status": t.status,
             "intent": t.intent, "gold_intent": t.gold_intent, "problems": t.problems, "covers": t.covers}
            for t in report.failures()]}, indent=2))
    return 0
