"""The dialogue turn as a plain service: `Engine.handle(session_id, message, customer_id)`.

Collaborators are passed in (state store, understander, linker, retriever, verbalizer, clock, shop
examples) and chosen in one place, `build_engine(settings)`. The engine holds no conversation in
memory: each turn loads the session from Redis, decides, answers and saves it back, so any worker
can serve any turn and a restart loses nothing. Before a message is understood, the shop examples
are brought up to date (nlu/example_store.py; a check every SHOP_EXAMPLES_REFRESH_S at most).

One turn:
1. load the session (or start one; an id that is unknown, expired or someone else's raises
   `SessionNotFound`), understand and link the message;
2. a pending action is carried out on `affirm`, dropped on `deny` (action_cancelled) or on a
   topic change (noted in the reply);
3. context resolution (qa/context.py): clarification answers, pronouns, ellipsis;
4. hand-off on complaint, a request for a person, clearly negative sentiment, or a second failed
   turn in a row; otherwise a clarifying question for an ambiguous mention, or intent -> named
   query -> facts (qa/retrieval.py: the intent's handler, qa/registry.py);
5. the verbalizer words the `Retrieval`; the state is saved; a `TurnResult` is returned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from common.errors import ConfigError, InvalidMessage, KGQAError
from common.settings import Settings
from nlu.labels import FAMILY_OF, INTENTS
from nlu.types import Entity, Understanding
from qa import actions, handoff
from qa.context import CONTENT_FAMILIES, RECENT_PRODUCTS, Resolution, ref_to_entity, resolve
from qa.facts import ActionCancelledFact, ActionDroppedFact, CandidateFact, Fact, OrderFact, OrderOptionFact
from qa.prompts import AskFor, NewAddress, WhichOne, WhichOrder
from qa.retrieval import Outcome, ProcedureSearch, Retriever
from qa.state import DialogueState, PendingClarification, SessionStore, TurnRecord, utcnow_iso
from qa.templates import suggestions, variant_seed
from qa.types import IntentOut, Reply, Retrieval, Turn, TurnResult

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000
HISTORY_TURNS = 10




# -- collaborators -------------------------------------------------------------------------------
class Understander(Protocol):
    def understand(self, text: str) -> Understanding: ...


class Linker(Protocol):
    def link(self, understanding: Understanding) -> Understanding: ...


class Verbalizer(Protocol):
    def verbalize(self, retrieval: Retrieval, turns: Sequence[Turn], *, customer_id: str | None) -> Reply: ...

    def stream(self, retrieval: Retrieval, turns: Sequence[Turn], *, customer_id: str | None
               ) -> Iterator[str | Reply]: ...


class ExampleRefresher(Protocol):
    """Keeps the understander's shop examples current (nlu/example_store.py `ExampleSync`); never raises."""

    def refresh(self, force: bool = False) -> bool: ...


