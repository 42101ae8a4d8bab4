"""How-to questions about buying and paying: how to place an order, what to do about a payment
problem, how to add a delivery address (DESIGN section 4, "Orders", the procedure side).

These are answered from the store's FAQ and policy texts by semantic search (qa/search.py),
signed in or not; no order is read, and an order number in the message is reported without a
node. Below the search's confidence threshold a person is offered.
"""

from __future__ import annotations

from qa.handlers.base import Ask, Context, Handler, IntentSpec, Outcome
from qa.handlers.shared import procedure_answer, strip_orders

PLACE_ORDER = IntentSpec(
    "place_order",
    suggestions=("Which payment methods do you accept?", "What delivery options do you have?"),
    topics=("orders",),
    action_words=frozenset({"place", "create", "process", "submit"}))
PAYMENT_ISSUE = IntentSpec(
    "payment_issue",
    suggestions=("Which payment methods do you accept?", "Talk to a person"),
    topics=("payment",))
SET_UP_SHIPPING_ADDRESS = IntentSpec(
    "set_up_shipping_address",
    suggestions=("What delivery options do you have?",),
    topics=("account", "delivery"),
    action_words=frozenset({"add", "create", "update", "change"}))


class Procedures(Handler):
    family = "procedures"
    intents = (PLACE_ORDER, PAYMENT_ISSUE, SET_UP_SHIPPING_ADDRESS)
    queries = frozenset({"procedures.corpus"})

    def retrieve(self, ask: Ask, ctx: Context) -> Outcome:
        spec = self.spec(ask.intent)
        return procedure_answer(ctx, ask.intent, strip_orders(ask.entities), ask.message, spec.topics)
