"""The dialogue turn as a plain service: `Engine.handle(session_id, message, customer_id)`.

Collaborators are passed in (state store, understander, linker, retriever, verbalizer, clock, shop
examples) and chosen in one place, the composition root (common/bootstrap.py). The engine holds
no conversation in memory: each turn loads the session from Redis, decides, answers and saves it
back, so any worker can serve any turn and a restart loses nothing. Before a message is understood, the shop examples
are brought up to date (nlu/example_store.py; a check every SHOP_EXAMPLES_REFRESH_S at most).

One turn:
1. load the session (or start one; an id that is unknown, expired or someone else's raises
   `SessionNotFound`; an anonymous session continued by a signed-in customer becomes theirs, one
   way only), drop what has expired (a question or an action older than PENDING_TTL_S, a hand-off
   older than HANDOFF_TIMEOUT_S), understand and link the message; after signing in, "and now?"
   re-asks the order question that needed it;
2. while a person has the conversation (after a hand-off), the bot only says a colleague will
   reply, unless the shopper asks to go on with the bot;
3. a pending action is carried out on `affirm` (taken atomically first: of several concurrent
   "yes" one writes, every one reports the same request), dropped on `deny` (action_cancelled),
   on a new request or a topic change (noted in the reply); a "yes" after it expired says so and
   offers to start again;
4. a new order request in reply to a pending "which order?" or "what address?" is the new
   request (the question is dropped, and the reply says so); context resolution (qa/context.py):
   clarification answers, pronouns, ellipsis;
5. hand-off on complaint, a request for a person, clearly negative sentiment, or a second failed
   turn in a row; otherwise a clarifying question for an ambiguous mention, or intent -> named
   query -> facts (qa/retrieval.py: the intent's handler, qa/registry.py);
6. the verbalizer words the `Retrieval`; the state is saved (a turn that confirmed an action is
   saved even when a concurrent turn got there first); a `TurnResult` is returned.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from common.errors import InvalidMessage, KGQAError, SessionConflict
from common.text import FILLER, covers, words
from nlu.labels import FAMILY_OF, INTENTS
from nlu.types import Entity, Understanding
from qa import actions, handoff
from qa.context import CONTENT_FAMILIES, RECENT_PRODUCTS, Resolution, ref_to_entity, resolve
from qa.facts import (
    ActionCancelledFact,
    ActionDroppedFact,
    CandidateFact,
    Fact,
    OrderFact,
    OrderOptionFact,
    QuestionDroppedFact,
)
from qa.prompts import (
    ActionExpired,
    ActionTaken,
    AskFor,
    AwaitingAgent,
    BackToBot,
    NewAddress,
    WhichOne,
    WhichOrder,
)
from qa.retrieval import Outcome, Retriever
from qa.state import (
    DialogueState,
    PendingAction,
    PendingClarification,
    PendingQuestion,
    Ref,
    SessionStore,
    TurnRecord,
    utcnow_iso,
)
from qa.templates import suggestions, variant_seed
from qa.types import IntentOut, Reply, Retrieval, Turn, TurnResult
from qa.verbalizer import Verbalizer

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000
HISTORY_TURNS = 10
MERGE_ATTEMPTS = 20  # saves of a turn that confirmed an action, against concurrent turns
ACTION_WAIT_S = 10.0  # how long a second "yes" waits for the first one's outcome

HandoffEvent = Literal["opened", "returned", "timeout"]
# Requests that a pending "which order?" or "what address?" never swallows (issue 11 item 3).
_ORDER_REQUEST_FAMILIES = ("orders", "policies")
_ENTITY_TYPES = ("PRODUCT", "BRAND", "CATEGORY", "ORDER_ID")
# A message made only of these words, after signing in, asks the question that needed it again
# ("and now?", "ok I'm signed in", "I signed in, can you check now?").
_AGAIN_WORDS = frozenset("""
    and now so ok okay what about how there again try i i've ive i'm im have am just signed logged in done
    please can you could check look it up yes right well the same question did that go ahead then all set
    sign log
