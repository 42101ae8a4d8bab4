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
from dataclasses import replace
from datetime import UTC, datetime

from kg.store import GraphStore
from nlu.types import Entity
from qa.fields import FieldAsk, FieldResolver
from qa.handlers import shared
from qa.handlers.base import SHARED_QUERIES, Ask, Context, Handler, Outcome, ProductLinker
from qa.registry import HANDLERS, handler_for
from qa.search import Hit, ProcedureSearch
from qa.state import DialogueState

__all__ = ["Hit", "Outcome", "ProcedureSearch", "Retriever"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Retriever:
    """Dispatches a resolved question to its intent's handler. `clock` gives "now" (promotions,
    return windows, cancellation fees), so tests and the evaluation pin the date the sample store
    was made for. `currency` is the configured store currency; amounts whose rows carry none are
    shown in the catalog's own currency when every product shares one (qa/fields.py). `link_product`
    is the entity linker's look-up of a product name (for names the understander did not tag)."""

    def __init__(self, store: GraphStore, procedures: ProcedureSearch | None, *, currency: str = "USD",
                 clock: Callable[[], datetime] = _utcnow, link_product: ProductLinker | None = None) -> None:
        self.store = store
        self.procedures = procedures
        self.currency = currency
        self.clock = clock
        self._contexts = {h.family: Context(store, procedures, currency, clock, h.queries | SHARED_QUERIES,
                                            h.family, link_product) for h in HANDLERS}
        # The shop's fields (qa/fields.py), sharing procedure search's encoder (one model in memory).
        self.fields = FieldResolver(store, procedures.encoder if procedures is not None else None)

    def _context(self, handler: Handler) -> Context:
        return self._contexts[handler.family]

    def _shop_context(self, handler: Handler) -> Context:
        """The handler's context, in the shop's own currency (see the class docstring)."""
        ctx = self._context(handler)
        currency = self.fields.shop_currency(self.currency)
        return ctx if currency == ctx.currency else replace(ctx, currency=currency)

    def retrieve(self, intent: str, entities: list[Entity], *, message: str, customer_id: str | None,
                 state: DialogueState, address: str | None = None, field: FieldAsk | None = None) -> Outcome:
        handler = handler_for(intent)
        ask = Ask(intent=intent, entities=entities, message=message, customer_id=customer_id, state=state,
                  address=address, field=field)
        return handler.retrieve(ask, self._shop_context(handler))

    def clarify_mention(self, intent: str, confidence: float, entity: Entity, others: list[Entity], *,
                        field: FieldAsk | None = None) -> Outcome:
        """A clarifying question for an ambiguous mention ("which Aurora X2 do you mean?"), unless
        the handler can answer for every candidate at once (`field`: the field asked about)."""
        handler = handler_for(intent)
        ctx = self._shop_context(handler)
        own = handler.clarify_mention(intent, confidence, entity, others, ctx, field=field)
        return own if own is not None else shared.clarify_mention(ctx, intent, confidence, entity, others)