@dataclass
class _Prepared:
    state: DialogueState
    message: str
    customer_id: str | None
    intent: str
    confidence: float
    outcome: Outcome
    history: list[Turn]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Engine:
    def __init__(self, *, sessions: SessionStore, understander: Understander, retriever: Retriever,
                 verbalizer: Verbalizer, linker: Linker | None = None, threshold: float | None = None,
                 clock: Callable[[], datetime] | None = None, examples: ExampleRefresher | None = None) -> None:
        self.sessions = sessions
        self.understander = understander
        self.examples = examples  # refreshed before each message is understood
        self.linker = linker
        self.retriever = retriever
        self.verbalizer = verbalizer
        # one out-of-scope decision: the understander's (calibrated at training, or INTENT_THRESHOLD)
        self.threshold = understander.threshold if threshold is None else threshold
        self.clock = clock or retriever.clock or _utcnow

    # -- public ----------------------------------------------------------------------------------
    def handle(self, session_id: str | None, message: str, customer_id: str | None, *,
               caller: str | None = None) -> TurnResult:
        prep = self._prepare(session_id, message, customer_id, caller)
        reply = self.verbalizer.verbalize(prep.outcome.retrieval, prep.history, customer_id=customer_id)
        return self._finish(prep, reply)

    def stream(self, session_id: str | None, message: str, customer_id: str | None, *,
               caller: str | None = None) -> Iterator[str | TurnResult]:
        """Text chunks as the verbalizer produces them, then the `TurnResult` (the state is saved
        just before it is yielded; a consumer that stops early leaves the session unchanged)."""
        prep = self._prepare(session_id, message, customer_id, caller)
        reply: Reply | None = None
        for item in self.verbalizer.stream(prep.outcome.retrieval, prep.history, customer_id=customer_id):
            if isinstance(item, Reply):
                reply = item
            else:
                yield item
        if reply is None:
            raise KGQAError("the verbalizer ended its stream without a reply")
        yield self._finish(prep, reply)

    def close(self) -> None:
        """Stop the language model's worker, if the writer has one: a batching thread still inside
        torch when the interpreter exits aborts the process ("terminate called...")."""
        model = getattr(self.verbalizer, "model", None)
        if model is not None and hasattr(model, "close"):
            model.close()

    def session_turns(self, session_id: str, customer_id: str | None, *, caller: str | None = None
                      ) -> list[TurnRecord]:
        return self.sessions.load(session_id, customer_id, caller).turns

    # -- the turn --------------------------------------------------------------------------------
    def _prepare(self, session_id: str | None, message: str, customer_id: str | None,
                 caller: str | None) -> _Prepared:
        if not isinstance(message, str) or not message.strip():
            raise InvalidMessage("the message is empty")
        if len(message) > MAX_MESSAGE_CHARS:
            raise InvalidMessage(f"the message is longer than {MAX_MESSAGE_CHARS} characters")
        message = message.strip()
        state = (self.sessions.load(session_id, customer_id, caller) if session_id
                 else self.sessions.new(customer_id, caller))
        if self.examples is not None:
            self.examples.refresh()
        understanding = self.understander.understand(message)
        if self.linker is not None:
            understanding = self.linker.link(understanding)
        had_action = state.pending_action is not None
        intent, confidence, outcome = self._decide(state, understanding, message, customer_id)
        if had_action and outcome.retrieval.status in ("action_done", "action_refused"):
            # The graph was written (or the write refused): record now that the action is no longer
            # pending, so a turn that fails later (or a stream the client drops) cannot replay it.
            state = self.sessions.save(state)
        outcome.retrieval.variant = variant_seed(state.session_id, state.turn_index)
        history = state.recent_turns(HISTORY_TURNS) + [Turn(role="user", text=message)]
        return _Prepared(state, message, customer_id, intent, confidence, outcome, history)

    def _decide(self, state: DialogueState, u: Understanding, message: str,
                customer_id: str | None) -> tuple[str, float, Outcome]:
        asked, conf = u.intent.name, float(u.intent.confidence)
        if asked not in INTENTS:
            asked, conf = "out_of_scope", 0.0
            u = u.model_copy(update={"intent": u.intent.model_copy(update={"name": asked, "confidence": 0.0})})

        # 0. "out_of_scope" only for want of confidence, yet the message names a product or an order:
        #    the model's best content intent is the better guess.
        if asked == "out_of_scope" and conf < self.threshold:
            alt = next((r for r in u.ranking if r.name != "out_of_scope" and r.name in INTENTS), None)
            types = {e.type for e in u.entities}
            family = FAMILY_OF.get(alt.name) if alt else None
            if alt is not None and ((family == "products" and types & {"PRODUCT", "BRAND", "CATEGORY"})
                                    or (family in ("orders", "policies") and "ORDER_ID" in types)):
                u = u.model_copy(update={"intent": alt})
                asked, conf = alt.name, float(alt.confidence)

        # 1. a pending action: affirm executes, deny drops, anything else drops it with a note.
        dropped = None
        pending = state.pending_action
        if pending is not None:
            state.pending_action = None
            order_ent = Entity(type="ORDER_ID", text=pending.order_id, node_id=pending.order_id, score=1.0,
                               source="context")
            if asked == "affirm":
                if not customer_id or customer_id != state.customer_id:
                    return asked, conf, Outcome(Retrieval(intent=pending.intent, status="need_sign_in"), [])
                retrieval = actions.execute(self.retriever.store, pending, customer_id, self.clock())
                state.pending_clarification = None
                return asked, conf, Outcome(retrieval, [order_ent])
            if asked == "deny":
                state.pending_clarification = None
                fact = ActionCancelledFact(action=pending.kind, order_id=pending.order_id)
                return asked, conf, Outcome(Retrieval(intent=pending.intent, status="action_cancelled",
                                                      facts=[fact]), [order_ent])
            dropped = ActionDroppedFact(action=pending.kind, order_id=pending.order_id)

        # 2. "yes" to "shall I connect you with a colleague?"
        if asked == "affirm" and state.last_status == "no_answer" and state.pending_clarification is None:
            return asked, conf, self._handoff(state, u, message, "asked_for_agent", "contact_human_agent")

        # 3. context.
        res = resolve(u, state, threshold=self.threshold, fields=self.retriever.fields)
        intent, conf = res.intent, res.confidence
        if res.clarification_repeat is not None:
            state.pending_clarification = None
            outcome = self._repeat_clarification(res.clarification_repeat, res)
            return intent, conf, _with_note(outcome, dropped)
        state.pending_clarification = None
        if conf < self.threshold and not res.from_clarification and not res.elliptical and \
                not any(e.source == "message" and e.type != "ATTRIBUTE" for e in res.entities) and \
                intent not in ("affirm", "deny"):
            intent = "out_of_scope"

        # 4. hand-off, clarification or retrieval.
        reason = handoff.handoff_reason(intent, message)
        if reason is not None:
            return intent, conf, _with_note(self._handoff(state, u, message, reason, intent, res), dropped)
        if res.ambiguous is not None:
            outcome = self.retriever.clarify_mention(intent, conf, res.ambiguous, res.entities, field=res.asked_field)
        else:
            outcome = self.retriever.retrieve(intent, res.entities, message=message, customer_id=customer_id,
                                              state=state, address=res.address, field=res.asked_field)
        if handoff.is_failed(intent, outcome.retrieval.status):
            if state.failed_turns + 1 >= handoff.MAX_FAILED:
                return intent, conf, _with_note(
                    self._handoff(state, u, message, "failed_turns", intent, res), dropped)
        return intent, conf, _with_note(outcome, dropped)

    def _handoff(self, state: DialogueState, u: Understanding, message: str, reason: str, intent: str,
                 res: Resolution | None = None) -> Outcome:
        summary = handoff.summary(state, message, reason, intent)
        entities = res.entities if res is not None else list(u.entities)
        return Outcome(Retrieval(intent=intent, status="handoff", facts=[summary]), entities)

    def _repeat_clarification(self, pending: PendingClarification, res: Resolution) -> Outcome:
        if pending.kind == "address":
            order = pending.resolved[0].node_id if pending.resolved else ""
            retrieval = Retrieval(intent=pending.intent, status="clarify", facts=[OrderFact(order_id=order or "")],
                                  prompt=NewAddress())
        elif pending.kind == "order":
            options: list[Fact] = [OrderOptionFact(order_id=c.node_id or "", status=c.status, total=c.price,
                                                   currency=c.currency) for c in pending.candidates]
            retrieval = Retrieval(intent=pending.intent, status="clarify", facts=options, prompt=WhichOrder())
        elif pending.candidates:
            candidates: list[Fact] = [CandidateFact(node_id=c.node_id, name=c.name, label=c.label)
                                      for c in pending.candidates]
            retrieval = Retrieval(intent=pending.intent, status="clarify", facts=candidates,
                                  prompt=WhichOne(entity_type=pending.entity_type or "", mention=pending.mention,
                                                  options=[c.name for c in pending.candidates]))
        else:
            retrieval = Retrieval(intent=pending.intent, status="clarify",
                                  prompt=AskFor(question="which_product", entity_type=pending.entity_type))
        return Outcome(retrieval, [ref_to_entity(r) for r in pending.resolved], listed=list(pending.candidates),
                       clarification=pending)

    def _finish(self, prep: _Prepared, reply: Reply) -> TurnResult:
        state, outcome = prep.state, prep.outcome
        retrieval = outcome.retrieval
        status = retrieval.status

        # Order mentions keep a node only when the order was read through this customer.
        confirmed = {r.node_id for r in outcome.mentioned if r.type == "ORDER_ID"}
        if status == "action_done" or status == "action_cancelled":
            confirmed |= {e.node_id for e in outcome.entities if e.type == "ORDER_ID" and e.source == "context"}
        if outcome.action is not None:
            confirmed.add(outcome.action.order_id)
        entities = [e if e.type != "ORDER_ID" or (e.node_id and e.node_id in confirmed) else
                    e.model_copy(update={"node_id": None, "score": None, "candidates": [], "ambiguous": False})
                    for e in outcome.entities]

        # State for the next turn.
        if outcome.clarification is not None:
            state.pending_clarification = outcome.clarification
        if outcome.action is not None:
            state.pending_action = outcome.action
        for ref in outcome.mentioned:
            state.last_entities[ref.type] = ref
        if status == "ok":
            products = [r for r in outcome.mentioned if r.type == "PRODUCT"]
            state.recent_products = (products + [r for r in state.recent_products
                                                 if all(r.node_id != p.node_id for p in products)])[:RECENT_PRODUCTS]
        if outcome.listed:
            state.last_list = list(outcome.listed)
        topic = retrieval.intent if FAMILY_OF.get(retrieval.intent) in CONTENT_FAMILIES else None
        if topic and status not in ("need_sign_in",):
            state.last_intent = topic
        state.last_status = status
        if status == "handoff":
            state.handed_off, state.failed_turns = True, 0
            state.pending_action = None
            state.pending_clarification = None
        elif handoff.is_failed(prep.intent, status):
            state.failed_turns += 1
        else:
            state.failed_turns = 0
        now = utcnow_iso()
        state.turns.append(TurnRecord(role="user", text=prep.message, intent=prep.intent, at=now))
        state.turns.append(TurnRecord(role="assistant", text=reply.text, status=status, at=now))
        saved = self.sessions.save(state)

        return TurnResult(
            session_id=state.session_id, answer=reply.text,
            intent=IntentOut(name=prep.intent, confidence=round(prep.confidence, 4)),
            entities=entities, facts=retrieval.facts, handoff=status == "handoff", verbalizer=reply.verbalizer,
            suggestions=suggestions(retrieval), query_name=retrieval.query_name, status=status,
            guard_passed=reply.guard_passed, guard_reasons=list(reply.guard_reasons), llm_draft=reply.llm_draft,
            turn=sum(1 for t in saved.turns if t.role == "assistant"))