""".split())




# -- collaborators -------------------------------------------------------------------------------
class Understander(Protocol):
    def understand(self, text: str) -> Understanding: ...


class Linker(Protocol):
    def link(self, understanding: Understanding) -> Understanding: ...

    def link_mention(self, mention: str, type: str = "PRODUCT", *, context: Sequence[str] | str = ()) -> Entity: ...


class ExampleRefresher(Protocol):
    """Keeps the understander's shop examples current (nlu/example_store.py `ExampleSync`); never raises."""

    def refresh(self, force: bool = False) -> bool: ...


@dataclass
class _Notes:
    """What `_decide` found out beside the outcome."""

    taken: PendingAction | None = None  # an action this turn confirmed (or found confirmed already)
    expired: PendingAction | None = None  # an action whose "yes" came too late (offered again)
    event: HandoffEvent | None = None


@dataclass
class _Prepared:
    state: DialogueState
    message: str
    customer_id: str | None
    caller: str | None
    intent: str
    confidence: float
    outcome: Outcome
    history: list[Turn]
    asked: str  # the message whose question this turn answers (a re-asked one after signing in)
    notes: _Notes


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Engine:
    def __init__(self, *, sessions: SessionStore, understander: Understander, retriever: Retriever,
                 verbalizer: Verbalizer, linker: Linker | None = None, threshold: float | None = None,
                 clock: Callable[[], datetime] | None = None, examples: ExampleRefresher | None = None,
                 pending_ttl_s: float = 300, handoff_timeout_s: float = 1800,
                 action_wait_s: float = ACTION_WAIT_S) -> None:
        self.sessions = sessions
        self.understander = understander
        self.examples = examples  # refreshed before each message is understood
        self.linker = linker
        self.retriever = retriever
        self.verbalizer = verbalizer
        # one out-of-scope decision: the understander's (calibrated at training, or INTENT_THRESHOLD)
        self.threshold = understander.threshold if threshold is None else threshold
        self.clock = clock or retriever.clock or _utcnow
        self.pending_ttl_s = pending_ttl_s  # a pending question or action expires after this
        self.handoff_timeout_s = handoff_timeout_s  # a hand-off nobody took returns to the bot (0: never)
        self.action_wait_s = action_wait_s

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
        state = (self.sessions.load(session_id, customer_id, caller, adopt=True) if session_id
                 else self.sessions.new(customer_id, caller))
        notes = _Notes(event=self._expire(state))
        if self.examples is not None:
            self.examples.refresh()
        understanding = self._understand(message)
        if state.pending_clarification is not None and state.pending_clarification.more:
            understanding = self._beyond_the_list(state.pending_clarification, understanding)
        asked = message
        waiting = state.awaiting_sign_in
        if waiting is not None and customer_id and not state.handed_off:
            if _asks_again(message, understanding):
                # Signed in since the order question that needed it: that question is what is asked.
                asked = waiting.message
                understanding = self._understand(asked)
            else:
                understanding = self._with_waiting_orders(understanding, waiting)
        intent, confidence, outcome = self._decide(state, understanding, asked, customer_id, notes)
        outcome.retrieval.variant = variant_seed(state.session_id, state.turn_index)
        history = state.recent_turns(HISTORY_TURNS) + [Turn(role="user", text=message)]
        return _Prepared(state, message, customer_id, caller, intent, confidence, outcome, history, asked, notes)

    def _with_waiting_orders(self, understanding: Understanding, waiting: PendingQuestion) -> Understanding:
        """Signed in since an order question that needed it, and now asking about an order without
        naming one ("where is it?", "how much did I pay?"): the order that question named is this
        one's, as context (the handler still checks it is the signed-in customer's)."""
        if any(e.type == "ORDER_ID" for e in understanding.entities) or \
                FAMILY_OF.get(understanding.intent.name) not in _ORDER_REQUEST_FAMILIES:
            return understanding
        named = [e.model_copy(update={"source": "context", "start": None, "end": None})
                 for e in self._understand(waiting.message).entities if e.type == "ORDER_ID"]
        return understanding.model_copy(update={"entities": [*understanding.entities, *named]}) if named \
            else understanding

    def _beyond_the_list(self, clar: PendingClarification, understanding: Understanding) -> Understanding:
        """An answer to a "which one?" that listed only some of the matches, naming one it left
        out ("the one for the vista lite" after "the charger" listed six of twelve): the asked
        mention is linked again with the answer's words. When every product that finds has the
        mention's words in its name, they become the question's candidates and the answer names
        them; anything else (another product altogether) is left to be a new request."""
        if self.linker is None or clar.kind != "entity" or clar.entity_type != "PRODUCT" or not clar.mention:
            return understanding
        listed = {c.node_id for c in clar.candidates}
        if any(e.type == "PRODUCT" and e.node_id in listed for e in understanding.entities):
            return understanding
        found = self.linker.link_mention(f"{clar.mention} {understanding.text}", "PRODUCT",
                                         context=[understanding.text])
        said = [w for w in words(clar.mention) if w not in FILLER]
        cands = [c for c in found.candidates if (not found.node_id or c.node_id == found.node_id) and said and
                 covers(said, words(c.name))]
        if not cands:
            return understanding
        clar.candidates = [Ref(type="PRODUCT", node_id=c.node_id, name=c.name, label=c.label) for c in cands]
        clar.more = False
        kept = [e for e in understanding.entities if e.type not in ("PRODUCT", "BRAND", "CATEGORY")]
        one = cands[0] if len(cands) == 1 else None
        entity = Entity(type="PRODUCT", text=clar.mention, node_id=one.node_id if one else None,
                        score=cands[0].score, candidates=cands, ambiguous=one is None, source="context")
        return understanding.model_copy(update={"entities": [*kept, entity]})

    def _understand(self, message: str) -> Understanding:
        understanding = self.understander.understand(message)
        if self.linker is not None:
            understanding = self.linker.link(understanding)
        return understanding

    def _expire(self, state: DialogueState) -> HandoffEvent | None:
        """Drop a question asked too long ago; end a hand-off nobody took in time. (A pending action
        is checked when the answer comes: a late "yes" is told so.)"""
        now = self.clock()
        clar = state.pending_clarification
        if clar is not None and _age_s(clar.asked_at, now) > self.pending_ttl_s:
            state.pending_clarification = None
        if state.handed_off and self.handoff_timeout_s and _age_s(state.handed_off_at, now) > self.handoff_timeout_s:
            state.handed_off, state.handed_off_at = False, None
            return "timeout"
        return None

    def _decide(self, state: DialogueState, u: Understanding, message: str,
                customer_id: str | None, notes: _Notes) -> tuple[str, float, Outcome]:
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
        # 0b. "out_of_scope" for a question about a mention that fits several products ("how many
        #     pages is a game of thrones?"): asking back which one only helps when the answer then
        #     answers something, so the model's best product intent is kept with the question.
        if asked == "out_of_scope" and any(e.type == "PRODUCT" and e.ambiguous and e.candidates for e in u.entities):
            alt = next((r for r in u.ranking if FAMILY_OF.get(r.name) == "products"), None)
            if alt is not None:
                u = u.model_copy(update={"intent": alt})
                asked, conf = alt.name, float(alt.confidence)

        # 1. a person has the conversation: they will answer, unless the shopper wants the bot back.
        if state.handed_off:
            if handoff.wants_bot(message):
                state.handed_off, state.handed_off_at = False, None
                notes.event = "returned"
                return asked, conf, Outcome(Retrieval(intent="affirm", status="chitchat", prompt=BackToBot()),
                                            list(u.entities))
            return asked, conf, Outcome(Retrieval(intent="contact_human_agent", status="handoff",
                                                  prompt=AwaitingAgent()), list(u.entities))

        # 2. a pending action: affirm executes, deny drops, anything else drops it with a note; a
        #    "yes" that comes too late is told so; a second "yes" reports what the first one did.
        signed_in = bool(customer_id) and customer_id == state.customer_id
        dropped = None
        pending, state.pending_action = state.pending_action, None
        last, expired, state.expired_action = state.last_action, state.expired_action, None
        if pending is not None and _age_s(pending.proposed_at, self.clock()) > self.pending_ttl_s:
            if asked == "affirm":
                state.pending_clarification = None
                notes.expired = pending
                fact = ActionCancelledFact(action=pending.kind, order_id=pending.order_id)
                prompt = ActionExpired(action=pending.kind, minutes=max(1, round(self.pending_ttl_s / 60)))
                return asked, conf, Outcome(Retrieval(intent=pending.intent, status="action_cancelled",
                                                      facts=[fact], prompt=prompt), [_order_entity(pending)])
            pending = None  # expired: nothing is pending any more
        if pending is not None:
            order_ent = _order_entity(pending)
            if asked == "affirm":
                if not signed_in:
                    return asked, conf, Outcome(Retrieval(intent=pending.intent, status="need_sign_in"), [])
                state.pending_clarification = None
                return asked, conf, Outcome(self._confirm(state, pending, str(customer_id), notes), [order_ent])
            if asked == "deny":
                state.pending_clarification = None
                fact = ActionCancelledFact(action=pending.kind, order_id=pending.order_id)
                return asked, conf, Outcome(Retrieval(intent=pending.intent, status="action_cancelled",
                                                      facts=[fact]), [order_ent])
            dropped = ActionDroppedFact(action=pending.kind, order_id=pending.order_id)
        elif asked == "affirm" and signed_in and expired is not None:
            # "yes" to "shall I start again?" after an expired request: propose it afresh (the rules
            # are checked again, and a new request id is made).
            because = f"because {expired.reason}" if expired.kind == "return_request" and expired.reason else ""
            return asked, conf, self.retriever.retrieve(
                expired.intent, [_order_entity(expired)], message=because, customer_id=customer_id, state=state,
                address=expired.new_address)
        elif asked == "affirm" and signed_in and last is not None:
            found = self.sessions.action_outcome(state.session_id, last.request_id)
            if found is not None:
                notes.taken = last
                return asked, conf, Outcome(_already(found), [_order_entity(last)])

        # 2b. "yes" to "shall I connect you with a colleague?"
        if asked == "affirm" and state.last_status == "no_answer" and state.pending_clarification is None:
            return asked, conf, self._handoff(state, u, message, "asked_for_agent", "contact_human_agent")

        # 3. a new order request in reply to "which order?" or "what's the new address?" is the new
        #    request: the question is dropped (and the reply says so), never answered with it.
        question = state.pending_clarification
        dropped_question = None
        if question is not None and question.kind in ("order", "address") and asked != question.intent and \
                conf >= self.threshold and FAMILY_OF.get(asked) in _ORDER_REQUEST_FAMILIES and \
                (asked in actions.ACTION_INTENTS or len(message.split()) >= 3):
            state.pending_clarification = None
            dropped_question = QuestionDroppedFact(intent=question.intent)

        # 4. context.
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
        if question is not None and dropped_question is None and res.clarification_dropped and \
                res.from_clarification is None and FAMILY_OF.get(intent) in CONTENT_FAMILIES:
            dropped_question = QuestionDroppedFact(intent=question.intent)  # a new question set it aside

        # 5. hand-off, clarification or retrieval.
        reason = handoff.handoff_reason(intent, message)
        if reason is not None:
            return intent, conf, _with_note(self._handoff(state, u, message, reason, intent, res), dropped,
                                            dropped_question)
        if res.ambiguous is not None:
            outcome = self.retriever.clarify_mention(intent, conf, res.ambiguous, res.entities, message=message,
                                                     customer_id=customer_id, state=state, field=res.asked_field)
        else:
            outcome = self.retriever.retrieve(intent, res.entities, message=message, customer_id=customer_id,
                                              state=state, address=res.address, field=res.asked_field)
            if outcome.retrieval.intent != intent and outcome.retrieval.intent in INTENTS:
                intent = outcome.retrieval.intent  # a handler took a question the model misread (Handler.takes)
        if handoff.is_failed(intent, outcome.retrieval.status):
            if state.failed_turns + 1 >= handoff.MAX_FAILED:
                return intent, conf, _with_note(
                    self._handoff(state, u, message, "failed_turns", intent, res), dropped, dropped_question)
        if dropped is not None and outcome.action is not None and outcome.action.kind == dropped.action and \
                outcome.action.order_id == dropped.order_id:
            dropped = None  # the same request asked again: proposed afresh, nothing to note
        return intent, conf, _with_note(outcome, dropped, dropped_question)

    def _confirm(self, state: DialogueState, pending: PendingAction, customer_id: str, notes: _Notes) -> Retrieval:
        """Carry out a confirmed action, taking it atomically first: of several turns confirming the
        same request at once, exactly one writes the graph; the others wait for its outcome and
        report the same request as done (or refused)."""
        sid, rid = state.session_id, pending.request_id
        notes.taken = pending
        if self.sessions.claim_action(sid, rid):
            try:
                retrieval = actions.execute(self.retriever.store, pending, customer_id, self.clock())
            except BaseException:
                self.sessions.unclaim_action(sid, rid)  # nothing was written: a retry may take it
                raise
            self.sessions.record_action_outcome(sid, rid, retrieval.model_dump_json())
            return retrieval
        found = self.sessions.wait_action_outcome(sid, rid, self.action_wait_s)
        if found is None:
            raise SessionConflict("this request is being carried out by another message; retry",
                                  details={"retry": True})
        return _already(found)

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
        if prep.asked != prep.message:  # a question re-asked after signing in: its entities are context
            entities = [e.model_copy(update={"source": "context", "start": None, "end": None})
                        if e.source == "message" else e for e in entities]

        # State for the next turn.
        now = self.clock()
        opened = status == "handoff" and not isinstance(retrieval.prompt, AwaitingAgent)
        event: HandoffEvent | None = "opened" if opened else prep.notes.event
        at = utcnow_iso()

        def update(state: DialogueState) -> None:
            if outcome.clarification is not None:
                state.pending_clarification = outcome.clarification.model_copy(update={"asked_at": actions.iso(now)})
            if outcome.action is not None:
                action = outcome.action
                state.pending_action = action if action.proposed_at else action.model_copy(
                    update={"proposed_at": actions.iso(now)})
            state.last_action = prep.notes.taken
            state.expired_action = prep.notes.expired
            for ref in outcome.mentioned:
                state.last_entities[ref.type] = ref
            if status == "ok":  # the products of the conversation, newest first ("which of the two?")
                products = [r for r in outcome.mentioned if r.type == "PRODUCT"]
                state.recent_products = (products + [r for r in state.recent_products if all(
                    r.node_id != p.node_id for p in products)])[:RECENT_PRODUCTS]
            if outcome.listed:
                state.last_list = list(outcome.listed)
            topic = retrieval.intent if FAMILY_OF.get(retrieval.intent) in CONTENT_FAMILIES else None
            if topic and status not in ("need_sign_in",):
                state.last_intent = topic
            state.last_status = status
            if status == "need_sign_in":
                state.awaiting_sign_in = PendingQuestion(intent=retrieval.intent, message=prep.asked, asked_at=at)
            elif prep.customer_id or prep.intent == "deny" or FAMILY_OF.get(prep.intent) not in ("conversation",
                                                                                                  "account"):
                state.awaiting_sign_in = None  # answered, or another question came first
            if status == "handoff":
                state.failed_turns = 0
                state.pending_action = state.pending_clarification = None
                state.last_action = state.expired_action = state.awaiting_sign_in = None
                if opened:
                    state.handed_off, state.handed_off_at = True, actions.iso(now)
            elif handoff.is_failed(prep.intent, status):
                state.failed_turns += 1
            else:
                state.failed_turns = 0
            state.turns.append(TurnRecord(role="user", text=prep.message, intent=prep.intent, at=at))
            state.turns.append(TurnRecord(role="assistant", text=reply.text, status=status, at=at))

        update(state)
        try:
            saved = self.sessions.save(state)
        except SessionConflict:
            if prep.notes.taken is None:
                raise
            saved = self._save_merged(prep, update)

        return TurnResult(
            session_id=state.session_id, answer=reply.text,
            intent=IntentOut(name=prep.intent, confidence=round(prep.confidence, 4)),
            entities=entities, facts=retrieval.facts, handoff=status == "handoff", verbalizer=reply.verbalizer,
            suggestions=suggestions(retrieval), query_name=retrieval.query_name, status=status,
            guard_passed=reply.guard_passed, guard_reasons=list(reply.guard_reasons), llm_draft=reply.llm_draft,
            turn=sum(1 for t in saved.turns if t.role == "assistant"), handoff_event=event)

    def _save_merged(self, prep: _Prepared, update: Callable[[DialogueState], None]) -> DialogueState:
        """Save a turn that confirmed an action although another turn saved the session meanwhile
        (several "yes" at once): the graph was written, so the turn must not be lost; its changes
        are applied again to the session as it now is."""
        taken = prep.notes.taken
        for _ in range(MERGE_ATTEMPTS):
            fresh = self.sessions.load(prep.state.session_id, prep.customer_id, prep.caller, adopt=True)
            if fresh.pending_action is not None and taken is not None and \
                    fresh.pending_action.request_id == taken.request_id:
                fresh.pending_action = None
            fresh.pending_clarification = None
            update(fresh)
            try:
                return self.sessions.save(fresh)
            except SessionConflict:
                continue
        raise SessionConflict("the session was updated by another request; retry", details={"retry": True})


