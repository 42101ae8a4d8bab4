"""Order actions with confirmation: cancel an order, change its delivery address, return it for a
refund (DESIGN section 4, "Orders").

This handler proposes: it reads the order through the signed-in customer, checks the rules
(qa/actions.py: status, cancellation fees, return windows) and either describes exactly what will
happen and asks (an `ActionFact`, status "action_proposed", the action kept pending) or says why
not (status "action_refused"). Only an "yes" on the next turn carries the action out (the engine
calls qa/actions.execute); "no", or another question, drops it.
"""

from __future__ import annotations

import re
from typing import Any

from nlu.types import Entity
from qa import actions
from qa.facts import ActionKind
from qa.handlers.base import Ask, Context, Handler, IntentSpec, Outcome
from qa.handlers.shared import (
    find_order,
    item_policies,
    order_fact,
    order_ref,
    owned,
    return_window_facts,
    sign_in_first,
)
from qa.prompts import ActionRefusal, ConfirmAction, NewAddress
from qa.state import PendingAction, PendingClarification, Ref
from qa.text import extract_address
from qa.types import Retrieval

CANCEL_ORDER = IntentSpec(
    "cancel_order",
    suggestions=("Where is my order?", "What does cancelling cost?"),
    order_statuses=("placed", "paid"),
    action_words=frozenset({"cancel", "process", "refund", "issue", "initiate", "credit"}))
CHANGE_SHIPPING_ADDRESS = IntentSpec(
    "change_shipping_address",
    suggestions=("Where is my order?",),
    order_statuses=("placed", "paid"),
    action_words=frozenset({"change", "update", "modify"}))
GET_REFUND = IntentSpec(
    "get_refund",
    suggestions=("What is your return policy?", "Where is my refund?"),
    order_statuses=("delivered",),
    action_words=frozenset({"refund", "issue", "process", "initiate", "credit", "approve", "submit"}))


def _reason(message: str) -> str:
    m = re.search(r"\b(?:because|since|as)\s+(.{3,200}?)[.!?]*$", message.strip(), re.IGNORECASE)
    return m.group(1).strip() if m else ""


class OrderActions(Handler):
    family = "order_actions"
    intents = (CANCEL_ORDER, CHANGE_SHIPPING_ADDRESS, GET_REFUND)
    queries = frozenset({
        "orders.by_id_for_customer", "orders.recent_for_customer", "orders.items_for_customer",
        "orders.requests_for_customer", "policies.for_product", "policies.store_wide",
    })

    def retrieve(self, ask: Ask, ctx: Context) -> Outcome:
        spec = self.spec(ask.intent)
        need = sign_in_first(ask)
        if need is not None:
            return need
        customer_id = str(ask.customer_id)
        found = find_order(ask, ctx, spec, customer_id)
        if isinstance(found, Outcome):
            return found
        order, entities = found
        ref = order_ref(order)
        oid = str(order["order_id"])
        now = ctx.clock()

        if spec is GET_REFUND:
            items = ctx.run("orders.items_for_customer", customer_id=customer_id, order_id=oid)
            policies = item_policies(ctx, customer_id, oid, "return", items=items)
            windows = actions.return_windows(order, items, policies, now.date())
            existing = ctx.run("orders.requests_for_customer", customer_id=customer_id, order_id=oid,
                               kinds=["return"], limit=5)
            proposal = actions.propose_return(order, windows, existing, now, ctx.currency, _reason(ask.message))
            out = self._proposal(ask.intent, proposal, order, entities, ref, "return_request")
            out.retrieval.facts += return_window_facts(windows)
            return out
        kind: ActionKind = "cancel_order" if spec is CANCEL_ORDER else "change_shipping_address"
        cancel_policies = list(item_policies(ctx, customer_id, oid, "cancellation").values()) \
            if spec is CANCEL_ORDER else []
        allowed = actions.cancellable_statuses(cancel_policies) if spec is CANCEL_ORDER else actions.CANCELLABLE
        if order.get("status") not in allowed:
            refusal = actions.status_refusal(order.get("status"))
            return Outcome(Retrieval(intent=ask.intent, status="action_refused",
                                     facts=[actions.refusal_fact(kind, oid, refusal)],
                                     query_name="orders.by_id_for_customer",
                                     prompt=ActionRefusal(refusal=refusal.reason, action=kind)),
                           entities, mentioned=[ref])
        if spec is CANCEL_ORDER:
            proposal = actions.propose_cancel(order, cancel_policies, now, ctx.currency)
            return self._proposal(ask.intent, proposal, order, entities, ref, kind)
        new_address = ask.address or extract_address(ask.message)
        if not new_address:
            pending = PendingClarification(kind="address", intent=ask.intent, entity_type="ADDRESS",
                                           resolved=[ref], message=ask.message)
            facts = owned([order_fact(order, ("order_id", "status", "ship_to"))], customer_id)
            return Outcome(Retrieval(intent=ask.intent, status="clarify", facts=facts,
                                     query_name="orders.by_id_for_customer", prompt=NewAddress()),
                           entities, mentioned=[ref], clarification=pending)
        return self._proposal(ask.intent, actions.propose_address_change(order, new_address, now), order, entities,
                              ref, kind)

    def _proposal(self, intent: str, proposal: PendingAction | actions.Refusal, order: dict[str, Any],
                  entities: list[Entity], ref: Ref, kind: ActionKind) -> Outcome:
        base = order_fact(order, ("order_id", "status", "placed_at", "delivered_at", "total", "currency"))
        if isinstance(proposal, actions.Refusal):
            return Outcome(Retrieval(intent=intent, status="action_refused", query_name="orders.by_id_for_customer",
                                     facts=[base, actions.refusal_fact(kind, str(order["order_id"]), proposal)],
                                     prompt=ActionRefusal(refusal=proposal.reason, action=kind)),
                           entities, mentioned=[ref])
        return Outcome(Retrieval(intent=intent, status="action_proposed", query_name="orders.by_id_for_customer",
                                 facts=[base, actions.action_fact(proposal)], prompt=ConfirmAction(action=kind)),
                       entities, mentioned=[ref], action=proposal)