def _with_note(outcome: Outcome, dropped: ActionDroppedFact | None) -> Outcome:
    if dropped is not None:
        outcome.retrieval.facts.insert(0, dropped)
    return outcome


# -- bootstrap -----------------------------------------------------------------------------------
def build_engine(settings: Settings, *, store: Any = None, understander: Understander | None = None,
                 linker: Linker | None = None, verbalizer: Verbalizer | None = None,
                 clock: Callable[[], datetime] | None = None, examples: ExampleRefresher | None = None) -> Engine:
    """The one place the dialogue's collaborators are chosen. Builds what is not given:
    the graph store (GRAPH_URL), the session store (REDIS_URL or the embedded server), the
    understanding model (nlu/understand.py), the entity linker (nlu/linking), the verbalizer
    (LLM_BACKEND: the LLM writer with the template writer as guarded fallback, or the template
    writer alone), each behind the safety filter. Nothing is loaded here that can load later: the
    encoder (shared by the linker and procedure search) loads on first use."""
    if store is None:
        from kg.store import open_store

        store = open_store(settings)
    sessions = SessionStore.from_settings(settings, store)
    if linker is None:
        linker = _default_linker(settings, store)
    encoder_source = getattr(linker, "encoder", None)
    procedures = ProcedureSearch(
        store, settings.encoder_path, threshold=float(getattr(settings, "procedure_threshold", 0.42)),
        encoder_factory=(lambda: encoder_source.model) if hasattr(encoder_source, "model") else None)
    retriever = Retriever(store, procedures, currency=settings.store_currency, clock=clock or _utcnow)
    understander = understander or _default_understander(settings, store)
    if examples is None:
        examples = _default_examples(settings, store, understander)
    return Engine(sessions=sessions, understander=understander,
                  retriever=retriever, verbalizer=verbalizer or _default_verbalizer(settings, linker),
                  linker=linker, clock=clock, examples=examples)