def _with_note(outcome: Outcome, dropped: ActionDroppedFact | None,
               question: QuestionDroppedFact | None = None) -> Outcome:
    if dropped is not None:
        outcome.retrieval.facts.insert(0, dropped)
    elif question is not None:
        outcome.retrieval.facts.append(question)
    return outcome


def _order_entity(action: PendingAction) -> Entity:
    return Entity(type="ORDER_ID", text=action.order_id, node_id=action.order_id, score=1.0, source="context")


def _already(outcome_json: str) -> Retrieval:
    """The outcome another turn recorded for the same request, reported as already done."""
    retrieval = Retrieval.model_validate_json(outcome_json)
    if retrieval.status == "action_done" and isinstance(retrieval.prompt, ActionTaken):
        retrieval = retrieval.model_copy(update={"prompt": ActionTaken(action=retrieval.prompt.action, already=True)})
    return retrieval


def _age_s(when: str | None, now: datetime) -> float:
    """Seconds since an ISO time (engine clock); 0 when unknown, so nothing expires by accident."""
    then = actions.parse_when(when)
    return (now - then).total_seconds() if then is not None else 0.0


def _asks_again(message: str, u: Understanding) -> bool:
    """After signing in: does this message ask again the question that needed it ("and now?")?"""
    if any(e.type in _ENTITY_TYPES for e in u.entities):
        return False
    words = re.findall(r"[a-z][a-z']*", message.lower().replace("’", "'"))
    return (bool(words) and all(w in _AGAIN_WORDS for w in words)) or u.intent.name == "affirm"

