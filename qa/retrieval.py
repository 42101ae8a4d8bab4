"""Intent -> handler -> named queries -> facts.

`Retriever.retrieve` takes the resolved intent and entities (qa/context.py) and hands them to the
intent's handler (qa/registry.py, one module per family under qa/handlers/), which returns an
`Outcome`: the `Retrieval` the verbalizers word (status, typed facts, the query that produced them,
what the bot now waits for), the entities as they should be reported, what was mentioned and
listed (the next turn's context), and a clarification or action to keep pending.

Each handler reaches the graph only through the named queries it declares (`Context.run` refuses
any other). Procedure questions are answered by `ProcedureSearch` (qa/search.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from kg.store import GraphStore
from nlu.linking.search import NameSearch
from nlu.types import Candidate, Entity
from qa.facts import VariantsFact
from qa.fields import FieldAsk, FieldResolver
from qa.handlers import shared
from qa.handlers.base import BY_SKUS, SHARED_QUERIES, Ask, Context, Handler, Outcome, ProductLinker
from qa.registry import HANDLERS, handler_for
from qa.search import Hit, ProcedureSearch
from qa.state import DialogueState, Ref
from qa.text import norm
from qa.types import Retrieval

__all__ = ["Hit", "Outcome", "ProcedureSearch", "Retriever"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Retriever:
    """Dispatches a resolved question to its intent's handler. `clock` gives "now" (promotions,
    return windows, cancellation fees), so tests and the evaluation pin the date the sample store
    was made for. `currency` is the configured store currency; amounts whose rows carry none are
    shown in the catalog's own currency when every product shares one (qa/fields.py). `link_product`
    is the entity linker's look-up of a product name (for names the understander did not tag),
    `names` its graph stage (products found by a mention's words, nlu/linking/search.py)."""

    def __init__(self, store: GraphStore, procedures: ProcedureSearch | None, *, currency: str = "USD",
                 clock: Callable[[], datetime] = _utcnow, link_product: ProductLinker | None = None,
                 names: NameSearch | None = None) -> None:
        self.store = store
        self.procedures = procedures
        self.currency = currency
        self.clock = clock
        self._contexts = {h.family: Context(store, procedures, currency, clock, h.queries | SHARED_QUERIES,
                                            h.family, link_product, names) for h in HANDLERS}
        # The shop's fields (qa/fields.py), sharing procedure search's encoder (one model in memory).
        self.fields = FieldResolver(store, procedures.encoder if procedures is not None else None)

    def _context(self, handler: Handler) -> Context:
        return self._contexts[handler.family]

    def _shop_context(self, handler: Handler) -> Context:
        """The handler's context for one question (its own product-row cache), in the shop's own
        currency (see the class docstring)."""
        ctx = self._context(handler)
        return ctx.for_question(currency=self.fields.shop_currency(self.currency))

    def retrieve(self, intent: str, entities: list[Entity], *, message: str, customer_id: str | None,
                 state: DialogueState, address: str | None = None, field: FieldAsk | None = None) -> Outcome:
        handler = handler_for(intent)
        ask = Ask(intent=intent, entities=entities, message=message, customer_id=customer_id, state=state,
                  address=address, field=field)
        for other in HANDLERS:  # a question the model misread that another handler recognises as its own
            taken = other.takes(ask, self._context(other)) if other is not handler else None
            if taken is not None:
                handler, ask = other, replace(ask, intent=taken)
                break
        ctx = self._shop_context(handler)
        if handler.names_products:
            named = shared.product_from_mentions(ctx, message, ask.entities)
            if named is not None:
                ask = replace(ask, entities=named)
        return self._answer_if_same(handler, ask, ctx, handler.retrieve(ask, ctx))

    def clarify_mention(self, intent: str, confidence: float, entity: Entity, others: list[Entity], *,
                        message: str = "", customer_id: str | None = None, state: DialogueState | None = None,
                        field: FieldAsk | None = None) -> Outcome:
        """A clarifying question for an ambiguous mention ("which Aurora X2 do you mean?"), unless
        the handler answers for every candidate at once (`field`: the field asked about) or, when
        the conversation is given (`state`), every candidate gets the same answer."""
        handler = handler_for(intent)
        ctx = self._shop_context(handler)
        own = handler.clarify_mention(intent, confidence, entity, others, ctx, field=field)
        outcome = own if own is not None else shared.clarify_mention(ctx, intent, confidence, entity, others)
        if state is None:
            return outcome
        ask = Ask(intent=intent, entities=others, message=message, customer_id=customer_id, state=state, field=field)
        return self._answer_if_same(handler, ask, ctx, outcome)

    # -- clarification policy ----------------------------------------------------------------------
    def _answer_if_same(self, handler: Handler, ask: Ask, ctx: Context, outcome: Outcome) -> Outcome:
        """Ask back only when the answers differ: a question listing products is answered for each
        of them; when every answer holds the same facts (the same price in every format, the same
        return window), that answer is given at once, naming the products it holds for."""
        pending = outcome.clarification
        if outcome.retrieval.status != "clarify" or pending is None or pending.kind != "entity" or \
                pending.entity_type != "PRODUCT" or not 1 <= len(pending.candidates) <= shared.MAX_CANDIDATES or \
                any(not c.node_id for c in pending.candidates):
            return outcome
        at = next((i for i, e in enumerate(ask.entities) if e.type == "PRODUCT" and not e.node_id
                   and norm(e.text) == norm(pending.mention)), None)
        if at is None:
            return outcome
        ctx.run(BY_SKUS, skus=[str(c.node_id) for c in pending.candidates])  # one read fills the question's cache
        answers: list[Outcome] = []
        first_says: str | None = None  # what the first candidate's answer says
        for c in pending.candidates:  # stops at the first answer that differs: then it asks
            chosen = Entity(type="PRODUCT", text=c.name, node_id=c.node_id, score=1.0, source="context")
            sub = handler.retrieve(replace(ask, entities=ask.entities[:at] + [chosen] + ask.entities[at + 1:]), ctx)
            if sub.retrieval.status != "ok" or sub.clarification is not None or sub.action is not None:
                return outcome
            signature = answer_signature(sub.retrieval)
            if first_says is not None and signature != first_says:
                return outcome
            first_says = signature
            answers.append(sub)
        first = answers[0]
        if len(answers) > 1:
            first.retrieval.facts.append(VariantsFact(mention=pending.mention, names=[c.name for c in pending.candidates],
                                                      skus=[str(c.node_id) for c in pending.candidates]))
            # "is it in stock?" next is about the same products again: looked up anew by the mention
            group = Ref(type="PRODUCT", node_id=None, name=pending.mention, label="Product")
            first.mentioned = [r for r in first.mentioned if r.type != "PRODUCT"] + [group]
            first.listed = list(pending.candidates)
            # reported: the mention as the shopper wrote it, with the products the answer holds for
            cands = ask.entities[at].candidates or [Candidate(node_id=str(c.node_id), label="Product", name=c.name,
                                                              score=1.0) for c in pending.candidates]
            said = ask.entities[at].model_copy(update={"node_id": pending.candidates[0].node_id, "score": 1.0,
                                                       "ambiguous": False, "candidates": cands})
            first.entities = [said if e.type == "PRODUCT" and e.node_id == pending.candidates[0].node_id else e
                              for e in first.entities]
        return first


_IDENTITY = frozenset({"sku", "name", "node_id", "for"})


def answer_signature(r: Retrieval) -> str:
    """What an answer says, apart from which product it is about: two answers with the same
    signature tell the shopper the same thing."""
    return json.dumps([{k: v for k, v in f.data.items() if k not in _IDENTITY} | {"kind": f.kind}
                       for f in r.facts], sort_keys=True, default=str)