def _default_understander(settings: Settings, store: Any) -> Understander:
    try:
        from nlu.understand import Understander as ModelUnderstander
    except ImportError as exc:
        raise ConfigError("no understanding model: nlu/understand.py is missing; pass `understander=`") from exc
    return ModelUnderstander.load(settings)


def _default_examples(settings: Settings, store: Any, understander: Understander) -> ExampleRefresher | None:
    """The shop examples (nlu/example_store.py), for an understander that can use them."""
    if not (hasattr(understander, "examples") and hasattr(understander, "vectors")):
        return None
    from nlu.example_store import ExampleSync

    return ExampleSync(store, understander, settings.shop_examples_refresh_s)


def _default_linker(settings: Settings, store: Any) -> Linker | None:
    try:
        from nlu.linking import EntityLinker
    except ImportError:
        log.info("nlu.linking not available; unlinked mentions use the name look-up in qa/handlers/shared.py")
        return None
    return EntityLinker.from_settings(settings, store)


def _default_verbalizer(settings: Settings, linker: Linker | None) -> Verbalizer:
    from qa.verbalizer import build_verbalizer

    verbalizer = build_verbalizer(settings)
    guard = getattr(verbalizer, "guard", None)
    if guard is not None and hasattr(linker, "catalogue_names"):
        # the guard's catalogue names follow the graph through the linker's index (no extra reads)
        guard.follow(linker.catalogue_version, linker.catalogue_names)  # type: ignore[union-attr]
    return verbalizer
