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

from collections.abc import Callable
from datetime import UTC, datetime

from kg.store import GraphStore
from nlu.types import Entity
from qa.handlers import shared
from qa.handlers.base import SHARED_QUERIES, Ask, Context, Handler, Outcome
from qa.registry import HANDLERS, handler_for
from qa.search import Hit, ProcedureSearch
from qa.state import DialogueState

__all__ = ["Hit", "Outcome", "ProcedureSearch", "Retriever"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Retriever:
    """Dispatches a resolved question to its intent's handler. `clock` gives "now" (promotions,
    return windows, cancellation fees), so tests and the evaluation pin the date the sample store
    was made for."""

    def __init__(self, store: GraphStore, procedures: ProcedureSearch | None, *, currency: str = "USD",
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.store = store
        self.procedures = procedures
        self.currency = currency
        self.clock = clock
        self._contexts = {h.family: Context(store, procedures, currency, clock, h.queries | SHARED_QUERIES,
                                            h.family) for h in HANDLERS}

    def _context(self, handler: Handler) -> Context:
        return self._contexts[handler.family]

    def retrieve(self, intent: str, entities: list[Entity], *, message: str, customer_id: str | None,
                 state: DialogueState, address: str | None = None) -> Outcome:
        handler = handler_for(intent)
        ask = Ask(intent=intent, entities=entities, message=message, customer_id=customer_id, state=state,
                  address=address)
        return handler.retrieve(ask, self._context(handler))

    def clarify_mention(self, intent: str, confidence: float, entity: Entity, others: list[Entity]) -> Outcome:
        """A clarifying question for an ambiguous mention ("which Aurora X2 do you mean?")."""
        handler = handler_for(intent)
        ctx = self._context(handler)
        own = handler.clarify_mention(intent, confidence, entity, others, ctx)
        return own if own is not None else shared.clarify_mention(ctx, intent, confidence, entity, others)
